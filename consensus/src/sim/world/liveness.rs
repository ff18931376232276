//! The liveness phase: with every fault healed, the cluster must converge within a bound,
//! and a failure says what is still outstanding.

use super::{fail, World};
use crate::raft::Role;
use crate::replica::RequestId;
use crate::sim::checker::Violation;
use crate::sim::clients::Outstanding;
use crate::sim::network::NetworkFaults;
use agora_core::encoding::Canonical;
use agora_core::Hash32;
use sha3::Digest;

/// Heights within which a height committed after healing must be certified: the
/// leader's patience with a height that lacks signatures plus the blocks in flight.
pub(in crate::sim) const CERTIFICATION_BOUND: u64 = crate::replica::CERTIFY_PATIENCE + 16;

impl World {
    pub(in crate::sim) fn leader(&self) -> Option<usize> {
        self.nodes.iter().position(|n| {
            n.replica
                .as_ref()
                .is_some_and(|r| r.raft().role() == Role::Leader)
        })
    }

    /// Heal everything; then the cluster must elect a leader, commit a new client
    /// transaction, answer every client still waiting, and bring every member to the
    /// marker's height, within the bound.
    pub(in crate::sim) fn liveness(&mut self) -> Result<(), Violation> {
        self.faults_on = false;
        self.network.heal();
        self.network.faults = NetworkFaults::HEALTHY;
        for i in 0..self.nodes.len() {
            if self.nodes[i].replica.is_none() {
                self.start(i);
            }
        }
        let start = self.now;
        self.healed_at = Some(start);
        let committed_at_heal = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .map(|r| r.raft().commit_index())
            .max()
            .unwrap_or(0);
        let mut certify_through: Option<u64> = None;
        let marker_client = 0;
        let mut marker: Option<RequestId> = None;
        while self.now < start + self.opts.liveness_bound_ticks {
            self.now += 1;
            self.step()?;
            let Some(leader) = self.leader() else {
                continue;
            };
            if marker.is_none_or(|id| !self.outstanding.contains_key(&id))
                && !self.busy_clients[marker_client]
                && self.acknowledged_since(start).is_none()
            {
                marker = Some(self.next_request);
                self.submit(marker_client, leader);
            }
            if let Some(height) = self.acknowledged_since(start) {
                // Replay clusters commit the vectors' blocks, which no leader builds:
                // nothing of theirs is certified.
                let replay = !self.opts.election_noop;
                // The first height acknowledged after healing must be certified (later
                // acknowledgements keep coming while clients run).
                let first_ack = *certify_through.get_or_insert(height);
                if self.converged(leader, height)
                    && (replay || self.certified_through(leader) >= first_ack)
                {
                    if !replay {
                        self.check_certificates(committed_at_heal, first_ack)?;
                    }
                    self.report.liveness_ticks = self.now - start;
                    self.report.committed_index = self.nodes[leader]
                        .replica
                        .as_ref()
                        .map_or(0, |r| r.raft().commit_index());
                    self.report.trace_hash = Hash32(self.trace.clone().finalize().into());
                    return Ok(());
                }
            }
        }
        let waiting: usize = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .map(|r| r.commit_waiters())
            .sum();
        let property = if waiting > 0 {
            "every waiting client is answered once the cluster heals"
        } else {
            "liveness"
        };
        Err(fail(
            property,
            format!(
                "no convergence within {} ticks of healing ({waiting} clients still waiting for commits, {} requests unanswered); cluster:\n{}",
                self.opts.liveness_bound_ticks,
                self.outstanding.len(),
                self.describe_outstanding()
            ),
        ))
    }

    /// The newest height certified in `node`'s applied state.
    fn certified_through(&self, node: usize) -> u64 {
        self.nodes[node]
            .replica
            .as_ref()
            .map_or(0, |r| r.ledger().state().globals.certified_height)
    }

    /// Every height committed after healing (past the heights the leader could still be
    /// waiting on when it healed) up to `through` was certified within the bound, and no
    /// commit signature anywhere signs another root than the committed one.
    fn check_certificates(&self, committed_at_heal: u64, through: u64) -> Result<(), Violation> {
        // Every node's validator key, removed validators' included.
        let keys = self
            .nodes
            .iter()
            .map(|n| {
                let key = n.key.public_key().clone();
                (agora_core::ValidatorId::from_public_key(&key), key)
            })
            .collect();
        let chain_id = self
            .nodes
            .iter()
            .find_map(|n| n.replica.as_ref())
            .map(|r| r.ledger().chain_id())
            .expect("a node runs");
        let first = committed_at_heal + CERTIFICATION_BOUND + 1;
        self.checker
            .check_certificates(first..=through, CERTIFICATION_BOUND, chain_id, &keys)
    }

    /// The height of the latest acknowledgement given at or after tick `start`.
    pub(in crate::sim) fn acknowledged_since(&self, start: u64) -> Option<u64> {
        self.latest_ack
            .filter(|(tick, _)| *tick >= start)
            .map(|(_, height)| height)
    }

