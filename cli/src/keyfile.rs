//! Key files: the JSON format agora-core defines, mode 0600, optionally encrypted with a
//! passphrase (age's scrypt recipient: a vetted format and implementation, not ours).

use age::secrecy::SecretString;
use agora_core::SecretKey;
use anyhow::{anyhow, bail, Context, Result};
use std::io::IsTerminal;
use std::path::Path;

/// How every age file begins.
const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";

/// The passphrase of an existing key: `AGORA_PASSPHRASE` (scripts, tests), else asked.
pub fn passphrase(prompt: &str) -> Result<SecretString> {
    ask("AGORA_PASSPHRASE", prompt, false)
}

/// A passphrase for a key about to be written: `AGORA_NEW_PASSPHRASE`, else
/// `AGORA_PASSPHRASE`, else asked twice.
pub fn new_passphrase() -> Result<SecretString> {
    match std::env::var("AGORA_NEW_PASSPHRASE") {
        Ok(value) => Ok(SecretString::from(value)),
        Err(_) => ask("AGORA_PASSPHRASE", "New passphrase: ", true),
    }
}

fn ask(variable: &str, prompt: &str, confirm: bool) -> Result<SecretString> {
    if let Ok(value) = std::env::var(variable) {
        return Ok(SecretString::from(value));
    }
    if !std::io::stdin().is_terminal() {
        bail!("a passphrase is needed: set {variable} or run in a terminal to be asked");
    }
    let first = rpassword::prompt_password(prompt)?;
    if first.is_empty() {
        bail!("an empty passphrase protects nothing");
    }
    if confirm && rpassword::prompt_password("Repeat the passphrase: ")? != first {
        bail!("the passphrases differ");
    }
    Ok(SecretString::from(first))
}

/// The bytes of a key file: plain JSON, or encrypted with `passphrase`.
fn encode(key: &SecretKey, passphrase: Option<SecretString>) -> Result<Vec<u8>> {
    let plain = key.to_key_file();
    match passphrase {
        None => Ok(plain),
        Some(passphrase) => age::encrypt(&age::scrypt::Recipient::new(passphrase), &plain)
            .map_err(|e| anyhow!("encrypting the key: {e}")),
    }
}

/// Writes a new key file, mode 0600; never overwrites.
pub fn save(path: &Path, key: &SecretKey, passphrase: Option<SecretString>) -> Result<()> {
    let bytes = encode(key, passphrase)?;
    Ok(agora_keyfile::write(path, &bytes)?)
}

/// Whether a key file is passphrase-encrypted.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    bytes.starts_with(AGE_HEADER)
}

/// Reads a key file, refusing one that group or others can read, asking for the
/// passphrase if it is encrypted.
pub fn load(path: &Path) -> Result<SecretKey> {
    let bytes = agora_keyfile::read(path)
        .context("no usable key file (create one with `agora keys new`)")?;
    decode(path, &bytes)
}

/// Parses key file bytes read from `path`.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<SecretKey> {
    let plain = if is_encrypted(bytes) {
        let passphrase = passphrase(&format!("Passphrase for {}: ", path.display()))?;
        age::decrypt(&age::scrypt::Identity::new(passphrase), bytes).map_err(|e| {
            anyhow!(
                "{}: cannot decrypt ({e}); is the passphrase right?",
                path.display()
            )
        })?
    } else {
        bytes.to_vec()
    };
    SecretKey::from_key_file(&plain)
        .with_context(|| format!("{} is not an agora key file", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::KeyKind;

    #[test]
    fn an_encrypted_key_opens_only_with_its_passphrase() {
        let key = SecretKey::from_seed(KeyKind::MlDsa44, [7; 32]);
        let bytes = encode(&key, Some(SecretString::from("correct horse".to_string()))).unwrap();
        assert!(is_encrypted(&bytes));
        assert!(!bytes.windows(10).any(|w| w == &key.to_key_file()[..10]));
        let opened = age::decrypt(
            &age::scrypt::Identity::new(SecretString::from("correct horse".to_string())),
            &bytes,
        )
        .unwrap();
        assert_eq!(
            SecretKey::from_key_file(&opened).unwrap().public_key(),
            key.public_key()
        );
        assert!(age::decrypt(
            &age::scrypt::Identity::new(SecretString::from("wrong".to_string())),
            &bytes
        )
        .is_err());
        assert!(!is_encrypted(&encode(&key, None).unwrap()));
    }
}
