//! ML-DSA (FIPS 204, the standard form of Dilithium) through `libcrux-ml-dsa`.
//!
//! Keys and signatures carry their parameter set as a one-byte tag, so a chain can hold
//! ML-DSA-44, -65 and -87 keys at once and migrate between them. ML-DSA-65 is the default.
//! `core` never draws randomness: key generation takes a 32-byte seed and signing takes
//! the 32 random bytes of FIPS 204's hedged mode from the caller (all zeros gives the
//! deterministic variant, which the test vectors use).

use borsh::io::{Read, Result as IoResult, Write};
use borsh::{BorshDeserialize, BorshSerialize};
use libcrux_ml_dsa::{ml_dsa_44, ml_dsa_65, ml_dsa_87};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An ML-DSA parameter set.
#[derive(
    Clone,
    Copy,
    Debug,
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
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// ML-DSA-44 (NIST category 2).
    MlDsa44,
    /// ML-DSA-65 (NIST category 3), the default.
    #[default]
    MlDsa65,
    /// ML-DSA-87 (NIST category 5).
    MlDsa87,
}

impl KeyKind {
    /// Every parameter set.
    pub const ALL: [KeyKind; 3] = [KeyKind::MlDsa44, KeyKind::MlDsa65, KeyKind::MlDsa87];

    /// Bytes in a public (verification) key.
    pub const fn public_key_bytes(self) -> usize {
        match self {
            KeyKind::MlDsa44 => 1312,
            KeyKind::MlDsa65 => 1952,
            KeyKind::MlDsa87 => 2592,
        }
    }

    /// Bytes in a signature.
    pub const fn signature_bytes(self) -> usize {
        match self {
            KeyKind::MlDsa44 => 2420,
            KeyKind::MlDsa65 => 3309,
            KeyKind::MlDsa87 => 4627,
        }
    }

    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::MlDsa44 => "ml-dsa-44",
            KeyKind::MlDsa65 => "ml-dsa-65",
            KeyKind::MlDsa87 => "ml-dsa-87",
        }
    }

    /// Parses a name as printed by [`KeyKind::name`].
    pub fn from_name(name: &str) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// The largest public key, in bytes.
pub const MAX_PUBLIC_KEY_BYTES: usize = KeyKind::MlDsa87.public_key_bytes();
/// The largest signature, in bytes.
pub const MAX_SIGNATURE_BYTES: usize = KeyKind::MlDsa87.signature_bytes();

/// What a signature is for; becomes the FIPS 204 context string, so a signature made for
/// one purpose never verifies for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A member's transaction.
    Transaction,
    /// A proposer's block header.
    Block,
    /// A Raft vote or vote request.
    Vote,
    /// A validator's commit statement (see [`crate::certificate`]).
    Commit,
}

impl Purpose {
    /// The FIPS 204 context string (at most 255 bytes).
    pub fn context(self) -> &'static [u8] {
        match self {
            Purpose::Transaction => crate::hash::tags::TX,
            Purpose::Block => crate::hash::tags::BLOCK,
            Purpose::Vote => crate::hash::tags::VOTE,
            Purpose::Commit => crate::hash::tags::COMMIT,
        }
    }
}

/// A signature on its own (a validator's commit signature travels alone).
impl crate::encoding::Canonical for Signature {
    const MAX_BYTES: usize = 1 + 4627;
}

/// Why a key, signature or verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The signature was made with another parameter set than the key.
    #[error("signature is {signature:?} but the key is {key:?}")]
    KindMismatch {
        /// The key's parameter set.
        key: KeyKind,
        /// The signature's parameter set.
        signature: KeyKind,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Bytes of the wrong length for the parameter set.
    #[error("{what} for {kind:?} must be {expected} bytes, got {got}")]
    Length {
        /// What was being read.
        what: &'static str,
        /// The parameter set.
        kind: KeyKind,
        /// The required length.
        expected: usize,
        /// The length given.
        got: usize,
    },
}

