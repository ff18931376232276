//! Which peers the network should accept messages from: the ledger's validators, every
//! member of the Raft configuration, which lags the ledger during a change (a removed
//! validator still votes in the joint configuration) and, in replay mode, never follows it,
//! and the removed members a leader is still telling that they were removed.

use super::Replica;
use crate::raft::{NodeId, VoteCrypto};
use agora_core::outcome::TargetConfig;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct PeerBook {
    /// Every validator's peer id the ledger ever named.
    known: BTreeMap<NodeId, Vec<u8>>,
    last_target: Option<TargetConfig>,
    last_members: BTreeSet<NodeId>,
    last_vouched: Option<crate::raft::Vouched>,
}

impl PeerBook {
    /// The vouched leader the network was last told about.
    pub(super) fn last_vouched(&self) -> Option<&crate::raft::Vouched> {
        self.last_vouched.as_ref()
    }
}

impl<C: VoteCrypto> Replica<C> {
    pub(super) fn publish_peers(&mut self) {
        let target = self.app.ledger().target_config();
        // Removed members the leader still tells that they were removed count as members.
        let mut members = self.raft.membership().all_members();
        members.extend(self.raft.leaving());
        let vouched = self.raft.vouched_leader().cloned();
        let book = &mut self.peers;
        if book.last_target.as_ref() == Some(target)
            && members == book.last_members
            && vouched == book.last_vouched
        {
            return;
        }
        for member in target.members.iter().chain(&target.witnesses) {
            book.known.insert(member.validator, member.peer.clone());
        }
        // A configuration with witnesses names its members' peers: how a witness, which
        // does not execute the ledger, learns a member that governance added.
        let membership = self.raft.membership();
        for config in std::iter::once(&membership.incoming).chain(&membership.outgoing) {
            if !config.witnesses.is_empty() {
                for (id, member) in &config.members {
                    book.known.entry(*id).or_insert_with(|| member.peer.clone());
                }
            }
        }
        let mut allowed: BTreeMap<NodeId, Vec<u8>> = book
            .known
            .iter()
            .filter(|(id, _)| {
                members.contains(*id)
                    || target
                        .members
                        .iter()
                        .chain(&target.witnesses)
                        .any(|m| m.validator == **id)
            })
            .map(|(id, peer)| (*id, peer.clone()))
            .collect();
        // Raft names each member's contact to a lagging member (`LeaderIs`), and accepts
        // a leader a member vouched for: the network must then accept that peer too.
        let contacts = allowed.clone();
        if let Some(v) = &vouched {
            allowed.entry(v.leader).or_insert_with(|| v.contact.clone());
        }
        book.last_target = Some(target.clone());
        book.last_members = members;
        book.last_vouched = vouched;
        self.raft.set_contacts(contacts);
        self.pending.peers = Some(allowed);
    }
}
