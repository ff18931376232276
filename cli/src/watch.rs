//! `agora watch`: follows a node's event stream (`GET /v1/events`, Server-Sent Events),
//! printing one line per message, and resumes where it left off when the node ends the
//! stream or the connection drops.

use crate::client::Failure;
use agora_api::stream::{ChangeMessage, ClosedMessage, CommitMessage, LeaderMessage, StreamKind};
use anyhow::anyhow;
use std::io::{BufRead, BufReader};
use std::time::Duration;

/// One SSE message as it came over the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseMessage {
    /// The `event:` field.
    pub event: String,
    /// The `id:` field.
    pub id: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

/// Reads SSE messages from `reader`, calling `on` for each until it returns false or the
/// stream ends. Comments (keep-alives) are skipped.
pub fn read_messages(
    reader: impl std::io::Read,
    mut on: impl FnMut(SseMessage) -> bool,
) -> std::io::Result<()> {
    let mut current = SseMessage::default();
    let mut has_data = false;
    for line in BufReader::new(reader).lines() {
        let line = line?;
        if line.is_empty() {
            if has_data && !on(std::mem::take(&mut current)) {
                return Ok(());
            }
            current = SseMessage::default();
            has_data = false;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => current.event = value.to_string(),
            "id" => current.id = Some(value.to_string()),
            "data" => {
                if has_data {
                    current.data.push('\n');
                }
                current.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    Ok(())
}

/// What to follow.
pub struct Watch {
    /// The event stream's URL (`…/v1/events`, or a zone's).
    pub events_url: String,
    /// Start at this height.
    pub from: Option<u64>,
    /// Comma-separated kinds.
    pub kinds: Option<String>,
    /// Only what concerns this account.
    pub account: Option<String>,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// Print each message's JSON instead of a line of text.
    pub json: bool,
}

impl Watch {
    /// Follows the stream until `count` messages were printed (forever without one).
    pub fn run(&self) -> Result<(), Failure> {
        let http = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .map_err(|e| Failure::Other(anyhow!("an HTTP client: {e}")))?;
        let mut from = self.from;
        let mut printed = 0u64;
        loop {
            let mut url = format!("{}?", self.events_url);
            if let Some(from) = from {
                url.push_str(&format!("from={from}&"));
            }
            if let Some(kinds) = &self.kinds {
                url.push_str(&format!("kind={kinds}&"));
            }
            if let Some(account) = &self.account {
                url.push_str(&format!("account={account}&"));
            }
            let response = http
                .get(&url)
                .send()
                .map_err(|e| Failure::Unreachable(format!("{url}: {e}")))?;
            let status = response.status().as_u16();
            if status != 200 {
                let body: serde_json::Value = response.json().unwrap_or_default();
                let message = format!("{status}: {body}");
                return Err(if (400..500).contains(&status) {
                    Failure::Rejected(message)
                } else {
                    Failure::Unreachable(message)
                });
            }
            let mut done = false;
            let read = read_messages(response, |message| {
                if let Some(height) = message.id.as_deref().and_then(|id| id.parse::<u64>().ok()) {
                    from = Some(from.unwrap_or(0).max(height + 1));
                }
                if message.event == StreamKind::Closed.name() {
                    if let Ok(closed) = serde_json::from_str::<ClosedMessage>(&message.data) {
                        eprintln!(
                            "the node ended the stream ({}); resuming from height {}",
                            closed.reason, closed.resume_from
                        );
                        from = Some(closed.resume_from);
                    }
                    return true;
                }
                println!("{}", self.line(&message));
                printed += 1;
                done = self.count.is_some_and(|count| printed >= count);
                !done
            });
            if done {
                return Ok(());
            }
            if let Err(error) = read {
                eprintln!("the stream broke ({error}); reconnecting");
            }
            // Resume after the last height seen (a `closed` message set it exactly).
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn line(&self, message: &SseMessage) -> String {
        if self.json {
            return format!(
                "{{\"event\":{},\"id\":{},\"data\":{}}}",
                serde_json::Value::from(message.event.clone()),
                message
                    .id
                    .as_ref()
                    .map_or(serde_json::Value::Null, |id| id.clone().into()),
                message.data
            );
        }
        describe(message)
    }
}

/// A line of text for a message.
pub fn describe(message: &SseMessage) -> String {
    let unreadable = || format!("{}: {}", message.event, message.data);
    match StreamKind::parse(&message.event) {
        Some(StreamKind::Commit) => serde_json::from_str::<CommitMessage>(&message.data)
            .map(|c| {
                let failed = c
                    .receipts
                    .iter()
                    .filter(|r| r.status != agora_core::TxStatus::Applied)
                    .count();
                format!(
                    "commit     height {:>6}  root {}  {} txs ({failed} failed)  {} events",
                    c.height,
                    &c.state_root.to_string()[..16],
                    c.receipts.len(),
                    c.events.len()
                )
            })
            .unwrap_or_else(|_| unreadable()),
        Some(StreamKind::Leader) => serde_json::from_str::<LeaderMessage>(&message.data)
            .map(|l| {
                let leader = l
                    .leader
                    .map_or_else(|| "none".to_string(), |id| id.to_string()[..16].to_string());
                format!(
                    "leader     term {}: this node is {:?}, leader {leader}",
                    l.term, l.role
                )
            })
            .unwrap_or_else(|_| unreadable()),
        Some(kind @ (StreamKind::Proposal | StreamKind::Validators)) => {
            serde_json::from_str::<ChangeMessage>(&message.data)
                .map(|c| {
                    format!(
                        "{:<10} height {:>6}  {}",
                        kind.name(),
                        c.height,
                        serde_json::to_string(&c.event).expect("serializes")
                    )
                })
                .unwrap_or_else(|_| unreadable())
        }
        _ => unreadable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_split_on_blank_lines_and_comments_are_skipped() {
        let wire = ": keep-alive\n\nevent: commit\nid: 4\ndata: {\"a\":1}\n\nevent: leader\ndata: x\ndata: y\n\n";
        let mut got = Vec::new();
        read_messages(wire.as_bytes(), |m| {
            got.push(m);
            true
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                SseMessage {
                    event: "commit".into(),
                    id: Some("4".into()),
                    data: "{\"a\":1}".into()
                },
                SseMessage {
                    event: "leader".into(),
                    id: None,
                    data: "x\ny".into()
                }
            ]
        );
        let mut first = Vec::new();
        read_messages(wire.as_bytes(), |m| {
            first.push(m);
            false
        })
        .unwrap();
        assert_eq!(first.len(), 1, "stops when asked");
    }
}
