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

/// A table for a terminal: a header row and aligned columns, numbers to the right.
fn table(header: &[&str], right: &[usize], rows: Vec<Vec<String>>) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for index in right {
        if let Some(column) = table.column_mut(*index) {
            column.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    table
        .lines()
        .map(|line| line.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `agora validators`: one aligned row per validator.
pub fn validators_table(answer: &agora_api::ValidatorsResponse) -> String {
    let rows = answer
        .validators
        .iter()
        .map(|v| {
            vec![
                v.validator.to_string(),
                v.weight.to_string(),
                v.consensus_weight
                    .map_or_else(|| "-".to_string(), |w| w.to_string()),
                v.base_reputation.to_string(),
                v.blocks_proposed.to_string(),
            ]
        })
        .collect();
    table(
        &["validator", "weight", "consensus", "base", "blocks"],
        &[1, 2, 3, 4],
        rows,
    )
}

/// `agora status --cluster`: one aligned row per node asked, reachable or not.
pub fn cluster_table<E: std::fmt::Display>(
    rows: &[(String, std::result::Result<agora_api::StatusResponse, E>)],
) -> String {
    let short = |text: String| text.chars().take(12).collect::<String>();
    let rows = rows
        .iter()
        .map(|(url, status)| match status {
            Ok(s) => {
                let role = serde_json::to_value(s.role).expect("serializes");
                let role = role.as_str().unwrap_or_default();
                vec![
                    url.clone(),
                    short(s.node.to_string()),
                    if s.witness {
                        format!("{role} (witness)")
                    } else {
                        role.to_string()
                    },
                    s.term.to_string(),
                    s.height.to_string(),
                    s.applied_index.to_string(),
                    short(s.state_root.to_string()),
                    s.mempool.to_string(),
                    "yes".to_string(),
                ]
            }
            Err(error) => {
                let mut row = vec![url.clone()];
                row.extend(std::iter::repeat_n("-".to_string(), 7));
                row.push(format!("no: {error}"));
                row
            }
        })
        .collect();
    table(
        &[
            "node",
            "id",
            "role",
            "term",
            "height",
            "applied",
            "state root",
            "mempool",
            "reachable",
        ],
        &[3, 4, 5, 7],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_rows_line_up_with_their_header() {
        use agora_api::{At, ValidatorInfo, ValidatorsResponse};
        use agora_core::crypto::KeyKind;
        let key = agora_testkit::vectors::seeded_key(KeyKind::MlDsa44, "table");
        let info = |weight: u64, consensus: Option<u64>| ValidatorInfo {
            validator: agora_core::AccountId::from_public_key(key.public_key()),
            weight,
            consensus_weight: consensus,
            base_reputation: 10,
            blocks_proposed: 123_456,
            peer: String::new(),
            public_key: key.public_key().clone(),
        };
        let answer = ValidatorsResponse {
            validators: vec![info(7, Some(7)), info(1_000_000, None)],
            at: At {
                height: 1,
                state_root: agora_core::Hash32::ZERO,
            },
        };
        let text = validators_table(&answer);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        // Right-aligned numbers end where their header ends.
        for header in ["weight", "blocks"] {
            let end = lines[0].find(header).unwrap() + header.len();
            for row in &lines[1..] {
                assert!(row[..end].ends_with(char::is_numeric), "{header}:\n{text}");
            }
        }
        assert!(
            lines[2].contains(" - "),
            "no consensus weight shows as -:\n{text}"
        );
    }

    #[test]
    fn an_unreachable_node_gets_a_row_of_its_own() {
        let rows: Vec<(
            String,
            std::result::Result<agora_api::StatusResponse, String>,
        )> = vec![(
            "http://127.0.0.1:9".into(),
            Err("connection refused".into()),
        )];
        let text = cluster_table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[1].ends_with("no: connection refused"), "{text}");
    }

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