macro_rules! tagged_bytes {
    ($name:ident, $doc:literal, $len:ident, $what:literal) => {
        #[doc = $doc]
        ///
        /// Canonical form: the parameter-set tag, then exactly the bytes that set prescribes
        /// (no length prefix: the tag implies the length).
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name {
            kind: KeyKind,
            bytes: Vec<u8>,
        }

        impl $name {
            /// Wraps raw bytes, checking their length against the parameter set.
            pub fn new(kind: KeyKind, bytes: Vec<u8>) -> Result<Self, CryptoError> {
                if bytes.len() != kind.$len() {
                    return Err(CryptoError::Length {
                        what: $what,
                        kind,
                        expected: kind.$len(),
                        got: bytes.len(),
                    });
                }
                Ok(Self { kind, bytes })
            }

            /// The parameter set.
            pub fn kind(&self) -> KeyKind {
                self.kind
            }

            /// The raw bytes, without the tag.
            pub fn as_bytes(&self) -> &[u8] {
                &self.bytes
            }
        }

        impl BorshSerialize for $name {
            fn serialize<W: Write>(&self, writer: &mut W) -> IoResult<()> {
                BorshSerialize::serialize(&self.kind, writer)?;
                writer.write_all(&self.bytes)
            }
        }

        impl BorshDeserialize for $name {
            fn deserialize_reader<R: Read>(reader: &mut R) -> IoResult<Self> {
                let kind = KeyKind::deserialize_reader(reader)?;
                let mut bytes = vec![0u8; kind.$len()];
                reader.read_exact(&mut bytes)?;
                Ok(Self { kind, bytes })
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let head = &self.bytes[..8.min(self.bytes.len())];
                write!(
                    f,
                    "{}({}:{}..)",
                    stringify!($name),
                    self.kind.name(),
                    hex::encode(head)
                )
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&hex::encode(borsh::to_vec(self).expect("in memory")))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as Deserialize>::deserialize(deserializer)?;
                let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
                borsh::from_slice(&bytes).map_err(serde::de::Error::custom)
            }
        }
    };
}

tagged_bytes!(
    PublicKey,
    "An ML-DSA verification key tagged with its parameter set.",
    public_key_bytes,
    "public key"
);
tagged_bytes!(
    Signature,
    "An ML-DSA signature tagged with its parameter set.",
    signature_bytes,
    "signature"
);

/// Dispatches one expression over the three parameter-set modules of libcrux.
macro_rules! per_kind {
    ($kind:expr, $module:ident => $body:expr) => {
        match $kind {
            KeyKind::MlDsa44 => {
                use ml_dsa_44 as $module;
                $body
            }
            KeyKind::MlDsa65 => {
                use ml_dsa_65 as $module;
                $body
            }
            KeyKind::MlDsa87 => {
                use ml_dsa_87 as $module;
                $body
            }
        }
    };
}

impl PublicKey {
    /// Verifies `signature` over `message` for `purpose`.
    pub fn verify(
        &self,
        purpose: Purpose,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        if signature.kind != self.kind {
            return Err(CryptoError::KindMismatch {
                key: self.kind,
                signature: signature.kind,
            });
        }
        let context = purpose.context();
        let verified = per_kind!(self.kind, m => {
            let key = libcrux_ml_dsa::MLDSAVerificationKey::new(
                self.bytes.as_slice().try_into().expect("length checked on construction"),
            );
            let sig = libcrux_ml_dsa::MLDSASignature::new(
                signature.bytes.as_slice().try_into().expect("length checked on construction"),
            );
            m::verify(&key, message, context, &sig).is_ok()
        });
        if verified {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

/// A secret key: the 32-byte FIPS 204 seed and the expanded signing key derived from it.
/// Only the seed needs storing; the rest is recomputed by [`SecretKey::from_seed`].
#[derive(Clone)]
pub struct SecretKey {
    kind: KeyKind,
    seed: [u8; 32],
    signing_key: Vec<u8>,
    public_key: PublicKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretKey({}, public {:?})",
            self.kind.name(),
            self.public_key
        )
    }
}

impl SecretKey {
    /// FIPS 204 `ML-DSA.KeyGen_internal(seed)`: the same seed always gives the same key.
    pub fn from_seed(kind: KeyKind, seed: [u8; 32]) -> SecretKey {
        let (signing_key, public_bytes) = per_kind!(kind, m => {
            let pair = m::generate_key_pair(seed);
            (pair.signing_key.as_slice().to_vec(), pair.verification_key.as_slice().to_vec())
        });
        let public_key =
            PublicKey::new(kind, public_bytes).expect("libcrux returns the right length");
        SecretKey {
            kind,
            seed,
            signing_key,
            public_key,
        }
    }

    /// The parameter set.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The seed, which is all a key file needs to store.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Signs `message` for `purpose`. `randomness` is FIPS 204's `rnd`: fresh random bytes
    /// from the caller for hedged signing, or all zeros for deterministic signing.
    pub fn sign(&self, purpose: Purpose, message: &[u8], randomness: [u8; 32]) -> Signature {
        let context = purpose.context();
        let bytes = per_kind!(self.kind, m => {
            let key = libcrux_ml_dsa::MLDSASigningKey::new(
                self.signing_key.as_slice().try_into().expect("length fixed by keygen"),
            );
            m::sign(&key, message, context, randomness)
                .expect("context strings are shorter than 255 bytes")
                .as_slice()
                .to_vec()
        });
        Signature::new(self.kind, bytes).expect("libcrux returns the right length")
    }

