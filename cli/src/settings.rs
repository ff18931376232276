//! Defaults from a config file, below flags and environment variables.
//!
//! The file is `AGORA_CONFIG`, else `$XDG_CONFIG_HOME/agora/config.toml`, else
//! `~/.config/agora/config.toml`; a missing file is fine, a malformed one is an error.
//!
//! ```toml
//! node = "http://127.0.0.1:8100"
//! key = "/home/me/.config/agora/me.key"
//! ```

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::PathBuf;

/// The config file's settings.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The node's HTTP API.
    pub node: Option<String>,
    /// The key file.
    pub key: Option<PathBuf>,
}

/// Where the config file is looked for.
pub fn path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AGORA_CONFIG") {
        return Some(path.into());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("agora").join("config.toml"))
}

/// Reads the config file, if there is one.
pub fn load() -> Result<Settings> {
    let Some(path) = path() else {
        return Ok(Settings::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_unknown_keys_are_refused() {
        let settings: Settings = toml::from_str("node = \"http://n:1\"\nkey = \"k\"\n").unwrap();
        assert_eq!(settings.node.as_deref(), Some("http://n:1"));
        assert_eq!(settings.key, Some(PathBuf::from("k")));
        assert!(toml::from_str::<Settings>("nodes = \"x\"").is_err());
    }
}
