//! The peer-to-peer transport: libp2p over TCP with Noise and Yamux, and one long-lived
//! stream per (peer, zone) (see [`links`]) that carries Raft messages and forwarded
//! transactions as length-prefixed borsh frames with a hard size limit.
//!
//! One transport carries every zone the node serves: each frame names its zone (the
//! zone's chain id), and each zone has its own validator configuration, its own queue to
//! its driver and its own links with their own queues, so a zone that floods or stalls
//! does not hold up another. Only a zone's configured validators may speak in it: every
//! inbound Raft message must come from the libp2p peer that *that zone's* configuration
//! binds to the message's `from` node, and a forward from one of its validators' peers;
//! anything else is dropped and counted. Noise (X25519) is not
//! post-quantum, so authenticity of votes and blocks rests on their ML-DSA signatures, not
//! on the channel.

use agora_consensus::raft::{Message, NodeId};
use agora_core::ChainId;
use borsh::{BorshDeserialize, BorshSerialize};
use futures::{AsyncRead, AsyncReadExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The largest message accepted or sent, in bytes: one maximal block plus headroom.
pub const MAX_MESSAGE_BYTES: usize = 20 * 1024 * 1024;
const _: () = assert!(MAX_MESSAGE_BYTES > agora_core::block::MAX_BLOCK_BYTES);
/// Idle connections are kept well past the heartbeat interval.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest pause between reconnection attempts.
pub const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(5);

/// One frame of a link: a zone's chain id, then what is for that zone.
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub struct Request {
    /// The zone (its chain id).
    pub zone: ChainId,
    /// What is for it.
    pub body: RequestBody,
}

/// What a frame carries for its zone.
// Each message is moved once per hop; boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub enum RequestBody {
    /// A Raft message.
    Raft(Message),
    /// Client transactions forwarded to the leader, at most [`MAX_FORWARD_BATCH`]. Nobody
    /// waits for an answer: the follower learns their fate from the commit, or re-sends.
    SubmitTxs(Vec<Vec<u8>>),
}

/// The most transactions one forward carries (4 MiB at the 16 KiB transaction limit).
pub const MAX_FORWARD_BATCH: usize = 256;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    io.read_exact(&mut length).await?;
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {length} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"),
        ));
    }
    // The buffer grows as bytes arrive: a peer that announces the limit and sends nothing
    // must not make every open stream hold the limit in memory.
    let mut bytes = Vec::with_capacity(length.min(FRAME_READ_CHUNK));
    io.take(length as u64).read_to_end(&mut bytes).await?;
    if bytes.len() != length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "message announced {length} bytes, the stream ended after {}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// The capacity a frame's buffer starts with, whatever length the frame announces.
const FRAME_READ_CHUNK: usize = 64 * 1024;

/// Reads one framed [`Request`] from `bytes` exactly as a link reads it from its stream
/// (the fuzz targets and tests use it; see `fuzz/`).
pub fn read_request_bytes(bytes: &[u8]) -> io::Result<Request> {
    futures::executor::block_on(async {
        decode(&read_frame(&mut futures::io::Cursor::new(bytes)).await?)
    })
}

/// A request framed as a link writes it: the seeds of the fuzz corpus.
pub fn frame_request(request: &Request) -> Vec<u8> {
    frame(request).expect("within the size limit")
}

/// `value`'s frame: its borsh bytes after their length (a `u32`, little-endian), built in
/// one buffer so that the stream gets one write (one Yamux frame, one Noise frame, one
/// send), not one for the length and another for the bytes.
fn frame<T: BorshSerialize>(value: &T) -> io::Result<Vec<u8>> {
    const LENGTH: usize = 4;
    let mut out = vec![0; LENGTH];
    value.serialize(&mut out)?;
    let length = out.len() - LENGTH;
    if length > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {length} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"),
        ));
    }
    out[..LENGTH].copy_from_slice(&(length as u32).to_le_bytes());
    Ok(out)
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> io::Result<T> {
    borsh::from_slice(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    links: libp2p_stream::Behaviour,
    identify: identify::Behaviour,
}

/// Something the network hands to the driver.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Inbound {
    /// An authenticated Raft message.
    Raft(Message),
    /// Transactions forwarded by another validator (at most [`MAX_FORWARD_BATCH`]).
    SubmitTxs(Vec<Vec<u8>>),
    /// The last connection to this validator closed (its process died, or the link
    /// broke): the driver's replica campaigns early if it was the leader.
    Disconnected(NodeId),
}

