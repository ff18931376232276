//! A whole node: its zones (each a ledger with its storage and driver), the network and
//! the HTTP API they share, from a [`NodeConfig`].

use crate::api::{self, ApiState};
use crate::config::NodeConfig;
use crate::driver::{self, DriverConfig, DriverError, DriverParts};
use crate::events::EventHub;
use crate::keys;
use crate::metrics::NodeMetrics;
use crate::network::{self, NetworkConfig, NetworkCounters, ZoneLink};
use crate::sqlite::SqliteStore;
use crate::zones::{self, ZoneRoute, ZoneSpec, ZoneTable};
use agora_consensus::replica::ReplicaConfig;
use agora_core::{AccountId, ChainId, Ledger};
use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// How long a stopping node waits for HTTP requests in flight before closing their
/// connections.
const HTTP_DRAIN: Duration = Duration::from_secs(10);

/// How often a running node looks for zones added to its data directory.
const ZONE_SCAN: Duration = Duration::from_secs(1);

/// What every zone of a node shares.
struct Shared {
    config: NodeConfig,
    data_dir: PathBuf,
    metrics: Arc<NodeMetrics>,
    zones: ZoneTable,
    leaders: Arc<zones::LeaderBoard>,
    links: mpsc::Sender<ZoneLink>,
    shutdown: watch::Receiver<bool>,
    mode: api::Mode,
}

/// A zone whose driver runs.
#[derive(Clone)]
struct Running {
    name: String,
    chain_id: ChainId,
    events: Arc<EventHub>,
}

type DriverResult = (
    Running,
    Result<Result<(), DriverError>, tokio::task::JoinError>,
);

