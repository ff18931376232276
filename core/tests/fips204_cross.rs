//! libcrux-ml-dsa against the independent pure-Rust `fips204` crate: the same seed gives the
//! same public key, each verifies the other's signatures, and deterministic signing gives
//! identical bytes. A disagreement means one of them is not FIPS 204.

use agora_core::crypto::{KeyKind, PublicKey, Purpose, SecretKey, Signature};
use fips204::traits::{KeyGen, SerDes, Signer, Verifier};

macro_rules! cross_check {
    ($module:ident, $kind:expr) => {{
        let kind = $kind;
        for seed_byte in [0u8, 1, 0x5a, 0xff] {
            let seed = [seed_byte; 32];
            let ours = SecretKey::from_seed(kind, seed);
            let (their_public, their_secret) = fips204::$module::KG::keygen_from_seed(&seed);
            assert_eq!(
                ours.public_key().as_bytes(),
                &their_public.clone().into_bytes()[..],
                "public key from seed"
            );

            let message = format!("agora cross-check {seed_byte}").into_bytes();
            let context = Purpose::Transaction.context();
            for rnd in [[0u8; 32], [seed_byte ^ 0x33; 32]] {
                let our_sig = ours.sign(Purpose::Transaction, &message, rnd);
                let their_sig = their_secret
                    .try_sign_with_seed(&rnd, &message, context)
                    .unwrap();
                assert_eq!(
                    our_sig.as_bytes(),
                    &their_sig[..],
                    "same rnd, same signature"
                );
                assert!(their_public.verify(
                    &message,
                    &our_sig.as_bytes().try_into().unwrap(),
                    context
                ));
                let theirs = Signature::new(kind, their_sig.to_vec()).unwrap();
                ours.public_key()
                    .verify(Purpose::Transaction, &message, &theirs)
                    .unwrap();
            }
            // A signature over other bytes or another context fails on both sides.
            let our_sig = ours.sign_deterministic(Purpose::Transaction, &message);
            assert!(!their_public.verify(
                b"other",
                &our_sig.as_bytes().try_into().unwrap(),
                context
            ));
            assert!(!their_public.verify(
                &message,
                &our_sig.as_bytes().try_into().unwrap(),
                Purpose::Block.context()
            ));
            let reparsed = PublicKey::new(kind, their_public.into_bytes().to_vec()).unwrap();
            assert_eq!(&reparsed, ours.public_key());
        }
    }};
}

#[test]
fn ml_dsa_44_agrees_with_fips204() {
    cross_check!(ml_dsa_44, KeyKind::MlDsa44);
}

#[test]
fn ml_dsa_65_agrees_with_fips204() {
    cross_check!(ml_dsa_65, KeyKind::MlDsa65);
}

#[test]
fn ml_dsa_87_agrees_with_fips204() {
    cross_check!(ml_dsa_87, KeyKind::MlDsa87);
}
