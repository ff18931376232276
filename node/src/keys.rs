//! Key files in the data directory. Secret files are created with mode 0600 and refused
//! when group or others can read them.

use agora_core::{KeyKind, SecretKey};
use anyhow::{Context, Result};
use std::path::Path;

/// File name of the ML-DSA validator key.
pub const VALIDATOR_KEY_FILE: &str = "validator.key";
/// File name of the libp2p identity.
pub const NETWORK_KEY_FILE: &str = "network.key";
/// File name of the public description of this validator.
pub const VALIDATOR_PUBLIC_FILE: &str = "validator.json";

/// Writes `bytes` to a new file readable by the owner only. Refuses to overwrite.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(agora_keyfile::write(path, bytes)?)
}

/// Reads a secret file, refusing it when group or others may read it.
pub fn read_secret(path: &Path) -> Result<Vec<u8>> {
    Ok(agora_keyfile::read(path)?)
}

/// Saves an ML-DSA key as JSON (kind and hex seed), mode 0600.
pub fn save_ml_dsa(path: &Path, key: &SecretKey) -> Result<()> {
    write_secret(path, &key.to_key_file())
}

/// Loads an ML-DSA key file.
pub fn load_ml_dsa(path: &Path) -> Result<SecretKey> {
    SecretKey::from_key_file(&read_secret(path)?)
        .with_context(|| format!("parsing {}", path.display()))
}

/// Saves a libp2p ed25519 identity (protobuf encoding), mode 0600.
pub fn save_network_key(path: &Path, key: &libp2p::identity::Keypair) -> Result<()> {
    write_secret(
        path,
        &key.to_protobuf_encoding()
            .context("encoding the network key")?,
    )
}

/// Loads a libp2p identity.
pub fn load_network_key(path: &Path) -> Result<libp2p::identity::Keypair> {
    libp2p::identity::Keypair::from_protobuf_encoding(&read_secret(path)?)
        .with_context(|| format!("{} is not a libp2p key", path.display()))
}

/// Draws 32 random bytes from the operating system (key generation, hedged signing).
pub fn os_random() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom_fill(&mut bytes);
    bytes
}

fn getrandom_fill(bytes: &mut [u8]) {
    use rand::TryRngCore;
    rand::rngs::OsRng
        .try_fill_bytes(bytes)
        .expect("the operating system's random source works");
}

/// Creates a new ML-DSA key from OS randomness.
pub fn generate_ml_dsa(kind: KeyKind) -> SecretKey {
    SecretKey::from_seed(kind, os_random())
}

/// The libp2p identity of the test vectors' validator `label` (e.g. `validator-0`): an
/// ed25519 key from the same seeded derivation as their ML-DSA keys, so a replay cluster
/// can run as the validators a vector's genesis names. Never for real networks.
pub fn seeded_network_key(label: &str) -> libp2p::identity::Keypair {
    let mut seed = agora_testkit::test_seed(&format!("network/{label}"));
    libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .expect("32 bytes are an ed25519 secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// agora-core has no ed25519: the vectors' genesis carries these peer ids as
    /// constants, which must be exactly what the seeded network keys give.
    #[test]
    fn the_vectors_peer_ids_are_the_seeded_network_keys() {
        for (i, expected) in agora_testkit::VALIDATOR_PEER_IDS.iter().enumerate() {
            let peer = seeded_network_key(&format!("validator-{i}"))
                .public()
                .to_peer_id();
            assert_eq!(hex::encode(peer.to_bytes()), *expected, "validator-{i}");
        }
    }

    #[test]
    fn secret_files_are_private_and_readable_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("agora-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.key");
        let key = generate_ml_dsa(KeyKind::MlDsa44);
        save_ml_dsa(&path, &key).unwrap();
        assert_eq!(load_ml_dsa(&path).unwrap().public_key(), key.public_key());
        assert!(save_ml_dsa(&path, &key).is_err(), "never overwrites a key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = load_ml_dsa(&path).unwrap_err().to_string();
            assert!(error.contains("chmod 600"), "{error}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
