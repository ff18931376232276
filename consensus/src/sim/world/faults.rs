//! The world's faults: crashes and restarts, partitions, an outsider's messages, and the
//! record of who led when (the safety phase's adversary).

use super::{fail, Input, NodeFault, World, OUTSIDER_TERM};
use crate::raft::{Message, MessageBody, NodeId, Role, StubVotes, VoteCrypto};
use crate::sim::checker::Violation;
use crate::sim::network::SimMessage;
use agora_core::AccountId;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeSet;

impl World {
    pub(in crate::sim) fn inject_faults(&mut self) {
        let count = self.nodes.len();
        for i in 0..count {
            if self.nodes[i].replica.is_none() && self.now >= self.nodes[i].restart_at {
                self.start(i);
            }
        }
        if self.shares_faults {
            // Another zone decides crashes, backups and partitions (`share`); this zone's
            // own adversary is left: the outsider.
            if self.rng.random_range(0..2_000) == 0 {
                self.outsider_attack();
            }
            return;
        }
        if self.rng.random_range(0..1_500) == 0 {
            let i = self.rng.random_range(0..count);
            if self.nodes[i].replica.is_some() {
                self.crash(i);
            }
        }
        if self.rng.random_range(0..1_000) == 0 {
            // An operator's backup: a copy of a node's disk as it stands.
            let i = self.rng.random_range(0..count);
            self.nodes[i].backup = Some(self.nodes[i].store.clone());
            if let Some(log) = &mut self.fault_log {
                log.push(NodeFault::Backup { node: i });
            }
        }
        if self.now >= self.next_partition_change {
            self.next_partition_change = self.now + self.rng.random_range(200..=1_500);
            self.change_partitions();
        }
        if self.rng.random_range(0..2_000) == 0 {
            self.outsider_attack();
        }
    }

    pub(in crate::sim) fn change_partitions(&mut self) {
        let before = self.network.blocked().clone();
        self.network.heal();
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        match self.rng.random_range(0..4) {
            0 | 1 => {} // healed
            2 => {
                let mut shuffled = ids.clone();
                shuffled.shuffle(&mut self.rng);
                let cut = self.rng.random_range(1..shuffled.len());
                self.network.partition(&shuffled[..cut], &shuffled[cut..]);
            }
            _ => {
                for _ in 0..self.rng.random_range(1..=ids.len()) {
                    let from = ids[self.rng.random_range(0..ids.len())];
                    let to = ids[self.rng.random_range(0..ids.len())];
                    self.network.block(from, to);
                }
            }
        }
        self.report_cut_links(&before);
        self.report.partitions += 1;
        if let Some(log) = &mut self.fault_log {
            log.push(NodeFault::Partition(self.network.blocked().clone()));
        }
    }

    /// Suffers a fault another zone's world decided for the same node.
    pub(in crate::sim) fn share(&mut self, fault: &NodeFault) {
        match fault {
            NodeFault::Crash {
                node,
                downtime,
                disk,
            } => {
                if self.nodes[*node].replica.is_some() {
                    self.crash_with(*node, *downtime, *disk);
                }
            }
            NodeFault::Backup { node } => {
                self.nodes[*node].backup = Some(self.nodes[*node].store.clone());
            }
            NodeFault::Partition(blocked) => {
                let before = self.network.blocked().clone();
                self.network.heal();
                for (from, to) in blocked {
                    self.network.block(*from, *to);
                }
                self.report_cut_links(&before);
                self.report.partitions += 1;
            }
        }
    }

    /// A link cut since `before` (either way) breaks the connection between its ends: each
    /// learns it from its transport, whether or not the other end still runs.
    fn report_cut_links(&mut self, before: &BTreeSet<(NodeId, NodeId)>) {
        let cut: Vec<(NodeId, NodeId)> =
            self.network.blocked().difference(before).copied().collect();
        for (from, to) in cut.into_iter().filter(|(from, to)| from != to) {
            for (at, peer) in [(to, from), (from, to)] {
                if let Some(i) = self.nodes.iter().position(|n| n.id == at) {
                    self.input(i, Input::Disconnected(peer));
                }
            }
        }
    }

    /// A peer outside the configuration, with a valid key of its own, tries to take over.
    pub(in crate::sim) fn outsider_attack(&mut self) {
        let outsider = AccountId::from_public_key(self.outsider.public_key());
        let target = self.nodes[self.rng.random_range(0..self.nodes.len())].id;
        let mut message = Message {
            from: outsider,
            to: target,
            term: OUTSIDER_TERM,
            body: MessageBody::RequestVote {
                last_index: u64::MAX / 2,
                last_term: OUTSIDER_TERM,
                transfer: true,
            },
            signature: Vec::new(),
        };
        message.signature = StubVotes::new(borsh::to_vec(self.outsider.public_key()).unwrap())
            .sign(&message.signing_bytes(), [0; 32]);
        self.network
            .send(&mut self.rng, self.now, SimMessage::Raft(message));
        let append = Message {
            from: outsider,
            to: target,
            term: OUTSIDER_TERM,
            body: MessageBody::AppendEntries {
                prev_index: 0,
                prev_term: 0,
                entries: vec![],
                commit: u64::MAX / 2,
            },
            signature: Vec::new(),
        };
        self.network
            .send(&mut self.rng, self.now, SimMessage::Raft(append));
    }

    /// The node that leads in the highest term, if any leads.
    pub(in crate::sim) fn leader_node(&self) -> Option<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                n.replica
                    .as_ref()
                    .map(|r| r.raft())
                    .filter(|r| r.role() == Role::Leader)
                    .map(|r| (r.term(), i))
            })
            .max_by_key(|(term, _)| *term)
            .map(|(_, i)| i)
    }

    /// Leader lease (thesis §6.4.1): while a leader's lease holds, no node leads a later
    /// term, else the old leader could answer a lease read that misses the new one's
    /// commits. Judged between nodes that are not waiting on their disk: one that is
    /// does not tick, so its clock falls behind (a paused process).
    pub(in crate::sim) fn check_leases(&self) -> Result<(), Violation> {
        let running: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.disk.is_none())
            .filter_map(|n| n.replica.as_ref().map(|r| r.raft()))
            .collect();
        for holder in running.iter().filter(|r| r.lease_valid()) {
            if let Some(later) = running
                .iter()
                .find(|r| r.role() == Role::Leader && r.term() > holder.term())
            {
                return Err(fail(
                    "leader lease: no node leads a later term while a lease holds",
                    format!(
                        "tick {}: {} leads term {} while {}'s lease of term {} holds",
                        self.now,
                        later.id(),
                        later.term(),
                        holder.id(),
                        holder.term()
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(in crate::sim) fn observe_leadership(&mut self) {
        let Some(node) = self.leader_node() else {
            return;
        };
        let raft = self.nodes[node].replica.as_ref().expect("it leads").raft();
        self.report.leader_ticks += 1;
        let top = raft
            .membership()
            .incoming
            .voters()
            .max_by(|a, b| a.1.cmp(&b.1))
            .map(|(id, w)| (*id, w));
        if top.is_some_and(|(_, w)| raft.membership().incoming.weight(&raft.id()) == w) {
            self.report.top_weight_leader_ticks += 1;
        }
    }
}
