//! Canonical bytes.
//!
//! Everything that is signed, hashed or stored has exactly one byte form: borsh, with
//! length-implied fixed-size keys and signatures. borsh alone is not enough: its decoders
//! accept unsorted or duplicate map keys, so every decode here is followed by a re-encode
//! and a byte comparison. Collections are bounded by named limits checked after decoding,
//! and the whole input is bounded before decoding starts.

use borsh::{BorshDeserialize, BorshSerialize};

/// Why bytes are not the canonical form of a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than any valid value of this type.
    #[error("input of {got} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes received.
        got: usize,
        /// The type's limit.
        limit: usize,
    },
    /// borsh could not read the bytes (truncated, unknown tag, bad UTF-8, trailing bytes).
    #[error("malformed bytes: {0}")]
    Malformed(String),
    /// The bytes decode, but a limit or a rule of the type is broken.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The bytes decode to a value whose canonical encoding differs (unsorted or
    /// duplicate map keys, a non-minimal form).
    #[error("bytes are not in canonical form")]
    NonCanonical,
}

/// A value with one canonical byte form.
pub trait Canonical: BorshSerialize + BorshDeserialize + Sized {
    /// The largest canonical encoding of any valid value of this type.
    const MAX_BYTES: usize;

    /// Rules beyond the byte layout: collection limits, ordering, ranges.
    fn validate(&self) -> Result<(), DecodeError> {
        Ok(())
    }

    /// The canonical bytes.
    fn to_canonical_bytes(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("borsh serialization into a Vec cannot fail")
    }

    /// Decodes canonical bytes; anything else is an error.
    fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(DecodeError::TooLarge {
                got: bytes.len(),
                limit: Self::MAX_BYTES,
            });
        }
        // `from_slice` fails on trailing bytes.
        let value: Self =
            borsh::from_slice(bytes).map_err(|error| DecodeError::Malformed(error.to_string()))?;
        value.validate()?;
        if !encodes_to(&value, bytes) {
            return Err(DecodeError::NonCanonical);
        }
        Ok(value)
    }
}

/// Whether `value`'s canonical encoding is exactly `bytes`: the encoding is streamed
/// against them (no copy of a block's hundreds of kilobytes is made to compare).
fn encodes_to<T: BorshSerialize>(value: &T, bytes: &[u8]) -> bool {
    /// Consumes `rest` as matching bytes are written; fails on the first difference.
    struct Compare<'a> {
        rest: &'a [u8],
    }
    impl std::io::Write for Compare<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match self.rest.strip_prefix(buf) {
                Some(rest) => {
                    self.rest = rest;
                    Ok(buf.len())
                }
                None => Err(std::io::ErrorKind::InvalidData.into()),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut compare = Compare { rest: bytes };
    value.serialize(&mut compare).is_ok() && compare.rest.is_empty()
}

/// Fails with [`DecodeError::Invalid`] when a collection is longer than its limit.
pub fn check_len(what: &str, len: usize, limit: usize) -> Result<(), DecodeError> {
    if len > limit {
        return Err(DecodeError::Invalid(format!(
            "{what} has {len} items, the limit is {limit}"
        )));
    }
    Ok(())
}

/// Fails unless the items are strictly increasing (sorted, no duplicates).
pub fn check_strictly_sorted<T: Ord>(what: &str, items: &[T]) -> Result<(), DecodeError> {
    if items.windows(2).all(|pair| pair[0] < pair[1]) {
        Ok(())
    } else {
        Err(DecodeError::Invalid(format!(
            "{what} must be sorted without duplicates"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(BorshSerialize, BorshDeserialize, Debug, PartialEq)]
    struct Sample {
        map: BTreeMap<u8, u8>,
    }
    impl Canonical for Sample {
        const MAX_BYTES: usize = 64;
    }

    #[test]
    fn the_streamed_comparison_wants_every_byte_and_no_more() {
        let value = Sample {
            map: BTreeMap::from([(1, 7), (2, 9)]),
        };
        let bytes = value.to_canonical_bytes();
        assert!(encodes_to(&value, &bytes));
        assert!(!encodes_to(&value, &bytes[..bytes.len() - 1]), "one short");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!encodes_to(&value, &longer), "one too many");
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            assert!(!encodes_to(&value, &changed), "byte {at} changed");
        }
        assert!(!encodes_to(&value, &[]));
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = Sample {
            map: BTreeMap::new(),
        }
        .to_canonical_bytes();
        bytes.push(0);
        assert!(matches!(
            Sample::from_canonical_bytes(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_unsorted_and_duplicate_map_keys() {
        // len=2, (2,0), (1,0): unsorted keys.
        let unsorted = [2, 0, 0, 0, 2, 0, 1, 0];
        // len=2, (1,0), (1,5): a duplicate key.
        let duplicate = [2, 0, 0, 0, 1, 0, 1, 5];
        for bytes in [&unsorted[..], &duplicate[..]] {
            assert!(Sample::from_canonical_bytes(bytes).is_err(), "{bytes:?}");
        }
        let sorted = [2, 0, 0, 0, 1, 0, 2, 0];
        assert_eq!(Sample::from_canonical_bytes(&sorted).unwrap().map.len(), 2);
    }

    #[test]
    fn rejects_oversize_input_before_decoding() {
        let bytes = vec![0u8; 65];
        assert_eq!(
            Sample::from_canonical_bytes(&bytes),
            Err(DecodeError::TooLarge { got: 65, limit: 64 })
        );
    }
}
