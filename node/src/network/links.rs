//! Peers talk on one long-lived stream per (peer, zone), protocol [`LINK_PROTOCOL`]:
//! frames one after another, each a [`Request`] (a Raft message, or transactions
//! forwarded to the leader), and no answers. Raft retransmits what is lost, and a
//! follower learns a forwarded transaction's fate from the commit or re-sends it. A
//! request-response exchange per message used to cost a stream's open, its protocol
//! negotiation, an answer and a close (about eight Yamux and Noise frames, each a send
//! and a wake-up on both sides); a link costs one frame, and one frame for every message
//! that queued while the last batch was written.
//!
//! Sending: [`Links::send`] puts a message on its (peer, zone) queue, bounded at
//! [`MAX_QUEUED_PER_LINK`]; a full queue drops the message and counts it. Each queue has
//! a writer task that opens the stream when it has something to send, and drops it (and
//! whatever queued meanwhile) when an open or a write fails or stalls past its timeout;
//! the next message opens a new one.
//!
//! Receiving: every inbound stream gets a reader task, at most [`MAX_INBOUND_LINKS`] at
//! once. Each frame is checked against its zone's configuration before it goes to the
//! zone's driver: a Raft message must come from the peer bound to its `from` node, a
//! forward from a peer bound to some validator. A frame that is oversized or does not
//! decode, or a forward of more than [`MAX_FORWARD_BATCH`] transactions, ends its stream.

use super::{
    decode, frame, read_frame, Inbound, NetworkCounters, Request, RequestBody, MAX_FORWARD_BATCH,
};
use agora_consensus::raft::NodeId;
use agora_core::ChainId;
use futures::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// The protocol of a link. (Before links, `/agora/consensus/3` was request-response: one
/// stream and one answer per message. Nodes of different versions do not negotiate,
/// rather than misread each other.)
pub const LINK_PROTOCOL: StreamProtocol = StreamProtocol::new("/agora/link/1");
/// Messages queued for one peer in one zone; past this they are dropped and counted.
pub const MAX_QUEUED_PER_LINK: usize = 512;
/// Inbound links read at once, from all peers; a stream past this is closed at once.
pub const MAX_INBOUND_LINKS: usize = 256;
/// How long opening a link may take before its queue is dropped.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one batch's write may take before the link is dropped (a peer that stopped
/// reading, or a connection that went silent without closing).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed open, the writer waits this long before it tries again.
const REOPEN_PAUSE: Duration = Duration::from_millis(100);
/// Queued messages are written together up to about this many bytes.
const BATCH_BYTES: usize = 1024 * 1024;

/// One zone as its inbound links see it.
pub(super) struct Route {
    /// Its validator configuration: node -> libp2p peer.
    pub(super) validators: BTreeMap<NodeId, PeerId>,
    /// Its driver's queue.
    pub(super) inbound: mpsc::Sender<Inbound>,
}

/// Every zone the node serves, shared by the network task and the reader tasks. Neither
/// holds the lock across an await; a panic while holding it leaves the map as it was, so
/// a poisoned lock is used as is.
#[derive(Clone, Default)]
pub(super) struct Routes(Arc<RwLock<BTreeMap<ChainId, Route>>>);

impl Routes {
    pub(super) fn read(&self) -> RwLockReadGuard<'_, BTreeMap<ChainId, Route>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<ChainId, Route>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The outbound links: one queue and writer task per (peer, zone).
pub(super) struct Links {
    control: libp2p_stream::Control,
    queues: BTreeMap<(PeerId, ChainId), mpsc::Sender<RequestBody>>,
    counters: Arc<NetworkCounters>,
}

impl Links {
    pub(super) fn new(control: libp2p_stream::Control, counters: Arc<NetworkCounters>) -> Self {
        Links {
            control,
            queues: BTreeMap::new(),
            counters,
        }
    }

    /// Queues `message` for `peer` in `zone`, or drops and counts it if the queue is full.
    pub(super) fn send(&mut self, peer: PeerId, zone: ChainId, message: RequestBody) {
        let queue = self.queues.entry((peer, zone)).or_insert_with(|| {
            let (queue, messages) = mpsc::channel(MAX_QUEUED_PER_LINK);
            let control = self.control.clone();
            tokio::spawn(write_link(control, peer, zone, messages));
            queue
        });
        if let Err(error) = queue.try_send(message) {
            self.counters
                .dropped_backpressure
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, full = matches!(error, mpsc::error::TrySendError::Full(_)),
                "dropping a message to a peer: its link's queue is full");
        }
    }

    /// Closes the links of `zone` to peers outside `validators` (their writers end).
    pub(super) fn retain(&mut self, zone: &ChainId, validators: &BTreeMap<NodeId, PeerId>) {
        self.queues
            .retain(|(peer, z), _| z != zone || validators.values().any(|p| p == peer));
    }
}