/// Runs a node until `stop` completes (then: no new requests, flush, close) or its zones'
/// drivers have all stopped. A driver that halts (an error: that zone must not continue)
/// ends the node if it was the only zone; with several, its zone answers `zone_halted`
/// and the others go on.
pub async fn run(config: NodeConfig, stop: impl Future<Output = ()>) -> Result<()> {
    let data_dir = config
        .data_dir
        .clone()
        .context("no data directory: pass --data-dir, AGORA_DATA_DIR or data_dir in node.toml")?;
    let genesis_path = config
        .genesis
        .clone()
        .context("no genesis: pass --genesis, AGORA_GENESIS or genesis in node.toml")?;
    // The first zone: the genesis the configuration names, the database in the data
    // directory itself (as before zones existed). Its name is not checked as an added
    // zone's is: its routes are the unprefixed ones.
    let genesis = zones::read_genesis(&genesis_path)?;
    let first = ZoneSpec {
        name: genesis.chain_name.clone(),
        genesis,
        store_dir: data_dir.clone(),
        peers: Vec::new(),
    };
    let network_key = keys::load_network_key(&data_dir.join(keys::NETWORK_KEY_FILE))?;
    let listen: libp2p::Multiaddr = config
        .listen
        .as_deref()
        .unwrap_or("/ip4/127.0.0.1/tcp/7001")
        .parse()
        .context("bad listen address")?;
    let http = config
        .http
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8001".into());
    let peers = zones::parse_peers(&config.peers)?;

    let counters = Arc::new(NetworkCounters::default());
    let (links_tx, links_rx) = mpsc::channel(zones::MAX_ZONES);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shared = Shared {
        config: config.clone(),
        data_dir: data_dir.clone(),
        metrics: NodeMetrics::new(counters.clone()),
        zones: ZoneTable::new(&first.name),
        leaders: Arc::default(),
        links: links_tx,
        shutdown: shutdown_rx.clone(),
        mode: if config.replay.unwrap_or(false) {
            api::Mode::Replay
        } else {
            api::Mode::Chain
        },
    };
    // Every zone's database is read and checked before the node listens to anyone: a
    // corrupt database stops it before it has served or signed anything in that zone.
    // The first zone's stops the node (as before zones existed); an added zone's is
    // served as halted, with its reason, and the other zones start.
    let mut drivers = tokio::task::JoinSet::new();
    let mut seen = vec![(first.name.clone(), first.genesis.chain_id())];
    let mut prepared = vec![prepare_zone(&shared, first).await?];
    for name in zones::zone_names(&data_dir)? {
        let opened = async {
            let spec = zones::read_zone(&zones::zone_dir(&data_dir, &name))?;
            let chain_id = spec.genesis.chain_id();
            if let Some((other, _)) = seen.iter().find(|(n, c)| *n == name || *c == chain_id) {
                anyhow::bail!("zone {name} (chain {chain_id}) is also the node's zone {other}: a node serves a zone once");
            }
            seen.push((name.clone(), chain_id));
            prepare_zone(&shared, spec).await
        };
        match opened.await {
            Ok(zone) => prepared.push(zone),
            Err(error) => halt_unopened(&shared, &name, error),
        }
    }
    let network = network::spawn(
        NetworkConfig {
            keypair: network_key,
            listen: listen.clone(),
            peers,
        },
        Vec::new(),
        links_rx,
        counters,
    )
    .await?;
    let mut router = None;
    let mut running = Vec::new();
    for zone in prepared {
        router.get_or_insert_with(|| zone.router.clone());
        running.push(zone.start(&shared, &mut drivers).await?);
    }
    let router = router.expect("the first zone");

    let listener = tokio::net::TcpListener::bind(&http)
        .await
        .with_context(|| {
            format!(
                "cannot serve the HTTP API on {http} (the `http` setting, --http or AGORA_HTTP)"
            )
        })?;
    #[cfg(feature = "inject-bugs")]
    let router = match crate::light::lies::from_env() {
        Some(lie) => router.layer(axum::middleware::from_fn_with_state(
            lie,
            crate::light::lies::lie,
        )),
        None => router,
    };
    let mut http_shutdown = shutdown_rx.clone();
    let send_buffer = config.http_send_buffer;
    let listener = listener.tap_io(move |stream| {
        if let Some(bytes) = send_buffer {
            if let Err(error) = socket2::SockRef::from(&*stream).set_send_buffer_size(bytes) {
                tracing::warn!(%error, bytes, "could not set an HTTP connection's send buffer (http_send_buffer)");
            }
        }
    });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.changed().await;
            })
            .await;
    });
    let zone_names: Vec<&str> = running.iter().map(|z| z.name.as_str()).collect();
    tracing::info!(%listen, %http, zones = ?zone_names, "started");
    let mut events: Vec<Arc<EventHub>> = running.iter().map(|z| z.events.clone()).collect();
    tokio::pin!(stop);
    let mut scan = tokio::time::interval(ZONE_SCAN);
    let mut failure = None;
    loop {
        tokio::select! {
            _ = &mut stop => {
                tracing::info!("signal received: stopping (no new requests, flushing, closing)");
                break;
            }
            Some(finished) = drivers.join_next() => {
                let (zone, result) = finished.context("a zone's driver task failed")?;
                match result {
                    Ok(Ok(())) => {}
                    // The node's last zone: the node stops, with the zone's error.
                    Ok(Err(error)) if drivers.is_empty() => {
                        failure = Some(anyhow::Error::from(error));
                    }
                    Ok(Err(error)) => {
                        tracing::error!(zone = %zone.name, error = %format!("{error:#}"), "the zone halted; the node's other zones go on");
                        shared.zones.insert(&zone.name, zone.chain_id, ZoneRoute::Halted(error.to_string()));
                        shared.leaders.remove(&zone.chain_id);
                        zone.events.stop();
                    }
                    Err(panic) => failure = Some(anyhow::anyhow!("zone {}: the driver task panicked: {panic}", zone.name)),
                }
                if failure.is_some() || drivers.is_empty() {
                    break;
                }
            }
            _ = scan.tick() => {
                if let Some(zone) = find_new_zone(&shared).await {
                    let name = zone.spec_name.clone();
                    match zone.start(&shared, &mut drivers).await {
                        Ok(zone) => {
                            tracing::info!(zone = %zone.name, "zone added: serving it");
                            events.push(zone.events.clone());
                        }
                        Err(error) => tracing::error!(zone = %name, error = %format!("{error:#}"), "could not start an added zone"),
                    }
                }
            }
        }
    }
    let _ = shutdown_tx.send(true);
    while let Some(finished) = drivers.join_next().await {
        if let Ok((zone, Ok(Err(error)))) = finished {
            tracing::error!(zone = %zone.name, error = %format!("{error:#}"), "the zone stopped on an error");
            failure.get_or_insert(error.into());
        }
    }
    // Open event streams end with `closed`; requests in flight get their answers. A client
    // that still holds a connection after HTTP_DRAIN does not keep the node from exiting.
    for hub in &events {
        hub.stop();
    }
    let server_abort = server.abort_handle();
    if tokio::time::timeout(HTTP_DRAIN, server).await.is_err() {
        tracing::warn!(
            seconds = HTTP_DRAIN.as_secs(),
            "HTTP connections still open after the drain period: closing them"
        );
        server_abort.abort();
    }
    network.abort();
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// A zone opened and checked, not yet started.
struct Prepared {
    spec_name: String,
    router: axum::Router,
    link: ZoneLink,
    parts: DriverParts,
    chain_id: ChainId,
}

/// A zone added to the data directory since the last look, opened; errors are logged
/// (the operator's `zone add` checked what it could; a zone that will not open stays out).
async fn find_new_zone(shared: &Shared) -> Option<Prepared> {
    let names = match zones::zone_names(&shared.data_dir) {
        Ok(names) => names,
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "could not read the zones directory");
            return None;
        }
    };
    for name in names {
        if shared.zones.get(&name).is_some() {
            continue;
        }
        let opened = async {
            let spec = zones::read_zone(&zones::zone_dir(&shared.data_dir, &name))?;
            prepare_zone(shared, spec).await
        };
        match opened.await {
            Ok(zone) => return Some(zone),
            Err(error) => halt_unopened(shared, &name, error),
        }
    }
    None
}