    /// Deterministic signing (FIPS 204 with `rnd` = 0): for test vectors and replays.
    pub fn sign_deterministic(&self, purpose: Purpose, message: &[u8]) -> Signature {
        self.sign(purpose, message, [0u8; 32])
    }
}

/// The JSON form of a secret key file: the parameter set and the hex seed. One
/// definition, so keys written by `agora-node` (validator and devnet demo keys) and by
/// `agora` read back in either tool. Writing the file (mode 0600) is the caller's job.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    kind: KeyKind,
    seed: String,
}

/// Why key-file bytes are not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// Not the JSON of a key file.
    #[error("not an agora key file: {0}")]
    Format(String),
    /// The seed is not 64 hex digits.
    #[error("the seed must be 64 hex digits")]
    Seed,
}

impl SecretKey {
    /// The key file's bytes (pretty JSON).
    pub fn to_key_file(&self) -> Vec<u8> {
        let file = KeyFile {
            kind: self.kind,
            seed: hex::encode(self.seed),
        };
        serde_json::to_vec_pretty(&file).expect("key files serialize")
    }

    /// Reads a key file's bytes.
    pub fn from_key_file(bytes: &[u8]) -> Result<SecretKey, KeyFileError> {
        let file: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| KeyFileError::Format(e.to_string()))?;
        let seed: [u8; 32] = hex::decode(&file.seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyFileError::Seed)?;
        Ok(SecretKey::from_seed(file.kind, seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_and_refuse_garbage() {
        let key = SecretKey::from_seed(KeyKind::MlDsa87, [6u8; 32]);
        let back = SecretKey::from_key_file(&key.to_key_file()).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert!(matches!(
            SecretKey::from_key_file(b"{}"),
            Err(KeyFileError::Format(_))
        ));
        let short = br#"{"kind":"ml-dsa44","seed":"abcd"}"#;
        assert_eq!(
            SecretKey::from_key_file(short).err(),
            Some(KeyFileError::Seed)
        );
    }

    #[test]
    fn sizes_match_libcrux() {
        for kind in KeyKind::ALL {
            let key = SecretKey::from_seed(kind, [7u8; 32]);
            assert_eq!(key.public_key().as_bytes().len(), kind.public_key_bytes());
            let sig = key.sign_deterministic(Purpose::Transaction, b"m");
            assert_eq!(sig.as_bytes().len(), kind.signature_bytes());
        }
    }

    #[test]
    fn signatures_are_bound_to_purpose_message_and_key() {
        let key = SecretKey::from_seed(KeyKind::MlDsa65, [1u8; 32]);
        let other = SecretKey::from_seed(KeyKind::MlDsa65, [2u8; 32]);
        let sig = key.sign(Purpose::Transaction, b"pay 5", [9u8; 32]);
        let public = key.public_key();
        assert_eq!(public.verify(Purpose::Transaction, b"pay 5", &sig), Ok(()));
        assert_eq!(
            public.verify(Purpose::Block, b"pay 5", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            public.verify(Purpose::Transaction, b"pay 6", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            other
                .public_key()
                .verify(Purpose::Transaction, b"pay 5", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn kinds_do_not_mix() {
        let small = SecretKey::from_seed(KeyKind::MlDsa44, [1u8; 32]);
        let large = SecretKey::from_seed(KeyKind::MlDsa87, [1u8; 32]);
        let sig = small.sign_deterministic(Purpose::Vote, b"v");
        assert!(matches!(
            large.public_key().verify(Purpose::Vote, b"v", &sig),
            Err(CryptoError::KindMismatch { .. })
        ));
    }

    #[test]
    fn hedged_signatures_differ_but_verify() {
        let key = SecretKey::from_seed(KeyKind::MlDsa44, [3u8; 32]);
        let a = key.sign(Purpose::Transaction, b"m", [1u8; 32]);
        let b = key.sign(Purpose::Transaction, b"m", [2u8; 32]);
        assert_ne!(a, b);
        for sig in [a, b] {
            key.public_key()
                .verify(Purpose::Transaction, b"m", &sig)
                .unwrap();
        }
    }

    #[test]
    fn tagged_encoding_is_kind_then_raw_bytes() {
        let key = SecretKey::from_seed(KeyKind::MlDsa44, [4u8; 32]);
        let bytes = borsh::to_vec(key.public_key()).unwrap();
        assert_eq!(bytes.len(), 1 + 1312);
        assert_eq!(bytes[0], 0);
        let back: PublicKey = borsh::from_slice(&bytes).unwrap();
        assert_eq!(&back, key.public_key());
        // An unknown tag is refused.
        let mut bad = bytes.clone();
        bad[0] = 3;
        assert!(borsh::from_slice::<PublicKey>(&bad).is_err());
    }

    #[test]
    fn wrong_length_is_refused() {
        assert!(matches!(
            PublicKey::new(KeyKind::MlDsa65, vec![0; 10]),
            Err(CryptoError::Length { got: 10, .. })
        ));
    }
}
