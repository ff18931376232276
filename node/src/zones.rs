//! Zones: the independent ledgers one node serves.
//!
//! A zone is a ledger of its own: its genesis and chain id, its validator set, its Raft
//! group, its SQLite database and its driver. The node's first zone is the one its
//! configuration names (`genesis`, the database in the data directory itself); the others
//! live in `<data dir>/zones/<name>/` (`genesis.json`, `zone.json`, the database), where
//! `agora-node zone add` puts them and where a running node finds them within a second.
//! A zone's name is its genesis's `chain_name`: the HTTP API serves each zone's routes
//! under `/v1/zones/<name>/…` (the unprefixed routes serve the first zone), the metrics
//! carry `zone="<name>"`, and the network tags each message with the zone's chain id.

use crate::api::{ApiState, Failure};
use agora_api::ApiError;
use agora_core::genesis::Genesis;
use agora_core::ChainId;
use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tower::ServiceExt;

/// Where a node's added zones live, inside its data directory.
pub const ZONES_DIR: &str = "zones";
/// A zone's genesis, inside its directory.
pub const ZONE_GENESIS_FILE: &str = "genesis.json";
/// A zone's settings, inside its directory.
pub const ZONE_FILE: &str = "zone.json";
/// The most zones one node serves.
pub const MAX_ZONES: usize = 64;

/// A zone's settings (`zone.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFile {
    /// Addresses of this zone's other validators (each ending in `/p2p/<peer id>`) that
    /// the node's own `peers` do not already name.
    #[serde(default)]
    pub peers: Vec<String>,
}

/// A zone to run: its genesis and where its database lives.
#[derive(Debug)]
pub struct ZoneSpec {
    /// Its name (the genesis's chain name).
    pub name: String,
    /// Its genesis.
    pub genesis: Genesis,
    /// The directory holding its database.
    pub store_dir: PathBuf,
    /// Peers it needs besides the node's own.
    pub peers: Vec<libp2p::Multiaddr>,
}

/// A zone name is a path segment and a metric label: 1 to 64 letters, digits, `-`, `_`
/// or `.`, not starting with `.`.
pub fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        bail!(
            "the chain name {name:?} cannot name a zone: use 1 to 64 letters, digits, '-', '_' \
             or '.', not starting with '.'"
        );
    }
    Ok(())
}

/// Reads and checks a genesis file.
pub fn read_genesis(path: &Path) -> Result<Genesis> {
    Genesis::from_json(
        &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a valid genesis", path.display()))
}

/// Parses peer addresses; each must end in `/p2p/<peer id>`.
pub fn parse_peers(peers: &[String]) -> Result<Vec<libp2p::Multiaddr>> {
    peers
        .iter()
        .map(|p| {
            let address: libp2p::Multiaddr =
                p.parse().with_context(|| format!("bad peer address {p}"))?;
            if !address
                .iter()
                .any(|part| matches!(part, libp2p::multiaddr::Protocol::P2p(_)))
            {
                bail!("peer address {p} must end in /p2p/<peer id>");
            }
            Ok(address)
        })
        .collect()
}

/// The directory of zone `name` in `data_dir`.
pub fn zone_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(ZONES_DIR).join(name)
}

/// Reads the zone in `dir` (named by its directory).
pub fn read_zone(dir: &Path) -> Result<ZoneSpec> {
    let genesis = read_genesis(&dir.join(ZONE_GENESIS_FILE))?;
    let name = genesis.chain_name.clone();
    check_name(&name)?;
    if dir.file_name().and_then(|n| n.to_str()) != Some(name.as_str()) {
        bail!(
            "{} holds the genesis of chain {name:?}: a zone's directory is named after its chain",
            dir.display()
        );
    }
    let file = dir.join(ZONE_FILE);
    let settings: ZoneFile = if file.exists() {
        serde_json::from_str(
            &std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?,
        )
        .with_context(|| format!("{} is not valid", file.display()))?
    } else {
        ZoneFile::default()
    };
    Ok(ZoneSpec {
        name,
        genesis,
        store_dir: dir.to_path_buf(),
        peers: parse_peers(&settings.peers)?,
    })
}

