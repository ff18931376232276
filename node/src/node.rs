//! A whole node: storage, network, driver and HTTP API, from a [`NodeConfig`].

use crate::api::{self, ApiState};
use crate::config::NodeConfig;
use crate::driver::{self, DriverConfig, DriverError, DriverParts};
use crate::events::EventHub;
use crate::keys;
use crate::metrics::Metrics;
use crate::network::{self, NetworkConfig, NetworkCounters};
use crate::sqlite::SqliteStore;
use agora_consensus::replica::ReplicaConfig;
use agora_core::genesis::Genesis;
use agora_core::{AccountId, Ledger};
use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long a stopping node waits for HTTP requests in flight before closing their
/// connections.
const HTTP_DRAIN: Duration = Duration::from_secs(10);

/// Runs a node until `stop` completes (then: no new requests, flush, close) or the driver
/// halts (an error: the node must not continue).
pub async fn run(config: NodeConfig, stop: impl Future<Output = ()>) -> Result<()> {
    let data_dir = config
        .data_dir
        .clone()
        .context("no data directory: pass --data-dir, AGORA_DATA_DIR or data_dir in node.toml")?;
    let genesis_path = config
        .genesis
        .clone()
        .context("no genesis: pass --genesis, AGORA_GENESIS or genesis in node.toml")?;
    let genesis = Genesis::from_json(
        &std::fs::read_to_string(&genesis_path)
            .with_context(|| format!("reading {}", genesis_path.display()))?,
    )
    .with_context(|| format!("{} is not a valid genesis", genesis_path.display()))?;
    let key = keys::load_ml_dsa(&data_dir.join(keys::VALIDATOR_KEY_FILE))?;
    let network_key = keys::load_network_key(&data_dir.join(keys::NETWORK_KEY_FILE))?;
    let genesis_ledger = Ledger::from_genesis(&genesis);
    let store = SqliteStore::open(&data_dir.join(crate::sqlite::STORE_FILE)).await?;
    // Every stored row is read and checked here, before the node listens to anyone: a
    // corrupt database stops it before it has served or signed anything.
    let recovered = agora_consensus::storage::LogStore::load(&store)
        .await
        .map_err(DriverError::from)?;
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
    let peers: Vec<libp2p::Multiaddr> = config
        .peers
        .iter()
        .map(|p| p.parse().with_context(|| format!("bad peer address {p}")))
        .collect::<Result<_>>()?;

    let counters = Arc::new(NetworkCounters::default());
    let metrics = Arc::new(Metrics::new(counters.clone()));
    let (inbound_tx, inbound_rx) = mpsc::channel(4_096);
    let (outbound_tx, outbound_rx) = mpsc::channel(4_096);
    let (command_tx, command_rx) = mpsc::channel(1_024);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let target = genesis_ledger.target_config();
    let validators = target
        .members
        .iter()
        .chain(&target.witnesses)
        .filter_map(|m| Some((m.validator, libp2p::PeerId::from_bytes(&m.peer).ok()?)))
        .collect();
    let network = network::spawn(
        NetworkConfig {
            keypair: network_key,
            listen: listen.clone(),
            peers,
            validators,
        },
        inbound_tx,
        outbound_rx,
        counters,
    )
    .await?;

    let listener = tokio::net::TcpListener::bind(&http)
        .await
        .with_context(|| {
            format!(
                "cannot serve the HTTP API on {http} (the `http` setting, --http or AGORA_HTTP)"
            )
        })?;
    let mode = if config.replay.unwrap_or(false) {
        api::Mode::Replay
    } else {
        api::Mode::Chain
    };
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
            chain_id: genesis.chain_id(),
        },
        mode,
    );
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
    let tick_ms = config.tick_ms.unwrap_or(100);
    let mut replica = ReplicaConfig::for_tick(tick_ms, config.empty_block_ms.unwrap_or(1_000));
    replica.snapshot_interval_entries = config.snapshot_interval.unwrap_or(1_000);
    replica.mempool_capacity = config.mempool_capacity.unwrap_or(10_000);
    replica.replay = config.replay.unwrap_or(false);
    let driver_config = DriverConfig {
        tick: Duration::from_millis(tick_ms),
        replica,
    };
    tracing::info!(node = %AccountId::from_public_key(key.public_key()), %listen, %http, chain = %genesis.chain_id(), "starting");
    let parts = DriverParts {
        key,
        genesis: genesis_ledger,
        store,
        recovered,
        config: driver_config,
        metrics,
        inbound: inbound_rx,
        outbound: outbound_tx,
        commands: command_rx,
        shutdown: shutdown_rx,
        events: events.clone(),
    };
    let mut driver = tokio::spawn(driver::run(parts));
    let result = tokio::select! {
        result = &mut driver => result,
        _ = stop => {
            tracing::info!("signal received: stopping (no new requests, flushing, closing)");
            let _ = shutdown_tx.send(true);
            driver.await
        }
    };
    let _ = shutdown_tx.send(true);
    // Open event streams end with `closed`; requests in flight get their answers. A client
    // that still holds a connection after HTTP_DRAIN does not keep the node from exiting.
    events.stop();
    let server_abort = server.abort_handle();
    if tokio::time::timeout(HTTP_DRAIN, server).await.is_err() {
        tracing::warn!(
            seconds = HTTP_DRAIN.as_secs(),
            "HTTP connections still open after the drain period: closing them"
        );
        server_abort.abort();
    }
    network.abort();
    Ok(result.context("the driver task panicked")??)
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
