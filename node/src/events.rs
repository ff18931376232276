//! The event stream, `GET /v1/events` (Server-Sent Events; message types in
//! `agora_api::stream`).
//!
//! The driver publishes each archived height's messages (rendered once) and each role
//! change into one broadcast channel, after the writes are durable, so a subscriber never
//! sees a height the node could lose. Publishing never waits: with no subscriber it costs
//! nothing, and a subscriber that falls behind is cut off, never allowed to slow the node.
//!
//! Each subscriber has a task that moves messages from the broadcast channel into the
//! subscriber's own bounded buffer (`event_buffer` messages). When that buffer is full (the
//! client, or its TCP window, is not taking messages) or the broadcast channel overran it,
//! the subscription ends with a `closed` message naming the reason and the height to
//! resume from. A resumed subscription (`?from=H`, or `Last-Event-ID: H-1`) first reads
//! heights from the block archive, then continues live, each height once.

use crate::api::{ApiState, Failure};
use crate::metrics::Metrics;
use agora_api::stream::{
    height_messages, leader_message, ClosedMessage, CommitMessage, LeaderMessage, StreamFilter,
    StreamKind, StreamMessage,
};
use agora_api::ApiError;
use agora_consensus::raft::Role;
use agora_consensus::replica::{role_name, Write};
use agora_core::AccountId;
use axum::extract::{Query as UrlQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit, Semaphore};

/// Batches of messages the broadcast channel holds for its slowest subscriber.
const BROADCAST_BATCHES: usize = 1_024;

/// Where the driver publishes and subscribers subscribe.
pub struct EventHub {
    sender: broadcast::Sender<Arc<Vec<StreamMessage>>>,
    node: AccountId,
    buffer: usize,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    /// Set once the node stops: every subscription ends with a `closed` message, so an
    /// open stream never holds the HTTP server (and the node's exit) open.
    stopping: watch::Sender<bool>,
}

impl EventHub {
    /// A hub for node `node`: `buffer` messages per subscriber, at most `subscribers` at
    /// once.
    pub fn new(
        node: AccountId,
        buffer: usize,
        subscribers: usize,
        metrics: Arc<Metrics>,
    ) -> EventHub {
        EventHub {
            sender: broadcast::channel(BROADCAST_BATCHES).0,
            node,
            buffer: buffer.max(1),
            slots: Arc::new(Semaphore::new(subscribers)),
            metrics,
            stopping: watch::channel(false).0,
        }
    }

    /// Ends every subscription, present and future, with `closed` ("the node is shutting
    /// down") and the height to resume from. Called when the node stops.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Publishes the messages of every height `writes` archived. Call once they are
    /// durable.
    pub fn publish_writes(&self, writes: &[Write]) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        for write in writes {
            if let Write::Archive {
                entry,
                receipts,
                events,
                traces,
                state_root,
            } = write
            {
                let commit = CommitMessage {
                    height: entry.index,
                    state_root: *state_root,
                    receipts: receipts.clone(),
                    events: events.clone(),
                    traces: traces.clone(),
                };
                // No subscriber left is not an error.
                let _ = self.sender.send(Arc::new(height_messages(&commit)));
            }
        }
    }

    /// Publishes a role or leader change.
    pub fn publish_role(&self, role: Role, leader: Option<AccountId>, term: u64) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let message = leader_message(&LeaderMessage {
            node: self.node,
            role: role_name(role),
            term,
            leader,
        });
        let _ = self.sender.send(Arc::new(vec![message]));
    }
}

/// `GET /v1/events` parameters.
#[derive(Deserialize)]
pub struct EventParams {
    /// Start at this height (archived heights first).
    from: Option<String>,
    /// Comma-separated kinds.
    kind: Option<String>,
    /// Only what concerns this account.
    account: Option<String>,
}

/// The handler.
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    description = "Server-Sent Events. Each message's `event:` names its kind and its `data:` is JSON: `commit` (CommitMessage, `id` = height), `leader` (LeaderMessage, no id), `proposal` and `validators` (ChangeMessage, `id` = height), and a last `closed` (ClosedMessage) when the node ends the stream. A subscriber that falls `event_buffer` messages behind is cut off with the reason and the height to resume from.",
    params(
        ("from" = Option<u64>, Query, description = "Start at this height: archived heights first, then live"),
        ("kind" = Option<String>, Query, description = "Comma-separated: commit, leader, proposal, validators (default all)"),
        ("account" = Option<String>, Query, description = "Only what concerns this account: its transactions and the events naming it (leader messages always pass)"),
        ("Last-Event-ID" = Option<u64>, Header, description = "The last height received; the stream restarts after it (wins over `from`)")
    ),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad kind, account or height", body = agora_api::ErrorBody),
        (status = 503, description = "As many subscribers as the node serves", body = agora_api::ErrorBody)
    )
)]
pub async fn events(
    State(state): State<ApiState>,
    UrlQuery(params): UrlQuery<EventParams>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let filter = StreamFilter::parse(params.kind.as_deref(), params.account.as_deref())?;
    let from = start_height(params.from.as_deref(), &headers)?;
    let hub = state.events.clone();
    let permit = hub.slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::busy("this node serves as many event subscribers as it is configured for")
    })?;
    // Subscribe before reading the archive, so no height falls between the two.
    let live = hub.sender.subscribe();
    let (messages, buffered) = mpsc::channel(hub.buffer);
    let closed = Arc::new(Mutex::new(None));
    hub.metrics.event_subscribers.inc();
    tokio::spawn(
        Subscriber {
            live,
            messages,
            filter,
            next: from.unwrap_or(0),
            closed: closed.clone(),
            hub: hub.clone(),
            _permit: permit,
        }
        .run(state.reader.clone(), from),
    );
    let stream = futures::stream::unfold(buffered, |mut buffered| async move {
        buffered.recv().await.map(|event| (event, buffered))
    })
    .chain(
        futures::stream::once(async move {
            let closed = closed.lock().expect("not poisoned").take();
            closed.map(|c: ClosedMessage| to_sse(StreamKind::Closed, None, json(&c)))
        })
        .filter_map(|event| async move { event }),
    )
    .map(Ok::<_, Infallible>);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Where a subscription starts: `Last-Event-ID` (the last height received) wins over