/// The names of the zones in `data_dir/zones`, sorted (directories being written, whose
/// names start with `.`, are skipped).
pub fn zone_names(data_dir: &Path) -> Result<Vec<String>> {
    let root = data_dir.join(ZONES_DIR);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&root).with_context(|| format!("reading {}", root.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.file_type()?.is_dir() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `agora-node zone add`: puts the zone of `genesis_path` in `data_dir/zones/<name>`,
/// with a new database that records that this node has voted nowhere in it. The zone's
/// directory appears whole (written under a temporary name, then renamed), so a running
/// node never reads half of it. `key` is the node's validator key: it must be a validator
/// or a witness of the zone. Returns the zone's name.
pub async fn add(
    data_dir: &Path,
    genesis_path: &Path,
    peers: &[String],
    key: &agora_core::PublicKey,
) -> Result<String> {
    let genesis = read_genesis(genesis_path)?;
    let name = genesis.chain_name.clone();
    check_name(&name)?;
    parse_peers(peers)?;
    let member = genesis.validators.iter().any(|v| &v.public_key == key)
        || genesis.witnesses.iter().any(|w| &w.public_key == key);
    if !member {
        bail!(
            "this node's validator key is neither a validator nor a witness of zone {name}: \
             its genesis must list the node's validator.json"
        );
    }
    let dir = zone_dir(data_dir, &name);
    if dir.exists() {
        bail!(
            "{} exists: this node already has zone {name}",
            dir.display()
        );
    }
    if zone_names(data_dir)?.len() + 1 >= MAX_ZONES {
        bail!("this node already serves {MAX_ZONES} zones, the most one node serves");
    }
    let staging = data_dir.join(ZONES_DIR).join(format!(".{name}.new"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    std::fs::copy(genesis_path, staging.join(ZONE_GENESIS_FILE))
        .with_context(|| format!("copying {}", genesis_path.display()))?;
    let settings = ZoneFile {
        peers: peers.to_vec(),
    };
    std::fs::write(
        staging.join(ZONE_FILE),
        serde_json::to_string_pretty(&settings)?,
    )?;
    crate::sqlite::SqliteStore::create_new(&staging.join(crate::sqlite::STORE_FILE)).await?;
    std::fs::rename(&staging, &dir)
        .with_context(|| format!("moving {} to {}", staging.display(), dir.display()))?;
    Ok(name)
}

/// Who leads each of the node's zones, as each zone's driver last saw it: the load that
/// spreads leaders across the node's zones ([`agora_consensus::replica::Replica::balance_leadership`]).
#[derive(Default)]
pub struct LeaderBoard {
    leaders: std::sync::Mutex<BTreeMap<ChainId, Option<agora_core::AccountId>>>,
}

impl LeaderBoard {
    /// Zone `zone`'s leader is now `leader`.
    pub fn set(&self, zone: ChainId, leader: Option<agora_core::AccountId>) {
        self.leaders
            .lock()
            .expect("leader board lock")
            .insert(zone, leader);
    }

    /// A zone stopped: it leads nowhere.
    pub fn remove(&self, zone: &ChainId) {
        self.leaders.lock().expect("leader board lock").remove(zone);
    }

    /// How many of the node's zones `node` leads.
    pub fn load(&self, node: &agora_core::AccountId) -> u64 {
        let leaders = self.leaders.lock().expect("leader board lock");
        leaders
            .values()
            .filter(|l| l.as_ref() == Some(node))
            .count() as u64
    }
}

/// How the HTTP API reaches a zone.
#[derive(Clone)]
pub enum ZoneRoute {
    /// Running: its routes.
    Serving(Router),
    /// Its driver stopped on a halt or a storage failure: why.
    Halted(String),
}

/// The zones a node serves, by name, as the HTTP API sees them.
#[derive(Clone, Default)]
pub struct ZoneTable {
    zones: Arc<RwLock<BTreeMap<String, (ChainId, ZoneRoute)>>>,
    /// The node's first zone, which the unprefixed routes serve.
    first: String,
}

impl ZoneTable {
    /// The table of a node whose first zone is `first`.
    pub fn new(first: &str) -> ZoneTable {
        ZoneTable {
            zones: Arc::default(),
            first: first.to_owned(),
        }
    }

    /// Serves (or re-serves) a zone.
    pub fn insert(&self, name: &str, chain_id: ChainId, route: ZoneRoute) {
        self.zones
            .write()
            .expect("zone table lock")
            .insert(name.to_owned(), (chain_id, route));
    }

    /// A zone's route.
    pub fn get(&self, name: &str) -> Option<ZoneRoute> {
        let zones = self.zones.read().expect("zone table lock");
        zones.get(name).map(|(_, route)| route.clone())
    }

    /// Whether a zone of that name or chain id is served.
    pub fn holds(&self, name: &str, chain_id: &ChainId) -> bool {
        let zones = self.zones.read().expect("zone table lock");
        zones.contains_key(name) || zones.values().any(|(id, _)| id == chain_id)
    }

    /// The zones: the first zone, then the others by name.
    pub fn list(&self) -> Vec<agora_api::ZoneEntry> {
        let zones = self.zones.read().expect("zone table lock");
        let mut sorted: Vec<_> = zones.iter().collect();
        sorted.sort_by_key(|(name, _)| (**name != self.first, name.as_str()));
        sorted
            .into_iter()
            .map(|(name, (chain_id, route))| agora_api::ZoneEntry {
                name: name.clone(),
                chain_id: *chain_id,
                halted: match route {
                    ZoneRoute::Serving(_) => None,
                    ZoneRoute::Halted(why) => Some(why.clone()),
                },
            })
            .collect()
    }
}

/// The zone routes, for the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/zones/{zone}", any(dispatch))
        .route("/v1/zones/{zone}/{*path}", any(dispatch))
}

/// The zones this node serves.
#[utoipa::path(
    get, path = "/v1/zones", tag = "operations",
    responses((status = 200, body = agora_api::ZonesResponse))
)]
pub async fn list(State(state): State<ApiState>) -> Json<agora_api::ZonesResponse> {
    Json(agora_api::ZonesResponse {
        zones: state.zones.list(),
    })
}

/// Every `/v1/…` route of one zone, as `/v1/zones/<zone>/…` (`GET
/// /v1/zones/<zone>/status`, `POST /v1/zones/<zone>/tx`, and so on), and the zone's
/// probes, `/v1/zones/<zone>/health` and `/v1/zones/<zone>/ready`.
#[utoipa::path(
    get, path = "/v1/zones/{zone}/{route}", tag = "operations",
    params(
        ("zone" = String, Path, description = "The zone's name (its chain name)"),
        ("route" = String, Path, description = "A /v1 route without its /v1 prefix, e.g. status, accounts/{id}, tx (POST); or health, ready")
    ),
    responses(
        (status = 200, description = "The zone's answer, as the route describes it"),
        (status = 404, description = "No such zone (code unknown_zone)", body = agora_api::ErrorBody),
        (status = 503, description = "The zone halted (code zone_halted)", body = agora_api::ErrorBody)
    )
)]
pub async fn dispatch(State(state): State<ApiState>, request: Request<Body>) -> Response {
    let path = request.uri().path();
    let rest = path.strip_prefix("/v1/zones/").unwrap_or_default();
    let (zone, route) = rest.split_once('/').unwrap_or((rest, ""));
    let zone = zone.to_owned();
    // A zone's probes are its own too; `/metrics` is the node's (every zone labelled).
    let path = match route {
        "health" | "ready" => format!("/{route}"),
        _ => format!("/v1/{route}"),
    };
    let target = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    match state.zones.get(&zone) {
        None => Failure(ApiError::new(
            404,
            "unknown_zone",
            format!("this node serves no zone {zone:?}; GET /v1/zones lists its zones"),
        ))
        .into_response(),
        Some(ZoneRoute::Halted(why)) => Failure(ApiError::new(
            503,
            "zone_halted",
            format!("zone {zone} halted on this node ({why}); its other zones still serve"),
        ))
        .into_response(),
        Some(ZoneRoute::Serving(router)) => {
            let (mut parts, body) = request.into_parts();
            // The zone's router matches the request afresh: the outer route's path
            // parameters (zone, path) must not reach its handlers' extractors.
            parts.extensions = axum::http::Extensions::new();
            parts.uri = match target.parse::<Uri>() {
                Ok(uri) => uri,
                Err(_) => {
                    return Failure(ApiError::not_found("no such route")).into_response();
                }
            };
            match router.oneshot(Request::from_parts(parts, body)).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::{AccountId, Hash32};

    #[test]
    fn a_zone_name_is_a_path_segment_and_a_label() {
        for good in ["agora-devnet", "zone_b", "z.2", "A9"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "zoné", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    /// A zone being written (its directory still under a `.` name) is not a zone yet.
    #[test]
    fn zones_being_written_are_not_listed() {
        let dir = std::env::temp_dir().join(format!("agora-zones-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(zone_names(&dir).unwrap().is_empty(), "no zones directory");
        for name in ["b", "a", ".c.new"] {
            std::fs::create_dir_all(zone_dir(&dir, name)).unwrap();
        }
        std::fs::write(dir.join(ZONES_DIR).join("stray-file"), b"").unwrap();
        assert_eq!(zone_names(&dir).unwrap(), ["a", "b"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_leader_board_counts_each_nodes_zones() {
        let board = LeaderBoard::default();
        let (x, y) = (AccountId(Hash32([1; 32])), AccountId(Hash32([2; 32])));
        board.set(Hash32([10; 32]), Some(x));
        board.set(Hash32([11; 32]), Some(x));
        board.set(Hash32([12; 32]), None);
        assert_eq!((board.load(&x), board.load(&y)), (2, 0));
        board.set(Hash32([11; 32]), Some(y));
        board.remove(&Hash32([10; 32]));
        assert_eq!((board.load(&x), board.load(&y)), (0, 1));
    }

    #[test]
    fn the_first_zone_is_listed_first() {
        let table = ZoneTable::new("m");
        table.insert("a", Hash32([2; 32]), ZoneRoute::Halted("y".into()));
        table.insert("m", Hash32([1; 32]), ZoneRoute::Halted("x".into()));
        table.insert("z", Hash32([3; 32]), ZoneRoute::Halted("z".into()));
        let names: Vec<String> = table.list().into_iter().map(|z| z.name).collect();
        assert_eq!(names, ["m", "a", "z"]);
        assert!(table.holds("q", &Hash32([2; 32])), "by chain id");
        assert!(table.holds("a", &Hash32([9; 32])), "by name");
        assert!(!table.holds("q", &Hash32([9; 32])));
    }
}
