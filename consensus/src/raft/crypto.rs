//! Signing and verifying votes, behind a small trait so the simulator can run thousands
//! of seeds with a cheap stand-in while production (and at least one CI run) uses ML-DSA.

use agora_core::crypto::{PublicKey, Purpose, SecretKey, Signature};
use agora_core::hash::tagged_hash;

/// Signs this node's votes and verifies others'.
pub trait VoteCrypto {
    /// Signs `message` with this node's validator key; `randomness` is fresh bytes from
    /// the core's seeded RNG (hedged signing stays reproducible in simulation).
    fn sign(&self, message: &[u8], randomness: [u8; 32]) -> Vec<u8>;

    /// Whether `signature` over `message` was made by the holder of `public_key` (the
    /// canonical bytes of the validator key from the configuration).
    fn verify(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool;
}

/// Real ML-DSA vote signatures under [`Purpose::Vote`].
pub struct MlDsaVotes {
    key: SecretKey,
}

impl MlDsaVotes {
    /// Signs with `key`.
    pub fn new(key: SecretKey) -> Self {
        MlDsaVotes { key }
    }
}

impl VoteCrypto for MlDsaVotes {
    fn sign(&self, message: &[u8], randomness: [u8; 32]) -> Vec<u8> {
        let signature = self.key.sign(Purpose::Vote, message, randomness);
        borsh::to_vec(&signature).expect("in memory")
    }

    fn verify(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let (Ok(key), Ok(signature)) = (
            borsh::from_slice::<PublicKey>(public_key),
            borsh::from_slice::<Signature>(signature),
        ) else {
            return false;
        };
        key.verify(Purpose::Vote, message, &signature).is_ok()
    }
}

/// A stand-in for simulation: the "signature" is a hash of the signer's public key and
/// the message. It detects corrupted or misattributed votes, which is what the simulator
/// injects; it is not unforgeable and must never run on a network.
pub struct StubVotes {
    public_key: Vec<u8>,
}

impl StubVotes {
    /// Signs as the holder of `public_key`.
    pub fn new(public_key: Vec<u8>) -> Self {
        StubVotes { public_key }
    }

    fn digest(public_key: &[u8], message: &[u8]) -> Vec<u8> {
        tagged_hash(
            b"agora/stub-vote/v1",
            &[
                &(public_key.len() as u64).to_le_bytes(),
                public_key,
                message,
            ],
        )
        .0
        .to_vec()
    }
}

impl VoteCrypto for StubVotes {
    fn sign(&self, message: &[u8], _randomness: [u8; 32]) -> Vec<u8> {
        Self::digest(&self.public_key, message)
    }

    fn verify(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        Self::digest(public_key, message) == signature
    }
}

impl<T: VoteCrypto + ?Sized> VoteCrypto for Box<T> {
    fn sign(&self, message: &[u8], randomness: [u8; 32]) -> Vec<u8> {
        (**self).sign(message, randomness)
    }

    fn verify(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        (**self).verify(public_key, message, signature)
    }
}

#[cfg(test)]
impl StubVotes {
    /// Signs a whole message (tests).
    pub fn sign_for_test(&self, message: &crate::raft::Message) -> Vec<u8> {
        self.sign(&message.signing_bytes(), [0; 32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::KeyKind;

    #[test]
    fn ml_dsa_votes_verify_only_the_signed_bytes_under_the_right_key() {
        let alice = SecretKey::from_seed(KeyKind::MlDsa44, [1; 32]);
        let bob = SecretKey::from_seed(KeyKind::MlDsa44, [2; 32]);
        let alice_key = borsh::to_vec(alice.public_key()).unwrap();
        let bob_key = borsh::to_vec(bob.public_key()).unwrap();
        let votes = MlDsaVotes::new(alice);
        let signature = votes.sign(b"vote", [3; 32]);
        assert!(votes.verify(&alice_key, b"vote", &signature));
        assert!(!votes.verify(&bob_key, b"vote", &signature));
        assert!(!votes.verify(&alice_key, b"vote!", &signature));
        assert!(!votes.verify(&alice_key, b"vote", &signature[..10]));
        assert!(!votes.verify(b"garbage", b"vote", &signature));
    }

    #[test]
    fn stub_votes_detect_corruption_and_misattribution() {
        let votes = StubVotes::new(vec![1, 2, 3]);
        let signature = votes.sign(b"m", [0; 32]);
        assert!(votes.verify(&[1, 2, 3], b"m", &signature));
        assert!(!votes.verify(&[1, 2, 4], b"m", &signature));
        let mut bad = signature.clone();
        bad[0] ^= 1;
        assert!(!votes.verify(&[1, 2, 3], b"m", &bad));
    }
}
