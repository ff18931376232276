//! Fuzz targets: every decoder that bytes from outside a node reach, driven the way the
//! node drives it, with the properties that must hold whatever the bytes.
//!
//! | target | the bytes are | what runs | what must hold |
//! | --- | --- | --- | --- |
//! | `tx` | a signed transaction (`POST /v1/tx`, a forward) | canonical decode, admission's `authorize` (signature included) on a live ledger | no panic; what decodes re-encodes to the same bytes |
//! | `block` | a block's bytes in a committed entry | `Ledger::apply` at the height the block names, twice | no panic; both runs agree; one receipt per transaction |
//! | `peer` | a libp2p frame from a peer (length prefix included) | the link's frame reader; a Raft message is stepped into a live 3-node cluster of real cores; forwarded transactions go through `tx` | no panic, bounded memory |
//! | `snapshot` | an assembled state snapshot | `Ledger::restore` | no panic; a restored ledger's snapshot re-encodes to the same bytes |
//! | `stored` | a row's column (selector byte + bytes) | the store's decoders: log entry, hard state, snapshot meta, node id, archived receipts and events JSON | no panic |
//! | `genesis` | a genesis JSON file | `Genesis::from_json`, then the genesis ledger | no panic; a valid genesis builds a ledger whose snapshot restores to its root |
//! | `api` | an HTTP body or parameter (selector byte + bytes) | the batch body (then `tx` per item), the replay entry (then `prepare`), state keys, hashes, stream filters | no panic |
//!
//! `run` panics only when a property fails: that panic is the finding. Seeds come from
//! the committed test vectors ([`seeds`]); `tests/smoke.rs` mutates them under proptest
//! (the CI run) and replays every file in `regressions/`; the AFL++ entry point
//! (`src/bin/afl.rs`) runs the same targets coverage-guided (see `fuzz/README.md`).

use agora_consensus::raft::{
    EntryData, HardState, LogEntry, Message, MessageBody, NodeId, SnapshotMeta, StubVotes,
    VoteCrypto,
};
use agora_consensus::sim::cluster::{node_id, node_key, Cluster};
use agora_core::block::{Block, Entry, EntryPayload};
use agora_core::encoding::Canonical;
use agora_core::ledger::{NonceRule, RestoreError};
use agora_core::vectors::VectorFile;
use agora_core::{Genesis, Ledger, Receipt, SignedTransaction};
use agora_node::network::{self, Request, RequestBody};
use agora_node::sqlite::EventsColumn;
use std::sync::OnceLock;

/// A fuzz target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Signed transaction bytes.
    Tx,
    /// Block bytes in a committed entry.
    Block,
    /// A framed peer message.
    Peer,
    /// State snapshot bytes.
    Snapshot,
    /// A stored row's column.
    Stored,
    /// Genesis JSON.
    Genesis,
    /// HTTP bodies and parameters.
    Api,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 7] = [
        Target::Tx,
        Target::Block,
        Target::Peer,
        Target::Snapshot,
        Target::Stored,
        Target::Genesis,
        Target::Api,
    ];

    /// The target's name (its corpus and regression directory).
    pub fn name(self) -> &'static str {
        match self {
            Target::Tx => "tx",
            Target::Block => "block",
            Target::Peer => "peer",
            Target::Snapshot => "snapshot",
            Target::Stored => "stored",
            Target::Genesis => "genesis",
            Target::Api => "api",
        }
    }

    /// The target called `name`.
    pub fn parse(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// How far an input got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    /// The first decoder refused it.
    Refused,
    /// It decoded, and what follows the decoder ran on it.
    Decoded,
}

/// Runs `target` on `data`; panics only when a property fails.
pub fn run(target: Target, data: &[u8]) -> Reached {
    match target {
        Target::Tx => tx(data),
        Target::Block => block(data),
        Target::Peer => peer(data),
        Target::Snapshot => snapshot(data),
        Target::Stored => stored(data),
        Target::Genesis => genesis(data),
        Target::Api => api(data),
    }
}

