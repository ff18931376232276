//! One checker per safety property, each named for the section of the Raft paper
//! (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014) it
//! protects. A violation is a bug in the core, never in the seed.

use crate::raft::{EntryData, Index, LogEntry, Membership, NodeId, RaftLog, Term};
use crate::storage::memory::MemoryStore;
use agora_core::encoding::Canonical;
use agora_core::hash::tagged_hash;
use agora_core::outcome::TxStatus;
use agora_core::{Amount, Hash32, Receipt};
use std::collections::{BTreeMap, BTreeSet};

/// A broken property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property.
    pub property: &'static str,
    /// What happened.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.property, self.detail)
    }
}

/// The properties that say something did not happen in time (progress), as opposed to
/// something wrong that happened (safety).
pub const LIVENESS_PROPERTIES: [&str; 3] = [
    "liveness",
    "every waiting client is answered once the cluster heals",
    "once the cluster heals, every waiting client is answered with the commit",
];

impl Violation {
    /// Whether this is a progress property (see [`LIVENESS_PROPERTIES`]).
    pub fn is_liveness(&self) -> bool {
        LIVENESS_PROPERTIES.contains(&self.property)
    }
}

fn violation(property: &'static str, detail: String) -> Violation {
    Violation { property, detail }
}

/// The digest the checkers compare entries by.
pub fn entry_digest(entry: &LogEntry) -> Hash32 {
    tagged_hash(
        b"agora/sim-entry/v1",
        &[&borsh::to_vec(entry).expect("in memory")],
    )
}

/// Everything the checkers remember across the run.
pub struct Checker {
    /// Election safety: term -> leader.
    leaders: BTreeMap<Term, NodeId>,
    /// Log matching: (index, term) -> digest of any entry ever appended there.
    appended: BTreeMap<(Index, Term), Hash32>,
    /// Committed entries: index -> (term, digest).
    committed: BTreeMap<Index, (Term, Hash32)>,
    /// State machine safety: index -> (digest, state root after applying).
    applied: BTreeMap<Index, (Hash32, Hash32)>,
    /// The receipts applying each height produced (equal on every node, or state machine
    /// safety fails first).
    receipts: BTreeMap<Index, Vec<Receipt>>,
    /// The membership each committed configuration entry put in force, from the genesis.
    configs: BTreeMap<Index, Membership>,
    /// Configuration entries any node appended: (index, term) -> membership.
    appended_configs: BTreeMap<(Index, Term), Membership>,
    /// Transactions some client sent.
    sent: BTreeSet<Hash32>,
    /// How many committed receipts took effect (charged a fee) for each transaction.
    took_effect: BTreeMap<Hash32, u32>,
    /// Transactions acknowledged to a client as committed: hash -> height.
    acknowledged_txs: BTreeMap<Hash32, Index>,
    /// The highest height acknowledged to a client.
    highest_acknowledged: Index,
    /// Heights a committed block certified: height -> the index of that block.
    certified: BTreeMap<Index, Index>,
    /// Signatures in the certificates of committed blocks.
    certificate_signatures: u64,
    /// Every commit signature any block appended anywhere carries (committed or not):
    /// (height, signer, signature bytes), checked against the committed root at the end.
    seen_signatures: BTreeSet<(Index, agora_core::ValidatorId, Vec<u8>)>,
}

impl Checker {
    /// A checker for a cluster that starts in `genesis`.
    pub fn new(genesis: Membership) -> Checker {
        Checker {
            leaders: BTreeMap::new(),
            appended: BTreeMap::new(),
            committed: BTreeMap::new(),
            applied: BTreeMap::new(),
            receipts: BTreeMap::new(),
            configs: BTreeMap::from([(0, genesis)]),
            appended_configs: BTreeMap::new(),
            sent: BTreeSet::new(),
            took_effect: BTreeMap::new(),
            acknowledged_txs: BTreeMap::new(),
            highest_acknowledged: 0,
            certified: BTreeMap::new(),
            certificate_signatures: 0,
            seen_signatures: BTreeSet::new(),
        }
    }

