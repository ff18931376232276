//! Commit certificates, the replica's part: every validator signs each height it applies
//! (when it is in the committee that certifies that height) and sends its signatures to
//! the leader; the leader verifies them off the event loop (as [`VerifyJob`]s, whose
//! verdicts its own apply then reuses), gathers them per height, and puts a certificate
//! into its next block for every height whose signers hold a majority of the weight.
//!
//! A leader must never propose a block that every node would refuse. A certificate's
//! validity depends on the state the block applies to, which can be ahead of the leader's
//! applied state by the blocks in flight; the one thing that can change in between is the
//! committee (at an epoch boundary or a governance tally), so the leader takes
//! certificates only for heights whose committee is certain to still be kept when the
//! block applies (see [`Replica::certificates_for`]).

use super::verify::{Check, Then, VerifyJob};
use super::Replica;
use crate::raft::{EntryData, MessageBody, NodeId, RaftLog, Role, VoteCrypto};
use agora_core::block::Block;
use agora_core::certificate::{
    signed_weight, Certificate, CommitSignature, MAX_CERTIFICATES_PER_BLOCK,
    MAX_CERTIFICATE_SIGNATURES,
};
use agora_core::encoding::Canonical;
use agora_core::state::ProposalStatus;
use agora_core::{Ledger, Purpose, Signature, ValidatorId};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Heights of signatures a node keeps (its own, or a leader's gathered ones) past the
/// newest certified height; older ones are dropped.
pub const MAX_PENDING_HEIGHTS: u64 = 512;
/// A height that has waited this many heights for a majority of signatures is passed
/// over, so that one height nobody can certify (its signers were given a snapshot past
/// it) does not hold back every later one.
pub const CERTIFY_PATIENCE: u64 = 16;
/// Commit signatures a leader holds for heights it has not applied yet.
const MAX_EARLY: usize = 256;

/// Signatures made and gathered.
#[derive(Default)]
pub(super) struct Certifier {
    /// This node's signatures for heights not yet certified on chain.
    own: BTreeMap<u64, Signature>,
    /// Heights of `own` not yet sent to the current leader.
    unsent: BTreeSet<u64>,
    /// Leader: verified signatures by height, then signer.
    gathered: BTreeMap<u64, BTreeMap<ValidatorId, Signature>>,
    /// Leader: signatures for heights it has not applied yet, checked once it has.
    early: BTreeMap<(u64, ValidatorId), Signature>,
}

impl Certifier {
    /// Leader: a verified signature.
    pub(super) fn collect(&mut self, height: u64, validator: ValidatorId, signature: Signature) {
        self.gathered
            .entry(height)
            .or_default()
            .insert(validator, signature);
    }

    /// Drops what is certified on chain or too old to matter.
    fn prune(&mut self, certified: u64, applied: u64) {
        let floor = certified.max(applied.saturating_sub(MAX_PENDING_HEIGHTS)) + 1;
        self.own = self.own.split_off(&floor);
        self.unsent = self.unsent.split_off(&floor);
        self.gathered = self.gathered.split_off(&floor);
        self.early = self.early.split_off(&(floor, ValidatorId::default()));
    }
}

impl<C: VoteCrypto> Replica<C> {
    /// Commit signatures in hand: (own heights not yet on chain, own not yet sent, heights
    /// gathered as leader, the newest gathered height with its signer count).
    pub fn certification(&self) -> (usize, usize, usize, Option<(u64, usize)>) {
        let c = &self.certifier;
        (
            c.own.len(),
            c.unsent.len(),
            c.gathered.len(),
            c.gathered.iter().next_back().map(|(h, s)| (*h, s.len())),
        )
    }

    fn me(&self) -> ValidatorId {
        self.me
    }

    /// After applying `height`: sign it if this node is in the committee that certifies
    /// it. A leader keeps its signature with the ones it gathers; a follower queues it
    /// for the leader.
    pub(super) fn sign_applied(&mut self, height: u64) {
        let ledger = self.app.ledger();
        let me = self.me();
        let member = ledger
            .certifying_committee(height)
            .is_some_and(|committee| committee.iter().any(|m| m.validator == me));
        let statement = ledger.commit_statement(height).expect("just applied");
        let (certified, applied) = (ledger.state().globals.certified_height, ledger.height());
        if member && !self.config.replay {
            let randomness: [u8; 32] = self.rng.random();
            let signature = self
                .key
                .sign(Purpose::Commit, &statement.to_bytes(), randomness);
            // A node does not verify its own signature when a certificate carries it.
            self.verifier.record((statement.hash(), me), true);
            if self.raft.role() == Role::Leader {
                self.certifier.collect(height, me, signature);
            } else {
                self.certifier.own.insert(height, signature);
                self.certifier.unsent.insert(height);
            }
        }
        self.certifier.prune(certified, applied);
        if self.raft.role() == Role::Leader {
            self.check_early(height);
        }
    }

    /// On a new leader: everything not yet certified goes to it again; a node that
    /// became leader keeps its own signatures with the ones it will gather.
    pub(super) fn certify_on_role_change(&mut self, role: Role) {
        self.certifier.gathered.clear();
        self.certifier.early.clear();
        if role == Role::Leader {
            let me = self.me();
            for (height, signature) in std::mem::take(&mut self.certifier.own) {
                self.certifier.collect(height, me, signature);
            }
            self.certifier.unsent.clear();
        } else {
            self.certifier.unsent = self.certifier.own.keys().copied().collect();
        }
    }

    /// Follower: sends queued signatures to the leader, a message's worth at a time.
    pub(super) fn send_signatures(&mut self) {
        let Some(leader) = self.raft.leader() else {
            return;
        };
        if self.raft.role() == Role::Leader || leader == self.me() {
            return;
        }
        while !self.certifier.unsent.is_empty() {
            let heights: Vec<u64> = self
                .certifier
                .unsent
                .iter()
                .take(crate::raft::message::MAX_COMMIT_SIGNATURES)
                .copied()
                .collect();
            let signatures = heights
                .iter()
                .map(|h| {
                    self.certifier.unsent.remove(h);
                    (*h, self.certifier.own[h].to_canonical_bytes())
                })
                .collect();
            self.pending.messages.push(crate::raft::Message {
                from: self.me(),
                to: leader,
                term: self.raft.term(),
                body: MessageBody::CommitSignatures { signatures },
                signature: Vec::new(),
            });
        }
    }

    /// Leader: a validator's signatures. Each is checked against the committee and the
    /// leader's own root for its height, off the event loop; an unapplied height waits.
    pub(super) fn receive_signatures(&mut self, from: NodeId, signatures: Vec<(u64, Vec<u8>)>) {
        if self.raft.role() != Role::Leader {
            return;
        }
        let ledger = self.app.ledger();
        let certified = ledger.state().globals.certified_height;
        let applied = ledger.height();
        for (height, bytes) in signatures {
            let Ok(signature) = Signature::from_canonical_bytes(&bytes) else {
                continue;
            };
            if height <= certified || height > applied + MAX_PENDING_HEIGHTS {
                continue;
            }
            if height > applied {
                if self.certifier.early.len() < MAX_EARLY {
                    self.certifier.early.insert((height, from), signature);
                }
                continue;
            }
            self.verify_signature(height, from, signature);
        }
    }

    fn check_early(&mut self, height: u64) {
        let ready: Vec<((u64, ValidatorId), Signature)> = self
            .certifier
            .early
            .range((height, ValidatorId::default())..)
            .take_while(|((h, _), _)| *h == height)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for ((height, from), signature) in ready {
            self.certifier.early.remove(&(height, from));
            self.verify_signature(height, from, signature);
        }
    }

    fn verify_signature(&mut self, height: u64, from: ValidatorId, signature: Signature) {
        if self
            .certifier
            .gathered
            .get(&height)
            .is_some_and(|signers| signers.contains_key(&from))
        {
            return;
        }
        let ledger = self.app.ledger();
        let Some(statement) = ledger.commit_statement(height) else {
            return;
        };
        let Some(key) = ledger
            .certifying_committee(height)
            .and_then(|committee| committee.iter().find(|m| m.validator == from))
            .map(|m| m.public_key.clone())
        else {
            return;
        };
        let job = VerifyJob {
            check: Check::Commit {
                statement,
                validator: from,
                key,
                signature: signature.clone(),
            },
        };
        let then = Then::Commit {
            height,
            validator: from,
            signature,
        };
        // A full pipeline drops it: the height waits for other signers or is passed over.
        let _ = self.verifier.start(statement.hash(), job, then);
    }

    /// Leader: the certificates for a block at `index`, on top of `log`: heights after the
    /// newest one certified in the applied state or in a block in flight, each with
    /// signers holding a majority of its committee, in order. A height without a majority
    /// stops the list unless it has waited [`CERTIFY_PATIENCE`] heights. Nothing when a
    /// committee change before the block applies could leave a certificate's committee
    /// unknown: a governance tally in between (it may change validators or the epoch
    /// length), or two epoch boundaries; with one boundary, only heights the current
    /// committee certifies.
    pub(super) fn certificates_for(&self, log: &RaftLog, index: u64) -> Vec<Certificate> {
        let ledger = self.app.ledger();
        let applied = ledger.height();
        let Some(changes) = possible_committee_changes(ledger, applied + 1, index) else {
            return Vec::new();
        };
        if changes >= 2 {
            return Vec::new();
        }
        let committee_since = ledger.state().committee.since;
        let mut floor = ledger.state().globals.certified_height;
        for i in applied + 1..index {
            if let Some(crate::raft::LogEntry {
                data: EntryData::Normal(bytes),
                ..
            }) = log.entry(i)
            {
                if let Ok(block) = Block::from_canonical_bytes(&bytes[..]) {
                    if let Some(last) = block.certificates.last() {
                        floor = floor.max(last.height);
                    }
                }
            }
        }
        let mut certificates = Vec::new();
        if floor >= applied {
            // A block in flight (perhaps an earlier leader's) certifies past what this
            // leader has applied.
            return certificates;
        }
        for (&height, signers) in self.certifier.gathered.range(floor + 1..=applied) {
            if certificates.len() >= MAX_CERTIFICATES_PER_BLOCK {
                break;
            }
            let Some(committee) = ledger.certifying_committee(height) else {
                continue;
            };
            if changes == 1 && height - 1 < committee_since {
                continue;
            }
            let (signed, total) = signed_weight(committee, signers.keys());
            if signed * 2 <= total {
                if applied - height < CERTIFY_PATIENCE {
                    break;
                }
                continue;
            }
            certificates.push(Certificate {
                height,
                signatures: signers
                    .iter()
                    .filter(|(id, _)| committee.binary_search_by(|m| m.validator.cmp(id)).is_ok())
                    .take(MAX_CERTIFICATE_SIGNATURES)
                    .map(|(validator, signature)| CommitSignature {
                        validator: *validator,
                        signature: signature.clone(),
                    })
                    .collect(),
            });
        }
        certificates
    }
}

/// How many committee changes could happen at the ends of heights `from..index` (the
/// blocks before `index` not yet applied): `None` if a governance tally falls among them.
fn possible_committee_changes(ledger: &Ledger, from: u64, index: u64) -> Option<u64> {
    let state = ledger.state();
    let tally_between = state.proposals.values().any(|p| {
        p.status == ProposalStatus::Voting
            && p.voting_end_height >= from
            && p.voting_end_height < index
    });
    if tally_between {
        return None;
    }
    let epoch = state.params.epoch_blocks;
    Some((from..index).filter(|h| h % epoch == 0).count() as u64)
}