/// The vector the live ledgers come from: transfers, fees, new accounts.
const REFERENCE: &str = include_str!("../../vectors/transfers_and_fees.json");

/// Every committed vector, for seeds.
const VECTORS: [&str; 14] = [
    include_str!("../../vectors/consensus_weights.json"),
    include_str!("../../vectors/edge_cases.json"),
    include_str!("../../vectors/failures.json"),
    include_str!("../../vectors/governance_failures.json"),
    include_str!("../../vectors/governance_parameter_change.json"),
    include_str!("../../vectors/governance_quorum_not_met.json"),
    include_str!("../../vectors/governance_rejected.json"),
    include_str!("../../vectors/governance_treasury_spend.json"),
    include_str!("../../vectors/governance_validators.json"),
    include_str!("../../vectors/governance_vetoed.json"),
    include_str!("../../vectors/governance_vote_changed.json"),
    include_str!("../../vectors/reputation_epochs.json"),
    include_str!("../../vectors/staking_and_unbonding.json"),
    REFERENCE,
];

/// The reference vector's ledger before each of its entries: `ledgers[h]` is at height `h`.
struct Reference {
    file: VectorFile,
    ledgers: Vec<Ledger>,
}

fn reference() -> &'static Reference {
    static REFERENCE_LEDGERS: OnceLock<Reference> = OnceLock::new();
    REFERENCE_LEDGERS.get_or_init(|| {
        let file = VectorFile::from_json(REFERENCE).expect("the reference vector parses");
        let mut ledger = Ledger::from_genesis(&file.genesis);
        let mut ledgers = vec![ledger.clone()];
        for vector in &file.entries {
            ledger
                .apply(&vector.entry)
                .expect("the reference vector applies");
            ledgers.push(ledger.clone());
        }
        Reference { file, ledgers }
    })
}

fn vectors() -> Vec<VectorFile> {
    VECTORS
        .iter()
        .map(|text| VectorFile::from_json(text).expect("committed vectors parse"))
        .collect()
}

fn decoded(ok: bool) -> Reached {
    if ok {
        Reached::Decoded
    } else {
        Reached::Refused
    }
}

fn tx(data: &[u8]) -> Reached {
    let Ok(signed) = SignedTransaction::from_canonical_bytes(data) else {
        return Reached::Refused;
    };
    assert!(
        signed.to_canonical_bytes() == data,
        "a decoded transaction re-encodes to other bytes: two byte forms for one transaction"
    );
    let ledger = reference().ledgers.last().expect("at least genesis");
    let _ = ledger.authorize(&signed, None, NonceRule::AtLeast);
    Reached::Decoded
}

fn block(data: &[u8]) -> Reached {
    let reference = reference();
    let parsed = Block::from_canonical_bytes(data).ok();
    let height = parsed.as_ref().map_or(1, |b| b.header.height);
    let Some(before) = height
        .checked_sub(1)
        .and_then(|h| reference.ledgers.get(h as usize))
    else {
        return Reached::Decoded;
    };
    let entry = Entry {
        index: height,
        term: 1,
        payload: EntryPayload::Block(data.to_vec()),
    };
    let (mut first, mut second) = (before.clone(), before.clone());
    let (a, b) = (first.apply(&entry), second.apply(&entry));
    assert_eq!(a, b, "two applies of the same entry disagree");
    assert_eq!(first.state_root(), second.state_root());
    if let Ok(outcome) = a {
        let block = parsed.as_ref().expect("an applied block decodes");
        assert_eq!(
            outcome.receipts.len(),
            block.txs.len(),
            "one receipt per transaction"
        );
        assert_eq!(outcome.traces.len(), outcome.receipts.len());
    }
    decoded(parsed.is_some())
}

