//! Identifiers, amounts and exact ratios.

use crate::crypto::PublicKey;
use crate::hash::{tagged_hash, tags, Hash32};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An account: `SHA3-256(agora/account/v1 || tagged public key)`. Validators are accounts
/// too (their id is the id of their validator key), so block rewards land in an account.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct AccountId(pub Hash32);

impl AccountId {
    /// The account that `key` controls.
    pub fn from_public_key(key: &PublicKey) -> AccountId {
        let bytes = borsh::to_vec(key).expect("in memory");
        AccountId(tagged_hash(tags::ACCOUNT, &[&bytes]))
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.0.to_hex()[..12])
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A validator is identified by the account of its validator key.
pub type ValidatorId = AccountId;

/// The chain id: the hash of the canonical genesis.
pub type ChainId = Hash32;

/// An amount of tokens in integer base units. Arithmetic is checked: there is no `+`.
/// JSON shows it as a decimal string because JSON numbers lose precision past 2^53.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Amount(pub u128);

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as Deserialize>::deserialize(deserializer)?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(format!(
                "amount must be a string of decimal digits, got {text:?}"
            )));
        }
        text.parse::<u128>()
            .map(Amount)
            .map_err(serde::de::Error::custom)
    }
}

/// An exact fraction `numerator / denominator` with `0 <= n <= d`, `d > 0`. Compared by
/// cross-multiplication in wide integers, never by division.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ratio {
    /// The numerator.
    pub numerator: u64,
    /// The denominator, never zero.
    pub denominator: u64,
}

impl Ratio {
    /// `numerator / denominator`; callers validate with [`Ratio::is_fraction`].
    pub const fn new(numerator: u64, denominator: u64) -> Ratio {
        Ratio {
            numerator,
            denominator,
        }
    }

    /// Whether this is a proper fraction in `[0, 1]`.
    pub fn is_fraction(&self) -> bool {
        self.denominator > 0 && self.numerator <= self.denominator
    }

    /// Whether `part / whole > self`. False when `whole` is zero.
    pub fn is_exceeded_by(&self, part: u128, whole: u128) -> bool {
        whole > 0 && wide_mul(part, self.denominator) > wide_mul(whole, self.numerator)
    }

    /// Whether `part / whole >= self`. False when `whole` is zero.
    pub fn is_reached_by(&self, part: u128, whole: u128) -> bool {
        whole > 0 && wide_mul(part, self.denominator) >= wide_mul(whole, self.numerator)
    }
}

/// `a * b` as a 192-bit number `(high, low64)`, comparable lexicographically.
fn wide_mul(a: u128, b: u64) -> (u128, u64) {
    const LOW_MASK: u128 = u64::MAX as u128;
    let low = (a & LOW_MASK) * b as u128; // < 2^128
    let high = (a >> 64) * b as u128; // < 2^128
                                      // a*b = high * 2^64 + low. Carry low's top half into high: high + (low >> 64) < 2^128
                                      // because high <= (2^64-1)^2 and low >> 64 < 2^64.
    (high + (low >> 64), (low & LOW_MASK) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ratio_edges() {
        let half = Ratio::new(1, 2);
        assert!(!half.is_exceeded_by(1, 2));
        assert!(half.is_reached_by(1, 2));
        assert!(half.is_exceeded_by(2, 3));
        assert!(!half.is_reached_by(0, 0));
        assert!(Ratio::new(334, 1000).is_exceeded_by(u128::MAX, u128::MAX));
        assert!(!Ratio::new(1, 1).is_exceeded_by(u128::MAX, u128::MAX));
    }

    proptest! {
        #[test]
        fn wide_comparison_matches_exact_arithmetic(part in 0u128..1u128 << 60, whole in 1u128..1u128 << 60, n in 0u64..1000, d in 1u64..1000) {
            // In this range the plain products fit in u128, so they are the reference.
            let ratio = Ratio::new(n, d);
            prop_assert_eq!(ratio.is_exceeded_by(part, whole), part * d as u128 > whole * n as u128);
            prop_assert_eq!(ratio.is_reached_by(part, whole), part * d as u128 >= whole * n as u128);
        }
    }

    #[test]
    fn amount_json_is_a_decimal_string() {
        let json = serde_json::to_string(&Amount(u128::MAX)).unwrap();
        assert_eq!(json, format!("\"{}\"", u128::MAX));
        assert_eq!(
            serde_json::from_str::<Amount>(&json).unwrap(),
            Amount(u128::MAX)
        );
        assert!(serde_json::from_str::<Amount>("\"-1\"").is_err());
        assert!(serde_json::from_str::<Amount>("\"+1\"").is_err());
        assert!(serde_json::from_str::<Amount>("5").is_err());
    }
}