/// A link's writer: opens the stream when there is something to send, writes whatever
/// queued as one batch, and starts over on a new stream after a failure.
async fn write_link(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    zone: ChainId,
    mut messages: mpsc::Receiver<RequestBody>,
) {
    let mut link: Option<Stream> = None;
    let mut batch = Vec::new();
    while let Some(first) = messages.recv().await {
        let mut first = Some(first);
        // A link left idle while its connection closed (its peer restarted) fails at its
        // first write: the batch goes again, once, on a new stream. Without this, the
        // answer to a pre-vote was lost on such a link and the election waited out a
        // second timeout (found by `bench/failover.sh`).
        for _attempt in 0..2 {
            if link.is_none() {
                match open_link(&mut control, peer).await {
                    Ok(stream) => link = Some(stream),
                    Err(error) => {
                        // What queued meanwhile is stale by the time a link opens.
                        while messages.try_recv().is_ok() {}
                        tracing::debug!(%peer, %error, "cannot open a link");
                        tokio::time::sleep(REOPEN_PAUSE).await;
                        break;
                    }
                }
            }
            if let Some(first) = first.take() {
                fill_batch(&mut batch, first, &mut messages, zone, peer);
            }
            let stream = link.as_mut().expect("opened above");
            match write_batch(stream, &batch).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::debug!(%peer, %error, "a link failed; trying a new one");
                    link = None;
                    if error.kind() == io::ErrorKind::TimedOut {
                        break; // a stalled peer: the next message tries again
                    }
                }
            }
        }
    }
}

/// Opens a link's stream to `peer`, giving up after [`OPEN_TIMEOUT`].
async fn open_link(control: &mut libp2p_stream::Control, peer: PeerId) -> Result<Stream, String> {
    match tokio::time::timeout(OPEN_TIMEOUT, control.open_stream(peer, LINK_PROTOCOL)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".to_string()),
    }
}

/// Frames `first` and whatever else is queued, up to [`BATCH_BYTES`], into `batch`.
fn fill_batch(
    batch: &mut Vec<u8>,
    first: RequestBody,
    messages: &mut mpsc::Receiver<RequestBody>,
    zone: ChainId,
    peer: PeerId,
) {
    batch.clear();
    let mut next = Some(first);
    while let Some(body) = next.take() {
        match frame(&Request { zone, body }) {
            Ok(bytes) => batch.extend_from_slice(&bytes),
            Err(error) => tracing::error!(%peer, %error, "a message was not sent"),
        }
        if batch.len() < BATCH_BYTES {
            next = messages.try_recv().ok();
        }
    }
}

/// Writes `batch` to `stream`, or fails with [`io::ErrorKind::TimedOut`] after
/// [`WRITE_TIMEOUT`].
async fn write_batch(stream: &mut Stream, batch: &[u8]) -> io::Result<()> {
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(batch).await?;
        stream.flush().await
    })
    .await
    .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled")))
}

/// Accepts inbound links and reads each on a task of its own, at most
/// [`MAX_INBOUND_LINKS`] at once.
pub(super) async fn accept_links(
    mut incoming: libp2p_stream::IncomingStreams,
    routes: Routes,
    counters: Arc<NetworkCounters>,
) {
    let slots = Arc::new(Semaphore::new(MAX_INBOUND_LINKS));
    while let Some((peer, stream)) = incoming.next().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counters
                .dropped_backpressure
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "closing an inbound link: too many are open");
            continue;
        };
        let (routes, counters) = (routes.clone(), counters.clone());
        tokio::spawn(async move {
            read_link(peer, stream, &routes, &counters).await;
            drop(slot);
        });
    }
}

async fn read_link(peer: PeerId, mut stream: Stream, routes: &Routes, counters: &NetworkCounters) {
    loop {
        let request = match read_frame(&mut stream).await.and_then(|b| decode(&b)) {
            Ok(request) => request,
            Err(error) => {
                if error.kind() == io::ErrorKind::InvalidData {
                    counters.dropped_malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, %error, "closing a link: a malformed frame");
                }
                return;
            }
        };
        if !deliver(peer, request, routes, counters) {
            return;
        }
    }
}

/// Hands one frame of `peer`'s link to its zone's driver if `peer` may send it there (a
/// Raft message: the peer bound to its `from` node; a forward: a peer bound to some
/// validator); drops and counts it otherwise. False if the frame breaks the protocol
/// (the link is then closed).
pub(super) fn deliver(
    peer: PeerId,
    request: Request,
    routes: &Routes,
    counters: &NetworkCounters,
) -> bool {
    let Request { zone, body } = request;
    if let RequestBody::SubmitTxs(txs) = &body {
        if txs.len() > MAX_FORWARD_BATCH {
            counters.dropped_malformed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, count = txs.len(), "closing a link: an oversized forward");
            return false;
        }
    }
    let routes = routes.read();
    let route = routes.get(&zone).filter(|route| match &body {
        RequestBody::Raft(message) => route.validators.get(&message.from) == Some(&peer),
        RequestBody::SubmitTxs(_) => route.validators.values().any(|p| *p == peer),
    });
    let Some(route) = route else {
        counters
            .dropped_unauthorized
            .fetch_add(1, Ordering::Relaxed);
        return true;
    };
    let inbound = match body {
        RequestBody::Raft(message) => Inbound::Raft(message),
        RequestBody::SubmitTxs(txs) => Inbound::SubmitTxs(txs),
    };
    if route.inbound.try_send(inbound).is_err() {
        counters
            .dropped_backpressure
            .fetch_add(1, Ordering::Relaxed);
    }
    true
}

#[cfg(test)]
mod tests;
