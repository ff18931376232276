//! The node's configuration file (`node.toml`), overridden by `AGORA_*` environment
//! variables and command-line flags.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `node.toml`; the same settings as `agora-node run` flags and `AGORA_*` variables,
/// which override the file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Data directory: keys, the database.
    #[arg(long, env = "AGORA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The genesis file.
    #[arg(long, env = "AGORA_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// libp2p listen address, e.g. `/ip4/127.0.0.1/tcp/7001`.
    #[arg(long, env = "AGORA_LISTEN")]
    pub listen: Option<String>,
    /// HTTP API address, e.g. `127.0.0.1:8001`.
    #[arg(long, env = "AGORA_HTTP")]
    pub http: Option<String>,
    /// Other validators' addresses, each ending in `/p2p/<peer id>` (repeat the flag, or
    /// comma-separated in AGORA_PEERS).
    #[serde(default)]
    #[arg(long = "peer", env = "AGORA_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Milliseconds per Raft tick (default 100).
    #[arg(long, env = "AGORA_TICK_MS")]
    pub tick_ms: Option<u64>,
    /// Applied entries between snapshots (default 1000).
    #[arg(long, env = "AGORA_SNAPSHOT_INTERVAL")]
    pub snapshot_interval: Option<u64>,
    /// Mempool capacity in transactions, per zone (default 10000); a full mempool
    /// answers 503 with Retry-After.
    #[arg(long, env = "AGORA_MEMPOOL_CAPACITY")]
    pub mempool_capacity: Option<usize>,
    /// Milliseconds without transactions after which the leader proposes an empty block,
    /// so that heights (voting periods, unbonding, epochs) advance with time; 0 never
    /// (default 1000).
    #[arg(long, env = "AGORA_EMPTY_BLOCK_MS")]
    pub empty_block_ms: Option<u64>,
    /// Replay test vectors instead of running a chain (see `DriverConfig::replay`).
    #[arg(skip)]
    pub replay: Option<bool>,
    /// Messages buffered for one `/v1/events` subscriber; a subscriber that falls this
    /// far behind is cut off (default 1024).
    #[arg(long, env = "AGORA_EVENT_BUFFER")]
    pub event_buffer: Option<usize>,
    /// `/v1/events` subscribers at once; more are answered 503 (default 256).
    #[arg(long, env = "AGORA_EVENT_SUBSCRIBERS")]
    pub event_subscribers: Option<usize>,
    /// Kernel send buffer of each HTTP connection, in bytes (default: the kernel's
    /// autotuning, up to net.ipv4.tcp_wmem). Bounds what a client that stops reading holds
    /// in the kernel, as nginx's `sndbuf`.
    #[arg(long, env = "AGORA_HTTP_SEND_BUFFER")]
    pub http_send_buffer: Option<usize>,
}

impl NodeConfig {
    /// Reads a file; paths in it are relative to the file's directory.
    pub fn load(path: &Path) -> Result<NodeConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: NodeConfig =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = config.data_dir.map(|p| base.join(p));
        config.genesis = config.genesis.map(|p| base.join(p));
        Ok(config)
    }

    /// Writes a file.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, toml::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Values in `other` (flags, environment) win over values here.
    pub fn overridden_by(mut self, other: NodeConfig) -> NodeConfig {
        macro_rules! take {
            ($($field:ident),*) => { $( if other.$field.is_some() { self.$field = other.$field; } )* };
        }
        take!(
            data_dir,
            genesis,
            listen,
            http,
            tick_ms,
            snapshot_interval,
            mempool_capacity,
            empty_block_ms,
            replay,
            event_buffer,
            event_subscribers,
            http_send_buffer
        );
        if !other.peers.is_empty() {
            self.peers = other.peers;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_unknown_keys_are_refused() {
        let file = NodeConfig {
            http: Some("127.0.0.1:1".into()),
            tick_ms: Some(50),
            peers: vec!["a".into()],
            ..NodeConfig::default()
        };
        let flags = NodeConfig {
            http: Some("127.0.0.1:2".into()),
            ..NodeConfig::default()
        };
        let merged = file.overridden_by(flags);
        assert_eq!(merged.http.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(merged.tick_ms, Some(50));
        assert_eq!(merged.peers, vec!["a".to_string()]);
        assert!(toml::from_str::<NodeConfig>("htp = \"x\"").is_err());
    }
}