/// An added zone that will not open (a corrupt database, a bad genesis): logged once and
/// served as halted, with the reason (at `/v1/zones`, and `zone_halted` on its routes),
/// until the operator repairs it and restarts the node. The other zones are not held up.
fn halt_unopened(shared: &Shared, name: &str, error: anyhow::Error) {
    tracing::error!(zone = %name, error = %format!("{error:#}"), "an added zone cannot be served; the node's other zones go on");
    let unknown = agora_core::Hash32([0; 32]);
    shared
        .zones
        .insert(name, unknown, ZoneRoute::Halted(format!("{error:#}")));
}

/// Opens a zone: its genesis, its database (every row checked), its channels, its routes.
async fn prepare_zone(shared: &Shared, spec: ZoneSpec) -> Result<Prepared> {
    let ZoneSpec {
        name,
        genesis,
        store_dir,
        peers,
    } = spec;
    let chain_id = genesis.chain_id();
    if shared.zones.holds(&name, &chain_id) {
        anyhow::bail!("this node already serves a zone named {name} or of chain {chain_id}");
    }
    let config = &shared.config;
    let key = keys::load_ml_dsa(&shared.data_dir.join(keys::VALIDATOR_KEY_FILE))?;
    let genesis_ledger = Ledger::from_genesis(&genesis);
    let store = SqliteStore::open(&store_dir.join(crate::sqlite::STORE_FILE)).await?;
    let recovered = agora_consensus::storage::LogStore::load(&store)
        .await
        .map_err(DriverError::from)
        .with_context(|| format!("zone {name}"))?;
    let metrics = shared.metrics.zone(&name);
    let (inbound_tx, inbound_rx) = mpsc::channel(4_096);
    let (outbound_tx, outbound_rx) = mpsc::channel(4_096);
    let (command_tx, command_rx) = mpsc::channel(1_024);
    let target = genesis_ledger.target_config();
    let validators = target
        .members
        .iter()
        .chain(&target.witnesses)
        .filter_map(|m| Some((m.validator, libp2p::PeerId::from_bytes(&m.peer).ok()?)))
        .collect();
    let events = Arc::new(EventHub::new(
        AccountId::from_public_key(key.public_key()),
        config.event_buffer.unwrap_or(1_024),
        config.event_subscribers.unwrap_or(256),
        metrics.clone(),
    ));
    let router = api::router(
        ApiState {
            commands: command_tx,
            metrics: metrics.clone(),
            reader: store.reader(),
            events: events.clone(),
            chain_id,
            zones: shared.zones.clone(),
        },
        shared.mode,
    );
    let tick_ms = config.tick_ms.unwrap_or(100);
    let mut replica = ReplicaConfig::for_tick(tick_ms, config.empty_block_ms.unwrap_or(1_000));
    replica.snapshot_interval_entries = config.snapshot_interval.unwrap_or(1_000);
    replica.mempool_capacity = config.mempool_capacity.unwrap_or(10_000);
    replica.replay = config.replay.unwrap_or(false);
    let parts = DriverParts {
        key,
        genesis: genesis_ledger,
        store,
        recovered,
        config: DriverConfig {
            tick: Duration::from_millis(tick_ms),
            replica,
        },
        metrics,
        inbound: inbound_rx,
        outbound: outbound_tx,
        commands: command_rx,
        shutdown: shared.shutdown.clone(),
        events,
        leaders: (chain_id, shared.leaders.clone()),
        name: name.clone(),
    };
    Ok(Prepared {
        spec_name: name,
        router,
        link: ZoneLink {
            zone: chain_id,
            validators,
            inbound: inbound_tx,
            outbound: outbound_rx,
            peers,
        },
        parts,
        chain_id,
    })
}

impl Prepared {
    /// Hands the zone's traffic to the network, serves its routes and starts its driver.
    async fn start(
        self,
        shared: &Shared,
        drivers: &mut tokio::task::JoinSet<DriverResult>,
    ) -> Result<Running> {
        let Prepared {
            spec_name: name,
            router,
            link,
            parts,
            chain_id,
        } = self;
        shared
            .links
            .send(link)
            .await
            .context("the network task stopped")?;
        shared
            .zones
            .insert(&name, chain_id, ZoneRoute::Serving(router));
        tracing::info!(zone = %name, chain = %chain_id, "starting the zone");
        let running = Running {
            name,
            chain_id,
            events: parts.events.clone(),
        };
        let handle = running.clone();
        drivers.spawn(async move {
            let span = tracing::info_span!("zone", name = %handle.name);
            let result = tokio::spawn(driver::run(parts).instrument(span)).await;
            (handle, result)
        });
        Ok(running)
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