fn peer(data: &[u8]) -> Reached {
    let request = network::read_request_bytes(data);
    let reached = decoded(request.is_ok());
    match request {
        Ok(Request {
            body: RequestBody::Raft(message),
            ..
        }) => raft(message),
        Ok(Request {
            body: RequestBody::SubmitTxs(txs),
            ..
        }) => {
            for bytes in txs.iter().take(network::MAX_FORWARD_BATCH) {
                tx(bytes);
            }
        }
        Err(_) => {}
    }
    reached
}

/// Steps `message` into a live 3-node cluster of real Raft cores that has elected a leader
/// and committed an entry: addressed to a member (its sender a member or not), then a few
/// ticks so whatever it changed is acted on.
fn raft(mut message: Message) {
    let mut cluster = Cluster::new(&[1, 1, 1]);
    let leader = cluster.elect();
    cluster
        .node(leader)
        .propose(b"committed before the message".to_vec())
        .expect("a leader takes a proposal");
    cluster.settle();
    message.to = node_id(message.to.0 .0[0] as usize % 3);
    let from = message.from.0 .0[0] as usize % 4;
    if from < 3 {
        message.from = node_id(from);
    }
    cluster.inject(message);
    for _ in 0..5 {
        cluster.tick();
    }
}

fn snapshot(data: &[u8]) -> Reached {
    let reference = reference();
    let ledger = reference.ledgers.last().expect("at least genesis");
    match Ledger::restore(data, &ledger.state_root()) {
        Ok(restored) => {
            let again = restored.snapshot().to_canonical_bytes();
            assert!(
                again == data,
                "a restored snapshot re-encodes to other bytes ({} bytes in, {} out, first \
                 difference at {:?})",
                data.len(),
                again.len(),
                again.iter().zip(data).position(|(a, b)| a != b)
            );
            Reached::Decoded
        }
        Err(RestoreError::Decode(_)) => Reached::Refused,
        Err(_) => Reached::Decoded,
    }
}

/// Row kinds of the `stored` target, by selector byte.
const STORED_KINDS: u8 = 6;

fn stored(data: &[u8]) -> Reached {
    let Some((&selector, bytes)) = data.split_first() else {
        return Reached::Refused;
    };
    decoded(match selector % STORED_KINDS {
        0 => borsh::from_slice::<EntryData>(bytes).is_ok(),
        1 => borsh::from_slice::<HardState>(bytes).is_ok(),
        2 => borsh::from_slice::<SnapshotMeta>(bytes).is_ok(),
        3 => borsh::from_slice::<NodeId>(bytes).is_ok(),
        4 => serde_json::from_slice::<Vec<Receipt>>(bytes).is_ok(),
        _ => serde_json::from_slice::<EventsColumn>(bytes).is_ok(),
    })
}

fn genesis(data: &[u8]) -> Reached {
    let Ok(text) = std::str::from_utf8(data) else {
        return Reached::Refused;
    };
    let Ok(genesis) = Genesis::from_json(text) else {
        return Reached::Refused;
    };
    let ledger = Ledger::from_genesis(&genesis);
    let snapshot = ledger.snapshot().to_canonical_bytes();
    let restored = Ledger::restore(&snapshot, &ledger.state_root())
        .expect("a genesis ledger's own snapshot restores");
    assert_eq!(restored.state_root(), ledger.state_root());
    Reached::Decoded
}

/// Input kinds of the `api` target, by selector byte.
const API_KINDS: u8 = 5;

