//! Amounts in tokens, and printing for people or scripts.

use agora_core::{Amount, Ratio};
use anyhow::{anyhow, bail, Result};

/// Decimal places shown for amounts: 1 token = 10^6 base units.
pub const DECIMALS: u32 = 6;

/// Parses "12.5" into base units (6 decimals), refusing more precision than exists.
pub fn parse_tokens(text: &str) -> Result<Amount> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        bail!("{text}: expected an amount like 12 or 12.5");
    }
    if fraction.len() > DECIMALS as usize {
        bail!("{text}: at most {DECIMALS} decimals");
    }
    let scale = 10u128.pow(DECIMALS);
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse()? };
    let fraction: u128 = format!("{fraction:0<6}").parse()?;
    whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(fraction))
        .map(Amount)
        .ok_or_else(|| anyhow!("{text}: too large"))
}

/// Parses a token amount for a command-line flag: anything but a positive amount is a
/// usage error (clap prints it and exits 2), before a key is read or a node asked.
pub fn positive_tokens(text: &str) -> std::result::Result<Amount, String> {
    match parse_tokens(text) {
        Ok(Amount(0)) => Err(format!("{text}: the amount must be more than zero")),
        Ok(amount) => Ok(amount),
        Err(error) => Err(error.to_string()),
    }
}

/// [`parse_tokens`] for a command-line flag (zero allowed): a bad one is a usage error.
pub fn tokens_arg(text: &str) -> std::result::Result<Amount, String> {
    parse_tokens(text).map_err(|error| error.to_string())
}

/// Formats base units as tokens.
pub fn tokens(amount: Amount) -> String {
    let units = amount.0;
    let scale = 10u128.pow(DECIMALS);
    let fraction = format!("{:06}", units % scale);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{}", units / scale)
    } else {
        format!("{}.{fraction}", units / scale)
    }
}

/// Parses "1/3" or "334/1000" into a ratio.
pub fn parse_ratio(text: &str) -> Result<Ratio> {
    let (n, d) = text
        .split_once('/')
        .ok_or_else(|| anyhow!("{text}: expected a fraction like 1/3"))?;
    let ratio = Ratio {
        numerator: n
            .trim()
            .parse()
            .map_err(|_| anyhow!("{text}: bad numerator"))?,
        denominator: d
            .trim()
            .parse()
            .map_err(|_| anyhow!("{text}: bad denominator"))?,
    };
    if ratio.denominator == 0 || ratio.numerator > ratio.denominator {
        bail!("{text}: a fraction between 0 and 1 is expected");
    }
    Ok(ratio)
}

/// A ratio as "n/d".
pub fn ratio(value: &Ratio) -> String {
    format!("{}/{}", value.numerator, value.denominator)
}

/// Prints `value` as JSON with `--json`, else the human text.
pub fn print(json: bool, value: &impl serde::Serialize, human: impl FnOnce() -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("serializes")
        );
    } else {
        println!("{}", human());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_amounts_round_trip_in_base_units() {
        assert_eq!(parse_tokens("12.5").unwrap(), Amount(12_500_000));
        assert_eq!(parse_tokens("0.000001").unwrap(), Amount(1));
        assert_eq!(parse_tokens("7").unwrap(), Amount(7_000_000));
        assert!(parse_tokens("0.0000001").is_err());
        assert!(parse_tokens("1e3").is_err());
        assert!(parse_tokens("").is_err());
        assert!(positive_tokens("0").is_err());
        assert!(positive_tokens("0.000000").is_err());
        assert!(positive_tokens("340282366920938463463374607431768211455").is_err());
        assert_eq!(positive_tokens("0.000001"), Ok(Amount(1)));
        assert_eq!(tokens(Amount(12_500_000)), "12.5");
        assert_eq!(tokens(Amount(7_000_000)), "7");
    }

    #[test]
    fn ratios_are_fractions_of_one() {
        assert_eq!(
            parse_ratio("1/3").unwrap(),
            Ratio {
                numerator: 1,
                denominator: 3
            }
        );
        assert!(parse_ratio("4/3").is_err());
        assert!(parse_ratio("1/0").is_err());
        assert!(parse_ratio("0.5").is_err());
    }
}