    /// The requests still unanswered, then one line per node, for failure reports.
    pub(in crate::sim) fn describe_outstanding(&self) -> String {
        let mut out = String::new();
        for (id, (node, outstanding)) in &self.outstanding {
            let what = match outstanding {
                Outstanding::Submit {
                    client,
                    tx_hash,
                    bytes,
                    ..
                } => {
                    let verdict = self
                        .leader()
                        .and_then(|l| self.nodes[l].replica.as_ref())
                        .map(|r| {
                            let signed =
                                agora_core::SignedTransaction::from_canonical_bytes(bytes).unwrap();
                            format!(
                                "{:?} nonce {}",
                                r.ledger()
                                    .authorize(&signed, None, agora_core::NonceRule::AtLeast)
                                    .map(|_| ()),
                                signed.tx.nonce
                            )
                        });
                    format!(
                    "client {client} waits for {tx_hash} (committed: {}) leader says {verdict:?}",
                    self.checker.took_effect(tx_hash)
                )
                }
                Outstanding::Replay { client } => format!("client {client} waits for a replay"),
                Outstanding::Read { .. } => "a read".to_string(),
            };
            out.push_str(&format!(
                "  request {id} at {:?}: {what}\n",
                self.nodes[*node].id
            ));
        }
        out + &self.describe()
    }

    /// One line per node, for failure reports.
    pub(in crate::sim) fn describe(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match node.replica.as_ref() {
                None => out.push_str(&format!("  {:?}: down\n", node.id)),
                Some(replica) => {
                    let r = replica.raft();
                    out.push_str(&format!(
                        "  {:?}: {:?} term {} leader {:?} last {} commit {} applied {} snapshot {} joint {} voter {} weight {} ledger {} waiters {} certified {} (committee since {}) signatures {:?} halted {:?}\n",
                        node.id,
                        r.role(),
                        r.term(),
                        r.leader(),
                        r.last_index(),
                        r.commit_index(),
                        r.applied_index(),
                        r.log().snapshot().index,
                        r.membership().is_joint(),
                        r.membership().is_voter(&node.id),
                        r.membership().incoming.weight(&node.id),
                        replica.ledger().height(),
                        replica.commit_waiters(),
                        replica.ledger().state().globals.certified_height,
                        replica.ledger().state().committee.since,
                        replica.certification(),
                        replica.halted(),
                    ));
                    out.push_str(&format!(
                        "    ledger validator {} mempool {} config {:?} disk busy {} inbox {} {:?} {:?} transfer {:?} entry {:?}\n",
                        replica.ledger().state().validators.contains_key(&node.id),
                        replica.mempool_len(),
                        r.membership().incoming.voters().collect::<Vec<_>>(),
                        node.disk.is_some(),
                        node.inbox.len(),
                        replica.counters(),
                        r.counters(),
                        r.transfer_target(),
                        r.log().entry(r.last_index()).map(|e| (e.term, matches!(e.data, crate::raft::EntryData::Config(_)))),
                    ));
                    if r.role() == Role::Leader {
                        for (peer, p) in r.progress() {
                            out.push_str(&format!(
                                "    -> {peer:?}: {:?} match {} next {} probe_sent {} inflight {} active {}\n",
                                p.state,
                                p.match_index,
                                p.next_index,
                                p.probe_sent,
                                p.inflight.len(),
                                p.recent_active
                            ));
                        }
                    }
                }
            }
        }
        out
    }

    /// Converged: no joint configuration, every member has applied the marker's height,
    /// and no client waits anywhere.
    pub(in crate::sim) fn converged(&self, leader: usize, marker: u64) -> bool {
        let raft = self.nodes[leader].replica.as_ref().expect("alive").raft();
        if raft.membership().is_joint() || !self.outstanding.is_empty() {
            return false;
        }
        self.nodes
            .iter()
            .filter(|n| raft.membership().contains(&n.id))
            .all(|n| {
                n.replica
                    .as_ref()
                    .is_some_and(|r| r.raft().applied_index() >= marker && r.commit_waiters() == 0)
            })
    }

    pub(crate) fn finish_report(&mut self) {
        let counters = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .map(|r| r.raft().counters().clone());
        for replica in self.nodes.iter().filter_map(|n| n.replica.as_ref()) {
            let work = replica.signature_work();
            self.report.signature_checks += work.handed_out + work.inline;
            self.report.inline_checks += work.inline;
            self.report.apply_holds_expired += work.holds_expired;
        }
        for c in counters {
            self.report.dropped_bad_vote_signature += c.dropped_bad_vote_signature;
            self.report.dropped_non_member += c.dropped_non_member;
            self.report.elections += c.elections;
            self.report.leaders_vouched += c.leaders_vouched;
            self.report.rejoins += c.rejoins;
            self.report.leader_disconnects += c.leader_disconnects;
            self.report.witness_relays.0 += c.witness_relays;
            self.report.witness_relays.1 += c.witness_entries_taken;
        }
        self.report.ticks = self.now;
        self.report.messages = self.network.sent;
        self.report.transactions_committed = self.checker.transactions_committed();
        (
            self.report.heights_certified,
            self.report.certificate_signatures,
        ) = self.checker.certified();
        let furthest = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .max_by_key(|r| r.ledger().height());
        let passed: Vec<&agora_core::ProposalKind> = furthest.map_or(Vec::new(), |r| {
            r.ledger()
                .state()
                .proposals
                .values()
                .filter(|p| p.status == agora_core::state::ProposalStatus::Passed)
                .map(|p| &p.kind)
                .collect()
        });
        self.report.proposals_passed = passed.len() as u64;
        let count = |f: fn(&agora_core::ProposalKind) -> bool| {
            passed.iter().filter(|kind| f(kind)).count() as u64
        };
        self.report.witness_governance = (
            count(|k| matches!(k, agora_core::ProposalKind::AddWitness { .. })),
            count(|k| matches!(k, agora_core::ProposalKind::RemoveWitness { .. })),
        );
        self.report.former_witnesses = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .filter(|r| r.is_former_witness())
            .count() as u64;
    }

    pub(crate) fn now(&self) -> u64 {
        self.now
    }
}