fn api(data: &[u8]) -> Reached {
    let Some((&selector, bytes)) = data.split_first() else {
        return Reached::Refused;
    };
    let text = String::from_utf8_lossy(bytes);
    decoded(match selector % API_KINDS {
        0 => match serde_json::from_slice::<agora_api::SubmitBatchRequest>(bytes) {
            Ok(batch) => {
                for item in batch.txs.iter().take(agora_api::MAX_BATCH_TXS) {
                    if let Ok(tx_bytes) = hex::decode(item) {
                        tx(&tx_bytes);
                    }
                }
                true
            }
            Err(_) => false,
        },
        1 => match serde_json::from_slice::<Entry>(bytes) {
            Ok(entry) => {
                let ledger = reference().ledgers.first().expect("genesis");
                let _ = ledger.prepare(&entry);
                true
            }
            Err(_) => false,
        },
        2 => match agora_api::parse_state_key(&text) {
            Ok(key) => {
                let ledger = reference().ledgers.last().expect("at least genesis");
                if let Some((value, proof)) = ledger.prove(&key) {
                    proof
                        .verify(&ledger.state_root(), &key.to_bytes(), &value)
                        .expect("the ledger's own proof verifies against its root");
                }
                true
            }
            Err(_) => false,
        },
        3 => agora_api::parse_tx_hash(&text).is_ok() | agora_api::parse_account(&text).is_ok(),
        _ => {
            let (kinds, account) = text.split_once('&').unwrap_or((&text, ""));
            let account = (!account.is_empty()).then_some(account);
            agora_api::stream::StreamFilter::parse(Some(kinds), account).is_ok()
        }
    })
}