/// `?from=`, since a browser reconnecting sends the one and repeats the other.
fn start_height(from: Option<&str>, headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let parse = |what: &str, text: &str| {
        text.trim().parse::<u64>().map_err(|_| {
            ApiError::new(
                400,
                "bad_height",
                format!("{what} {text:?}: expected a height (a whole number)"),
            )
        })
    };
    if let Some(last) = headers.get("last-event-id") {
        let text = last.to_str().unwrap_or_default();
        return Ok(Some(parse("Last-Event-ID", text)?.saturating_add(1)));
    }
    from.map(|text| parse("from", text)).transpose()
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("serializes")
}

fn to_sse(kind: StreamKind, height: Option<u64>, data: String) -> SseEvent {
    let event = SseEvent::default().event(kind.name()).data(data);
    match height {
        Some(height) => event.id(height.to_string()),
        None => event,
    }
}

/// One subscription's task.
struct Subscriber {
    live: broadcast::Receiver<Arc<Vec<StreamMessage>>>,
    messages: mpsc::Sender<SseEvent>,
    filter: StreamFilter,
    /// The first height not yet sent.
    next: u64,
    closed: Arc<Mutex<Option<ClosedMessage>>>,
    hub: Arc<EventHub>,
    _permit: OwnedSemaphorePermit,
}

impl Subscriber {
    async fn run(mut self, reader: crate::sqlite::StoreReader, from: Option<u64>) {
        let mut stopping = self.hub.stopping.subscribe();
        let reason = tokio::select! {
            reason = self.follow(&reader, from) => reason,
            _ = stopping.wait_for(|stopping| *stopping) => Some("the node is shutting down".into()),
        };
        if let Some(reason) = reason {
            self.close(reason);
        }
        self.end()
    }

    /// Sends the archive from `from` (if given), then live batches; why the node ended the
    /// subscription, or `None` when the client went away.
    async fn follow(
        &mut self,
        reader: &crate::sqlite::StoreReader,
        from: Option<u64>,
    ) -> Option<String> {
        if from.is_some() {
            if let Err(reason) = self.replay(reader).await {
                return Some(reason);
            }
        }
        loop {
            match self.live.recv().await {
                Ok(batch) => {
                    if let Err(reason) = self.offer(&batch) {
                        self.hub.metrics.event_subscribers_cut.inc();
                        return Some(reason);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.hub.metrics.event_subscribers_cut.inc();
                    return Some(format!(
                        "fell {missed} batches behind the node's stream; resume from the height given"
                    ));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Some("the node is shutting down".into());
                }
            }
            if self.messages.is_closed() {
                return None; // the client went away
            }
        }
    }

    fn end(self) {
        self.hub.metrics.event_subscribers.dec();
    }

    /// Sends archived heights from `next` on, waiting for room (the live channel keeps
    /// what arrives meanwhile, up to its bound).
    async fn replay(&mut self, reader: &crate::sqlite::StoreReader) -> Result<(), String> {
        loop {
            let block = reader
                .block(self.next)
                .await
                .map_err(|e| format!("the block archive failed: {e}"))?;
            let Some(block) = block else {
                return Ok(());
            };
            let commit = CommitMessage {
                height: block.height,
                state_root: block.state_root,
                receipts: block.receipts,
                events: block.events,
                traces: block.traces,
            };
            for message in height_messages(&commit) {
                if self.filter.admits(&message) {
                    let event = to_sse(message.kind, message.height, message.data);
                    if self.messages.send(event).await.is_err() {
                        return Ok(()); // the client went away
                    }
                }
            }
            self.next += 1;
        }
    }

    /// Puts a live batch into the buffer; an error if it is full.
    fn offer(&mut self, batch: &[StreamMessage]) -> Result<(), String> {
        for message in batch {
            if message.height.is_some_and(|h| h < self.next) {
                continue; // sent from the archive already
            }
            if self.filter.admits(message) {
                let event = to_sse(message.kind, message.height, message.data.clone());
                match self.messages.try_send(event) {
                    Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        return Err(format!(
                            "the subscriber's buffer of {} messages is full: it reads more slowly than the node commits",
                            self.hub.buffer
                        ));
                    }
                }
            }
        }
        if let Some(height) = batch.iter().filter_map(|m| m.height).max() {
            self.next = self.next.max(height + 1);
        }
        Ok(())
    }

    fn close(&self, reason: String) {
        *self.closed.lock().expect("not poisoned") = Some(ClosedMessage {
            reason,
            resume_from: self.next,
        });
    }
}