/// Something the driver asks the network to do.
#[derive(Debug)]
pub enum Outbound {
    /// Send a Raft message.
    Raft(Box<Message>),
    /// Forward transactions to `leader`. Their fate is learned from the commit (or a
    /// re-send); the leader answers nothing.
    Forward {
        /// The leader.
        leader: NodeId,
        /// The transactions' bytes, at most [`MAX_FORWARD_BATCH`].
        txs: Vec<Vec<u8>>,
    },
    /// The validator configuration changed: node -> libp2p peer.
    Validators(BTreeMap<NodeId, PeerId>),
}

/// A zone's own traffic: its drivers's queues, and its validator configuration.
pub struct ZoneLink {
    /// The zone's chain id, which every request for it carries.
    pub zone: ChainId,
    /// The zone's validator configuration at start: node -> libp2p peer.
    pub validators: BTreeMap<NodeId, PeerId>,
    /// To the zone's driver.
    pub inbound: mpsc::Sender<Inbound>,
    /// From the zone's driver.
    pub outbound: mpsc::Receiver<Outbound>,
    /// Addresses of peers this zone needs that the node may not dial yet (each ending in
    /// `/p2p/<peer id>`).
    pub peers: Vec<Multiaddr>,
}

/// Counters the network keeps.
#[derive(Default, Debug)]
pub struct NetworkCounters {
    /// Raft messages from peers that are not the validator they claim to be, forwards
    /// from peers that are no validator, and frames for a zone this node does not serve.
    pub dropped_unauthorized: AtomicU64,
    /// Messages dropped because a queue was full: a link's to its peer, a zone driver's,
    /// or the inbound links' limit.
    pub dropped_backpressure: AtomicU64,
    /// Malformed or oversized inbound messages.
    pub dropped_malformed: AtomicU64,
    /// Peers currently connected.
    pub connected_peers: AtomicU64,
}

/// Settings for [`spawn`].
pub struct NetworkConfig {
    /// This node's libp2p identity.
    pub keypair: libp2p::identity::Keypair,
    /// Address to listen on.
    pub listen: Multiaddr,
    /// Addresses of the other validators (each ending in `/p2p/<peer id>`).
    pub peers: Vec<Multiaddr>,
}