/// The seed inputs of `target`, from the committed vectors and the reference ledger.
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    let files = vectors();
    let reference = reference();
    let blocks: Vec<Vec<u8>> = reference
        .file
        .entries
        .iter()
        .filter_map(|v| match &v.entry.payload {
            EntryPayload::Block(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect();
    let txs: Vec<Vec<u8>> = files
        .iter()
        .flat_map(|f| f.entries.iter())
        .filter_map(|v| match &v.entry.payload {
            EntryPayload::Block(bytes) => Block::from_canonical_bytes(bytes).ok(),
            _ => None,
        })
        .flat_map(|b| b.txs)
        // The vectors also carry garbage on purpose (the failures vector); seeds decode.
        .filter(|tx| SignedTransaction::from_canonical_bytes(tx).is_ok())
        .collect();
    let with = |selector: u8, bytes: &[u8]| [&[selector][..], bytes].concat();
    match target {
        Target::Tx => txs,
        Target::Block => blocks,
        Target::Peer => peer_seeds(&blocks, &txs),
        Target::Snapshot => vec![
            reference.ledgers[0].snapshot().to_canonical_bytes(),
            reference
                .ledgers
                .last()
                .expect("at least genesis")
                .snapshot()
                .to_canonical_bytes(),
        ],
        Target::Stored => {
            let mut seeds: Vec<Vec<u8>> = blocks
                .iter()
                .take(3)
                .map(|b| {
                    with(
                        0,
                        &borsh::to_vec(&EntryData::Normal(b.clone().into())).unwrap(),
                    )
                })
                .collect();
            let hard = HardState {
                term: 3,
                vote: Some(node_id(1)),
                commit: 12,
                proven: true,
            };
            seeds.push(with(1, &borsh::to_vec(&hard).unwrap()));
            seeds.push(with(3, &borsh::to_vec(&node_id(2)).unwrap()));
            for vector in reference.file.entries.iter().take(4) {
                let expected = &vector.expected;
                seeds.push(with(4, &serde_json::to_vec(&expected.receipts).unwrap()));
                let column = EventsColumn {
                    events: expected.events.clone(),
                    traces: Vec::new(),
                };
                seeds.push(with(5, &serde_json::to_vec(&column).unwrap()));
            }
            seeds
        }
        Target::Genesis => files
            .iter()
            .map(|f| f.genesis.to_json().into_bytes())
            .collect(),
        Target::Api => {
            let mut seeds: Vec<Vec<u8>> = txs
                .chunks(3)
                .take(4)
                .map(|chunk| {
                    let batch = agora_api::SubmitBatchRequest {
                        txs: chunk.iter().map(hex::encode).collect(),
                    };
                    with(0, &serde_json::to_vec(&batch).unwrap())
                })
                .collect();
            for vector in reference.file.entries.iter().take(3) {
                seeds.push(with(1, &serde_json::to_vec(&vector.entry).unwrap()));
            }
            for key in ["globals", "params", "proposal:1"] {
                seeds.push(with(2, key.as_bytes()));
            }
            let account = reference.file.genesis.accounts[0].account;
            seeds.push(with(2, format!("account:{account}").as_bytes()));
            seeds.push(with(3, reference.file.chain_id.to_string().as_bytes()));
            seeds.push(with(4, format!("commit,leader&{account}").as_bytes()));
            seeds
        }
    }
}

fn peer_seeds(blocks: &[Vec<u8>], txs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let reference = reference();
    let message = |from: usize, to: usize, term: u64, body: MessageBody| {
        let mut message = Message {
            from: node_id(from),
            to: node_id(to),
            term,
            body,
            signature: Vec::new(),
        };
        if message.body.is_vote() {
            message.signature =
                StubVotes::new(node_key(from)).sign(&message.signing_bytes(), [0; 32]);
        }
        network::frame_request(&Request {
            zone: agora_core::Hash32([1; 32]),
            body: RequestBody::Raft(message),
        })
    };
    let entries: Vec<LogEntry> = blocks
        .iter()
        .take(2)
        .enumerate()
        .map(|(i, block)| LogEntry {
            index: 3 + i as u64,
            term: 2,
            data: EntryData::Normal(block.clone().into()),
        })
        .collect();
    let snapshot = reference.ledgers[0].snapshot().to_canonical_bytes();
    let membership = agora_consensus::raft::Membership::single(
        agora_consensus::sim::cluster::weighted_config(&[1, 1, 1]),
    );
    vec![
        message(
            0,
            1,
            2,
            MessageBody::PreVote {
                last_index: 2,
                last_term: 2,
            },
        ),
        message(
            0,
            1,
            3,
            MessageBody::RequestVote {
                last_index: 9,
                last_term: 2,
                transfer: false,
            },
        ),
        message(
            0,
            1,
            2,
            MessageBody::AppendEntries {
                prev_index: 2,
                prev_term: 1,
                entries: entries.clone(),
                commit: 4,
            },
        ),
        message(
            1,
            0,
            2,
            MessageBody::AppendEntriesResponse {
                success: true,
                match_index: 2,
                conflict_index: 0,
                conflict_term: None,
                boot: 1,
            },
        ),
        message(
            0,
            2,
            2,
            MessageBody::Heartbeat {
                commit: 2,
                read_seq: 1,
            },
        ),
        message(
            0,
            1,
            2,
            MessageBody::InstallSnapshot {
                meta: SnapshotMeta {
                    index: 9,
                    term: 2,
                    membership,
                    state_root: reference.ledgers[0].state_root().0,
                },
                offset: 0,
                total_bytes: snapshot.len() as u64,
                chunk: snapshot[..snapshot.len().min(512)].to_vec(),
            },
        ),
        message(
            1,
            0,
            2,
            MessageBody::ReadIndex {
                context: vec![1, 2, 3],
            },
        ),
        message(
            2,
            0,
            2,
            MessageBody::RecoveryProbe {
                last_term: 1,
                last_index: 1,
            },
        ),
        message(
            2,
            0,
            2,
            MessageBody::RecoveryReport {
                last_term: 2,
                last_index: 3,
                members: vec![node_id(0), node_id(1)],
                config_index: 0,
            },
        ),
        message(0, 1, 3, MessageBody::TimeoutNow),
        message(
            2,
            0,
            2,
            MessageBody::WitnessEntries {
                prev_index: 2,
                prev_term: 1,
                entries,
                commit: 3,
            },
        ),
        message(
            0,
            2,
            2,
            MessageBody::WitnessEntriesResponse {
                success: false,
                match_index: 2,
                conflict_index: 1,
                conflict_term: Some(1),
            },
        ),
        message(0, 2, 2, MessageBody::Forgettable { index: 3 }),
        network::frame_request(&Request {
            zone: agora_core::Hash32([1; 32]),
            body: RequestBody::SubmitTxs(txs.iter().take(3).cloned().collect()),
        }),
    ]
}
