//! The committed test vectors are exactly what the generator produces, and every one of
//! them replays through the ledger to its recorded roots, receipts and events.
//!
//! To regenerate after an intended change of encoding or rules:
//! `AGORA_BLESS=1 cargo test -p agora-testkit --test vectors` (then review the diff).

use agora_core::outcome::{EventKind, ProposalError, TxErrorKind};
use agora_core::vectors::{check, VectorFile};
use agora_testkit::generate_all;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use strum::IntoEnumIterator;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

#[test]
fn committed_vectors_match_the_generator_byte_for_byte() {
    let bless = std::env::var_os("AGORA_BLESS").is_some();
    let generated = generate_all();
    assert!(generated.len() >= 11, "every scenario kind is generated");
    let mut stale = Vec::new();
    for file in &generated {
        let path = vectors_dir().join(format!("{}.json", file.name));
        let text = file.to_json();
        if bless {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == text => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(e) => stale.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "vectors changed (encoding, hashing or rules); if intended, regenerate with AGORA_BLESS=1 and review:\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_committed_vector_replays() {
    let mut checked = 0;
    let mut entries = 0;
    let mut paths: Vec<_> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let file = VectorFile::from_json(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        entries += check(&file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(checked >= 11, "found only {checked} vector files");
    assert!(entries > 100, "vectors hold only {entries} entries");
}

/// The kinds the committed vectors show: receipt errors, event tags, and proposal error
/// codes (as `invalid_proposal` receipts or `execution_failed` statuses).
#[derive(Default)]
struct Shown {
    errors: BTreeSet<String>,
    events: BTreeSet<String>,
    proposal_errors: BTreeSet<String>,
    /// Halt codes of refused entries.
    refusals: BTreeSet<String>,
}

/// The name of a one-key JSON object's key or a bare string, and the value under the key.
fn tag_of(value: &Value) -> (String, Option<&Value>) {
    match value {
        Value::String(name) => (name.clone(), None),
        Value::Object(map) if map.len() == 1 => {
            let (name, inner) = map.iter().next().unwrap();
            (name.clone(), Some(inner))
        }
        other => panic!("not an enum in JSON: {other}"),
    }
}

fn shown_in_committed_vectors() -> Shown {
    let mut shown = Shown::default();
    for entry in std::fs::read_dir(vectors_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for entry in file["entries"].as_array().unwrap() {
            for refused in entry["refused"].as_array().into_iter().flatten() {
                shown
                    .refusals
                    .insert(refused["halt"].as_str().unwrap().to_string());
            }
            let expected = &entry["expected"];
            for receipt in expected["receipts"].as_array().unwrap() {
                let (status, error) = tag_of(&receipt["status"]);
                let Some(error) = error else { continue };
                assert_eq!(status, "failed");
                let (kind, detail) = tag_of(error);
                if kind == "invalid_proposal" {
                    let (code, _) = tag_of(detail.unwrap());
                    shown.proposal_errors.insert(code);
                }
                shown.errors.insert(kind);
            }
            for event in expected["events"].as_array().unwrap() {
                shown
                    .events
                    .insert(event["event"].as_str().unwrap().to_string());
                if event["event"] == "proposal_tallied" {
                    let (status, code) = tag_of(&event["status"]);
                    if status == "execution_failed" {
                        shown.proposal_errors.insert(tag_of(code.unwrap()).0);
                    }
                }
            }
        }
    }
    shown
}

fn missing(all: Vec<&'static str>, shown: &BTreeSet<String>) -> Vec<&'static str> {
    all.into_iter()
        .filter(|kind| !shown.contains(*kind))
        .collect()
}

#[test]
fn every_error_event_and_proposal_error_kind_appears_in_a_committed_vector() {
    let shown = shown_in_committed_vectors();
    let errors: Vec<&'static str> = TxErrorKind::iter().map(Into::into).collect();
    let events: Vec<&'static str> = EventKind::iter().map(Into::into).collect();
    let codes: Vec<&'static str> = ProposalError::iter().map(Into::into).collect();
    assert!(errors.len() >= 16 && events.len() >= 18 && codes.len() >= 8);
    assert_eq!(
        missing(errors.clone(), &shown.errors),
        Vec::<&str>::new(),
        "receipt errors no vector shows"
    );
    assert_eq!(
        missing(events.clone(), &shown.events),
        Vec::<&str>::new(),
        "events no vector shows"
    );
    assert_eq!(
        missing(codes.clone(), &shown.proposal_errors),
        Vec::<&str>::new(),
        "proposal error codes no vector shows"
    );
    let faults: Vec<String> = agora_core::CertificateFault::iter()
        .map(|fault| format!("invalid_certificate/{}", <&str>::from(fault)))
        .collect();
    let unshown: Vec<&String> = faults
        .iter()
        .filter(|code| !shown.refusals.contains(*code))
        .collect();
    assert!(
        unshown.is_empty(),
        "certificate faults no vector refuses: {unshown:?}"
    );
    // And the other way: every name the vectors use is a kind (the JSON names and the
    // enumerated names agree).
    for (name, all) in [
        (&shown.errors, &errors),
        (&shown.events, &events),
        (&shown.proposal_errors, &codes),
    ] {
        for kind in name {
            assert!(all.contains(&kind.as_str()), "{kind} is not a known kind");
        }
    }
}

/// Every transaction's traced events are its own: over every vector, each receipt has a
/// trace, an applied transaction emitted at least one event, each of its events names its
/// sender, and no transaction event is left among the height's own.
#[test]
fn each_transaction_is_traced_to_its_sender_and_its_own_events() {
    use agora_core::outcome::{Event, TxStatus};
    use agora_core::Ledger;
    let names = |event: &Event, account: &agora_core::AccountId| {
        let text = account.to_string();
        match serde_json::to_value(event).unwrap() {
            Value::Object(fields) => fields.values().any(|v| v.as_str() == Some(&text)),
            _ => false,
        }
    };
    let mut traced = 0;
    for file in generate_all() {
        let mut ledger = Ledger::from_genesis(&file.genesis.clone().normalized().unwrap());
        for vector in &file.entries {
            let outcome = ledger.apply(&vector.entry).unwrap();
            assert_eq!(outcome.traces.len(), outcome.receipts.len());
            let mut own = 0;
            for (position, receipt) in outcome.receipts.iter().enumerate() {
                let events = outcome.tx_events(position).expect("within the events");
                own += events.len();
                let where_ = format!("{} entry {} tx {position}", file.name, vector.entry.index);
                if receipt.status == TxStatus::Applied {
                    assert!(!events.is_empty(), "{where_}: applied, so it did something");
                }
                if let Some(sender) = outcome.traces[position].sender {
                    for event in events {
                        assert!(
                            names(event, &sender),
                            "{where_}: {event:?} is not its sender's"
                        );
                    }
                } else {
                    assert!(events.is_empty(), "{where_}: undecodable, yet events");
                }
                traced += 1;
            }
            for event in &outcome.events[own..] {
                assert!(
                    !matches!(
                        event,
                        Event::KeyRegistered { .. }
                            | Event::Transferred { .. }
                            | Event::Staked { .. }
                            | Event::UnstakeStarted { .. }
                            | Event::ProposalSubmitted { .. }
                            | Event::VoteCast { .. }
                    ),
                    "{} entry {}: a transaction's event among the height's own: {event:?}",
                    file.name,
                    vector.entry.index
                );
            }
        }
    }
    assert!(traced > 100, "the vectors hold {traced} transactions");
}