/// Starts the network task with the zones served at start; returns once it listens.
/// Zones added later come in on `zones`.
pub async fn spawn(
    config: NetworkConfig,
    initial: Vec<ZoneLink>,
    mut zones: mpsc::Receiver<ZoneLink>,
    counters: Arc<NetworkCounters>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut swarm: Swarm<Behaviour> = libp2p::SwarmBuilder::with_existing_identity(config.keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|key| Behaviour {
            links: libp2p_stream::Behaviour::new(),
            // No cache of the addresses peers announce: a node dials only the addresses
            // its configuration names (an operator's proxy, NAT mapping or the tests'
            // fault proxies stay in the path).
            identify: identify::Behaviour::new(
                identify::Config::new("/agora/1".into(), key.public()).with_cache_size(0),
            ),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    swarm.listen_on(config.listen.clone()).map_err(|error| {
        // libp2p's transport error displays as an empty prefix before the OS error.
        let cause = match &error {
            libp2p::TransportError::Other(io) => io.to_string(),
            other => other.to_string(),
        };
        anyhow::anyhow!(
            "cannot listen for peers on {}: {cause} (the `listen` setting, --listen or \
             AGORA_LISTEN; another process may hold the port)",
            config.listen
        )
    })?;
    for address in config
        .peers
        .iter()
        .chain(initial.iter().flat_map(|link| &link.peers))
    {
        if peer_of(address).is_none() {
            anyhow::bail!("peer address {address} must end in /p2p/<peer id>");
        }
    }
    let mut control = swarm.behaviour().links.new_control();
    let incoming = control
        .accept(links::LINK_PROTOCOL)
        .map_err(|error| anyhow::anyhow!("cannot accept peer links: {error}"))?;
    let routes = links::Routes::default();
    let acceptor = tokio::spawn(links::accept_links(
        incoming,
        routes.clone(),
        counters.clone(),
    ));
    let mut state = State {
        routes,
        links: links::Links::new(control, counters.clone()),
        backoff: BTreeMap::new(),
        connected: BTreeSet::new(),
        addresses: BTreeMap::new(),
        counters,
    };
    let mut from_drivers = futures::stream::SelectAll::new();
    state.add_peers(&mut swarm, &config.peers);
    for link in initial {
        state.add_zone(&mut swarm, link, &mut from_drivers);
    }
    let handle = tokio::spawn(async move {
        let mut redial = tokio::time::interval(Duration::from_millis(250));
        let mut zones_open = true;
        loop {
            tokio::select! {
                event = swarm.select_next_some() => state.on_event(event),
                Some((zone, command)) = from_drivers.next(), if !from_drivers.is_empty() => {
                    state.on_command(zone, command)
                }
                link = zones.recv(), if zones_open => match link {
                    Some(link) => state.add_zone(&mut swarm, link, &mut from_drivers),
                    None => zones_open = false,
                },
                _ = redial.tick() => {
                    // Every driver gone (the node is stopping) and no zone can come: done.
                    if from_drivers.is_empty() && !zones_open {
                        break;
                    }
                    state.redial(&mut swarm)
                }
            }
        }
        acceptor.abort();
    });
    Ok(handle)
}

/// A zone's commands from its driver, each tagged with the zone.
type DriverStream = futures::stream::BoxStream<'static, (ChainId, Outbound)>;

fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

struct State {
    /// Every zone served: its validators and its driver's queue.
    routes: links::Routes,
    links: links::Links,
    /// Next redial time and current backoff per disconnected peer.
    backoff: BTreeMap<PeerId, (tokio::time::Instant, Duration)>,
    connected: BTreeSet<PeerId>,
    addresses: BTreeMap<PeerId, Multiaddr>,
    counters: Arc<NetworkCounters>,
}

/// Dial options that always carry the configured address: libp2p forgets a peer's
/// address after a refused connection (a restarting peer), so it is supplied every time.
fn dial_options(
    peer: PeerId,
    addresses: &BTreeMap<PeerId, Multiaddr>,
) -> libp2p::swarm::dial_opts::DialOpts {
    libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
        .addresses(addresses.get(&peer).cloned().into_iter().collect())
        .extend_addresses_through_behaviour()
        .build()
}

impl State {
    /// Dials peers the node did not know (addresses were checked at start, or by the
    /// zone's loader).
    fn add_peers(&mut self, swarm: &mut Swarm<Behaviour>, peers: &[Multiaddr]) {
        for address in peers {
            let Some(peer) = peer_of(address) else {
                tracing::warn!(%address, "a peer address without /p2p/<peer id> is ignored");
                continue;
            };
            if self.addresses.insert(peer, address.clone()).is_none() {
                swarm.add_peer_address(peer, address.clone());
                let _ = swarm.dial(dial_options(peer, &self.addresses));
            }
        }
    }

    /// Starts carrying a zone's traffic (a zone already served is replaced: its driver
    /// restarted).
    fn add_zone(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        link: ZoneLink,
        from_drivers: &mut futures::stream::SelectAll<DriverStream>,
    ) {
        let ZoneLink {
            zone,
            validators,
            inbound,
            outbound,
            peers,
        } = link;
        self.add_peers(swarm, &peers);
        self.links.retain(&zone, &validators);
        self.routes.write().insert(
            zone,
            links::Route {
                validators,
                inbound,
            },
        );
        from_drivers.push(Box::pin(futures::stream::unfold(
            outbound,
            move |mut outbound| async move {
                let command = outbound.recv().await?;
                Some(((zone, command), outbound))
            },
        )));
    }

    fn peer_in(&self, zone: &ChainId, node: &NodeId) -> Option<PeerId> {
        self.routes.read().get(zone)?.validators.get(node).copied()
    }

    fn on_command(&mut self, zone: ChainId, command: Outbound) {
        match command {
            Outbound::Raft(message) => {
                if let Some(peer) = self.peer_in(&zone, &message.to) {
                    self.links.send(peer, zone, RequestBody::Raft(*message));
                }
            }
            Outbound::Forward { leader, txs } => {
                if let Some(peer) = self.peer_in(&zone, &leader) {
                    self.links.send(peer, zone, RequestBody::SubmitTxs(txs));
                }
            }
            Outbound::Validators(validators) => {
                self.links.retain(&zone, &validators);
                if let Some(route) = self.routes.write().get_mut(&zone) {
                    route.validators = validators;
                }
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                self.connected.insert(peer_id);
                self.backoff.remove(&peer_id);
                self.counters
                    .connected_peers
                    .store(self.connected.len() as u64, Ordering::Relaxed);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                // Requests to the peer end in an OutboundFailure each, which releases them.
                self.connected.remove(&peer_id);
                self.report_disconnected(peer_id);
                self.counters
                    .connected_peers
                    .store(self.connected.len() as u64, Ordering::Relaxed);
                self.schedule_redial(peer_id);
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::error!(%error, "the p2p listener failed")
            }
            SwarmEvent::ListenerClosed {
                reason: Err(error),
                addresses,
                ..
            } => {
                tracing::error!(%error, ?addresses, "the p2p listener closed; peers cannot reach this node")
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer_id),
                ..
            } => self.schedule_redial(peer_id),
            _ => {}
        }
    }

    /// Tells each zone's driver that `peer`, as whichever validator it is there, is no
    /// longer connected. A full queue drops the notice: that driver's replica then waits
    /// out its usual election timeout.
    fn report_disconnected(&self, peer: PeerId) {
        for route in self.routes.read().values() {
            for (node, _) in route.validators.iter().filter(|(_, p)| **p == peer) {
                if route
                    .inbound
                    .try_send(Inbound::Disconnected(*node))
                    .is_err()
                {
                    self.counters
                        .dropped_backpressure
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn schedule_redial(&mut self, peer: PeerId) {
        if !self.addresses.contains_key(&peer) {
            return;
        }
        let backoff = self
            .backoff
            .get(&peer)
            .map_or(Duration::from_millis(100), |(_, b)| {
                (*b * 2).min(MAX_RECONNECT_BACKOFF)
            });
        self.backoff
            .insert(peer, (tokio::time::Instant::now() + backoff, backoff));
    }

    fn redial(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = tokio::time::Instant::now();
        let due: Vec<PeerId> = self
            .backoff
            .iter()
            .filter(|(p, (at, _))| *at <= now && !self.connected.contains(p))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            if let Some((at, backoff)) = self.backoff.get_mut(&peer) {
                *at = now + *backoff;
            }
            let _ = swarm.dial(dial_options(peer, &self.addresses));
        }
    }
}

pub mod links;

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::Hash32;

    /// A frame reads back as it was written; a frame that announces more than it carries,
    /// or more than the limit, or is cut inside its length, is an error and not a value.
    #[test]
    fn frames_read_back_and_short_or_oversized_frames_are_refused() {
        let request = Request {
            zone: Hash32([7; 32]),
            body: RequestBody::SubmitTxs(vec![vec![1, 2, 3], vec![]]),
        };
        let framed = frame_request(&request);
        let body = borsh::to_vec(&request).unwrap();
        assert_eq!(framed[..4], (body.len() as u32).to_le_bytes());
        assert_eq!(framed[4..], body[..]);
        match read_request_bytes(&framed).unwrap() {
            Request {
                zone,
                body: RequestBody::SubmitTxs(txs),
            } => {
                assert_eq!(zone, Hash32([7; 32]));
                assert_eq!(txs, vec![vec![1, 2, 3], vec![]])
            }
            other => panic!("read back {other:?}"),
        }
        let mut announced_limit = (MAX_MESSAGE_BYTES as u32).to_le_bytes().to_vec();
        announced_limit.extend_from_slice(&[0; 10]);
        let error = read_request_bytes(&announced_limit).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(error.to_string().contains("ended after 10"), "{error}");
        let over = ((MAX_MESSAGE_BYTES + 1) as u32).to_le_bytes();
        assert_eq!(
            read_request_bytes(&over).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(read_request_bytes(&framed[..2]).is_err());
        let mut trailing = framed.clone();
        trailing[0] += 1;
        trailing.push(0);
        assert!(
            read_request_bytes(&trailing).is_err(),
            "trailing bytes refused"
        );
        // Nor is one written: a message over the limit is an error to its sender.
        let oversized = Request {
            zone: Hash32([7; 32]),
            body: RequestBody::SubmitTxs(vec![vec![0; MAX_MESSAGE_BYTES]]),
        };
        let error = frame(&oversized).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("-byte limit"), "{error}");
    }
}