    /// §5.2 Election Safety: at most one leader per term.
    pub fn on_leader(&mut self, term: Term, node: NodeId) -> Result<(), Violation> {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => Err(violation(
                "election safety (§5.2)",
                format!("{other:?} and {node:?} both led term {term}"),
            )),
            _ => Ok(()),
        }
    }

    /// §5.3 Log Matching, first half: entries with the same index and term are identical.
    pub fn on_append(&mut self, node: NodeId, entries: &[LogEntry]) -> Result<(), Violation> {
        for entry in entries {
            if let EntryData::Config(change) = &entry.data {
                self.appended_configs
                    .insert((entry.index, entry.term), change.membership());
            }
            let digest = entry_digest(entry);
            if let EntryData::Normal(bytes) = &entry.data {
                if let Ok(block) = agora_core::Block::from_canonical_bytes(&bytes[..]) {
                    for certificate in &block.certificates {
                        for signature in &certificate.signatures {
                            self.seen_signatures.insert((
                                certificate.height,
                                signature.validator,
                                borsh::to_vec(&signature.signature).expect("in memory"),
                            ));
                        }
                    }
                }
            }
            if let Some(existing) = self.appended.insert((entry.index, entry.term), digest) {
                if existing != digest {
                    return Err(violation(
                        "log matching (§5.3)",
                        format!(
                            "{node:?} appended a different entry at index {} term {}",
                            entry.index, entry.term
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// §5.3 Log Matching, second half: if two logs hold an entry with the same index and
    /// term, they are identical up to it. Because [`Checker::on_append`] already proves
    /// that equal (index, term) means an equal entry, comparing terms over the overlap of
    /// two logs below their highest agreement point is enough.
    pub fn check_log_prefixes(&self, logs: &[(NodeId, &RaftLog)]) -> Result<(), Violation> {
        for (i, (a_id, a)) in logs.iter().enumerate() {
            for (b_id, b) in &logs[i + 1..] {
                let low = a.first_index().max(b.first_index());
                let high = a.last_index().min(b.last_index());
                let Some(agree) = (low..=high)
                    .rev()
                    .find(|&k| a.term_at(k).is_some() && a.term_at(k) == b.term_at(k))
                else {
                    continue;
                };
                if let Some(k) = (low..agree).find(|&k| a.term_at(k) != b.term_at(k)) {
                    return Err(violation(
                        "log matching (§5.3)",
                        format!("{a_id:?} and {b_id:?} agree at index {agree} but differ at {k}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The newest entry known committed: (index, term).
    pub fn last_committed(&self) -> Option<(Index, Term)> {
        self.committed
            .last_key_value()
            .map(|(&index, &(term, _))| (index, term))
    }

    /// Records that `node` learned entries up to its commit index are committed.
    pub fn on_commit(
        &mut self,
        node: NodeId,
        log: &RaftLog,
        from: Index,
        to: Index,
    ) -> Result<(), Violation> {
        for index in from.max(log.first_index())..=to {
            let Some(entry) = log.entry(index) else {
                continue;
            };
            let record = (entry.term, entry_digest(entry));
            if let Some(existing) = self.committed.insert(index, record) {
                if existing != record {
                    return Err(violation(
                        "state machine safety (§5.4.3)",
                        format!(
                            "{node:?} committed a different entry at index {index} (term {} vs {})",
                            record.0, existing.0
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// §5.4 Leader Completeness: a new leader's log holds every committed entry.
    pub fn check_leader_completeness(
        &self,
        node: NodeId,
        term: Term,
        log: &RaftLog,
    ) -> Result<(), Violation> {
        for (&index, &(entry_term, digest)) in self.committed.range(log.first_index()..) {
            if entry_term >= term {
                continue;
            }
            let holds = log.entry(index).is_some_and(|e| entry_digest(e) == digest);
            if !holds {
                return Err(violation(
                    "leader completeness (§5.4)",
                    format!("{node:?} leads term {term} without committed entry {index} of term {entry_term}"),
                ));
            }
        }
        Ok(())
    }

    /// §5.4.3 State Machine Safety: every node applies the same entry at each index,
    /// reaches the same state root and produces the same receipts. The first time a height
    /// is applied anywhere, its receipts are counted: no transaction takes effect twice.
    pub fn on_apply(
        &mut self,
        node: NodeId,
        entry: &LogEntry,
        root: Hash32,
        (receipts, events): (&[Receipt], &[agora_core::Event]),
    ) -> Result<(), Violation> {
        let record = (entry_digest(entry), root);
        if let Some(existing) = self.applied.insert(entry.index, record) {
            if existing != record {
                let what = if existing.0 != record.0 {
                    "entry"
                } else {
                    "state root"
                };
                return Err(violation(
                    "state machine safety (§5.4.3)",
                    format!(
                        "{node:?} applied a different {what} at index {}",
                        entry.index
                    ),
                ));
            }
            if self.receipts.get(&entry.index).map(Vec::as_slice) != Some(receipts) {
                return Err(violation(
                    "state machine safety (§5.4.3)",
                    format!("{node:?} produced other receipts at index {}", entry.index),
                ));
            }
            return Ok(());
        }
        // Applied means committed: the replies that follow in the same batch may rely on it.
        self.committed
            .entry(entry.index)
            .or_insert((entry.term, record.0));
        if let EntryData::Config(change) = &entry.data {
            self.configs.insert(entry.index, change.membership());
        }
        for event in events {
            if let agora_core::Event::Certified { height, signers } = event {
                self.certified.insert(*height, entry.index);
                self.certificate_signatures += u64::from(*signers);
            }
        }
        for receipt in receipts {
            let charged = receipt.fee > Amount::ZERO || receipt.status == TxStatus::Applied;
            if !charged {
                continue;
            }
            let count = self.took_effect.entry(receipt.tx_hash).or_default();
            *count += 1;
            if *count > 1 {
                return Err(violation(
                    "every transaction takes effect at most once",
                    format!(
                        "transaction {} took effect again at index {}",
                        receipt.tx_hash, entry.index
                    ),
                ));
            }
        }
        self.receipts.insert(entry.index, receipts.to_vec());
        Ok(())
    }

    /// Certificates: every height in `heights` was certified by a committed block within
    /// `bound` heights of it; and no commit signature in any block, committed or not,
    /// signs a root other than the committed one at its height (so no certificate can
    /// ever form for two different states at one height). `keys` are the validators' keys.
    pub fn check_certificates(
        &self,
        heights: std::ops::RangeInclusive<Index>,
        bound: u64,
        chain_id: Hash32,
        keys: &BTreeMap<agora_core::ValidatorId, agora_core::PublicKey>,
    ) -> Result<(), Violation> {
        for height in heights {
            match self.certified.get(&height) {
                Some(by) if by - height <= bound => {}
                other => {
                    return Err(violation(
                        "every height committed after healing is certified within the bound",
                        format!(
                            "height {height}: certified by the block at {other:?}, bound {bound}"
                        ),
                    ))
                }
            }
        }
        for (height, validator, signature) in &self.seen_signatures {
            let Some((_, root)) = self.applied.get(height) else {
                continue;
            };
            let statement = agora_core::CommitStatement {
                chain_id,
                height: *height,
                state_root: *root,
            };
            let verifies = keys.get(validator).is_some_and(|key| {
                borsh::from_slice::<agora_core::Signature>(signature).is_ok_and(|signature| {
                    key.verify(
                        agora_core::Purpose::Commit,
                        &statement.to_bytes(),
                        &signature,
                    )
                    .is_ok()
                })
            });
            if !verifies {
                return Err(violation(
                    "a commit signature signs only the committed root",
                    format!("{validator:?}'s signature for height {height} does not verify against the committed root {root:?} (known key: {})", keys.contains_key(validator)),
                ));
            }
        }
        Ok(())
    }

    /// Heights certified so far, and the signatures their certificates carry.
    pub fn certified(&self) -> (u64, u64) {
        (self.certified.len() as u64, self.certificate_signatures)
    }

    /// A client sent transaction `hash`.
    pub fn on_sent(&mut self, hash: Hash32) {
        self.sent.insert(hash);
    }

    /// `node` told a client its transaction committed at `height` with `receipt`: that is
    /// the receipt the committed block produced there, and the transaction took effect
    /// exactly once (or, refused by the ledger, not at all).
    pub fn on_acknowledge_tx(
        &mut self,
        node: NodeId,
        height: Index,
        receipt: &Receipt,
    ) -> Result<(), Violation> {
        let committed = self
            .receipts
            .get(&height)
            .and_then(|receipts| receipts.iter().find(|r| r.tx_hash == receipt.tx_hash));
        if committed != Some(receipt) {
            return Err(violation(
                "receipts given to clients are the committed ones",
                format!(
                    "{node:?} acknowledged {} at height {height} with {receipt:?}; the committed block there holds {committed:?}",
                    receipt.tx_hash
                ),
            ));
        }
        if !self.sent.contains(&receipt.tx_hash) {
            return Err(violation(
                "receipts given to clients are the committed ones",
                format!(
                    "{node:?} acknowledged {} that no client sent",
                    receipt.tx_hash
                ),
            ));
        }
        let charged = receipt.fee > Amount::ZERO || receipt.status == TxStatus::Applied;
        let times = self.took_effect.get(&receipt.tx_hash).copied().unwrap_or(0);
        if charged && times != 1 {
            return Err(violation(
                "every acknowledged transaction committed exactly once",
                format!("{} took effect {times} times", receipt.tx_hash),
            ));
        }
        if let Some(earlier) = self.acknowledged_txs.insert(receipt.tx_hash, height) {
            if earlier != height {
                return Err(violation(
                    "every acknowledged transaction committed exactly once",
                    format!(
                        "{} acknowledged at height {earlier} and at {height}",
                        receipt.tx_hash
                    ),
                ));
            }
        }
        Ok(())
    }

    /// No reply before the entry is durable on a quorum: when `node` acknowledges height
    /// `height`, a weighted quorum (both halves, if joint) holds it in durable storage,
    /// counted in a configuration that may have committed it: the one in force for the
    /// entry (the newest committed configuration entry at or before it), or one appended
    /// after it (once a joint configuration commits, a leader decides with the new one
    /// alone, from the moment it appends it). A node that lost its disk since (its store
    /// has no promise record) counts with the holders: it votes for no one until its log
    /// is at least as up to date as every other member's, so it cannot help elect a
    /// leader that lacks the entry (see `raft::rejoin`).
    pub fn check_durable_on_quorum(
        &mut self,
        node: NodeId,
        height: Index,
        stores: &[(NodeId, &MemoryStore)],
    ) -> Result<(), Violation> {
        self.highest_acknowledged = self.highest_acknowledged.max(height);
        let Some(&(term, _)) = self.committed.get(&height) else {
            return Err(violation(
                "no reply before the entry is durable on a quorum",
                format!("{node:?} acknowledged height {height}, which no node has seen committed"),
            ));
        };
        let holders: BTreeSet<NodeId> = stores
            .iter()
            .filter(|(_, store)| store.holds(height, term) || !store.hard_state().proven)
            .map(|(id, _)| *id)
            .collect();
        let in_force = self
            .configs
            .range(..=height)
            .next_back()
            .map(|(_, m)| m)
            .expect("the genesis configuration is recorded");
        let later = self
            .appended_configs
            .range((height + 1, 0)..)
            .map(|(_, m)| m);
        let durable = |membership: &Membership| membership.is_quorum(|id| holders.contains(id));
        if durable(in_force) || later.clone().any(durable) {
            return Ok(());
        }
        Err(violation(
            "no reply before the entry is durable on a quorum",
            format!(
                "{node:?} acknowledged height {height} (term {term}), durable only on {holders:?}; stores {:?}",
                stores
                    .iter()
                    .map(|(id, s)| format!("{id:?}: {}", s.describe()))
                    .collect::<Vec<_>>()
            ),
        ))
    }

    /// How many times transaction `hash` took effect.
    pub fn took_effect(&self, hash: &Hash32) -> u32 {
        self.took_effect.get(hash).copied().unwrap_or(0)
    }

    /// Transactions that took effect.
    pub fn transactions_committed(&self) -> u64 {
        self.took_effect.len() as u64
    }

    /// The newest index acknowledged to a client so far.
    pub fn highest_acknowledged(&self) -> Index {
        self.highest_acknowledged
    }

    /// Linearizable ReadIndex reads (§8): a read served at `index` must reflect every write
    /// acknowledged before the read began.
    pub fn on_read_served(
        &self,
        node: NodeId,
        read_index: Index,
        acknowledged_before_start: Index,
    ) -> Result<(), Violation> {
        if read_index < acknowledged_before_start {
            return Err(violation(
                "linearizable reads (§8)",
                format!("{node:?} served a read at index {read_index}, but index {acknowledged_before_start} was acknowledged before the read began"),
            ));
        }
        Ok(())
    }

    /// Figure 2 ("currentTerm increases monotonically") and commitIndex monotonicity.
    pub fn check_monotonic(
        node: NodeId,
        what: &'static str,
        before: u64,
        after: u64,
    ) -> Result<(), Violation> {
        if after < before {
            return Err(violation(
                "monotonic term and commit (Figure 2)",
                format!("{node:?} {what} went from {before} to {after}"),
            ));
        }
        Ok(())
    }

    /// §6: one configuration change at a time. In a leader's log at most one configuration
    /// entry is uncommitted, and a joint entry only follows a final one.
    pub fn check_single_config_change(node: NodeId, log: &RaftLog) -> Result<(), Violation> {
        let mut uncommitted = 0;
        let mut previous_joint = false;
        for index in log.first_index()..=log.last_index() {
            let Some(LogEntry {
                data: EntryData::Config(change),
                ..
            }) = log.entry(index)
            else {
                continue;
            };
            let joint = matches!(change, crate::raft::ConfigChange::Joint { .. });
            if joint && previous_joint {
                return Err(violation("one configuration change at a time (§6)", format!("{node:?} appended joint entry {index} before leaving the previous joint configuration")));
            }
            previous_joint = joint;
            if index > log.committed() {
                uncommitted += 1;
            }
        }
        if uncommitted > 1 {
            return Err(violation(
                "one configuration change at a time (§6)",
                format!("{node:?} has {uncommitted} uncommitted configuration entries"),
            ));
        }
        Ok(())
    }
}
