//! Members a configuration change removed, told so before the leader lets them go.
//!
//! A configuration takes effect when it is appended, so a leader that appends the entry
//! removing a member would stop replicating to that member at once. The member then never
//! learns it was removed: it holds the joint configuration, in which it still votes,
//! campaigns in vain, and keeps any client that submitted through it waiting for a commit
//! it will never see (found by the simulator with governance removing a validator as a
//! partition healed). So the leader keeps a removed member's progress, marked as
//! *leaving*, and goes on replicating to it until the member holds the removing entry and
//! has acknowledged a heartbeat whose commit index covers it. From then on the member
//! knows, from its own log, that a committed configuration left it out
//! ([`Raft::voted_out`]); its replica answers its waiting clients so.
//!
//! A leaving member never counts: every quorum (commit, check-quorum, lease, read index,
//! the witnesses' forgettable index) is computed over the configuration's members, and
//! transfers only target voters. The list is bounded by the members one change removes and
//! by time: after `LEAVING_TIMEOUTS` election timeouts a member that could not be reached
//! is let go (it stays as it was before this module: it learns nothing more). The list is
//! the leader's alone and not persisted; a new leader rebuilds it from the newest
//! configuration entry in its log.

use super::core::Raft;
use super::crypto::VoteCrypto;
use super::progress::Progress;
use super::types::{Index, NodeId};
use std::collections::BTreeSet;

/// Election timeouts a leader keeps replicating to a removed member, at most.
const LEAVING_TIMEOUTS: u64 = 20;

/// A removed member the leader still replicates to.
#[derive(Clone, Debug)]
pub(crate) struct Leaving {
    /// The index of the configuration entry that removed it.
    removed_at: Index,
    /// The leader's tick after which it is let go anyway.
    until: u64,
    /// The tick of the first heartbeat sent to it whose commit index covers `removed_at`.
    informed_at: Option<u64>,
}

impl<C: VoteCrypto> Raft<C> {
    /// Members that a configuration change removed and that this leader still replicates
    /// to, until they know (the network must keep accepting them meanwhile).
    pub fn leaving(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.leaving.keys().copied()
    }

    /// The index of the committed configuration entry that removed this node, if its log
    /// holds one: the configuration in force leaves this node out, the one before it had
    /// it, and the entry is committed. A node that was never a member is not voted out.
    pub fn voted_out(&self) -> Option<Index> {
        let me = self.cfg.id;
        let (index, membership) = self.config_history.last()?;
        if membership.contains(&me) || *index > self.log.committed() {
            return None;
        }
        let before = self.membership_before_last_change();
        before.contains(&me).then_some(*index)
    }

    /// The membership the newest configuration entry in the log replaced (the snapshot's,
    /// if no earlier entry is left). Call only with a configuration entry in the log.
    fn membership_before_last_change(&self) -> &crate::raft::Membership {
        match self.config_history.len() {
            0 | 1 => &self.log.snapshot().membership,
            n => &self.config_history[n - 2].1,
        }
    }

    /// Leader: `removed` left the configuration with the entry at `removed_at`; keep
    /// replicating to those it has a progress for.
    pub(crate) fn start_leaving(&mut self, removed: BTreeSet<NodeId>, removed_at: Index) {
        let until = self.now + LEAVING_TIMEOUTS * self.cfg.election_timeout_ticks_min;
        for id in removed {
            if id == self.cfg.id {
                continue;
            }
            self.leaving.entry(id).or_insert(Leaving {
                removed_at,
                until,
                informed_at: None,
            });
        }
    }

    /// New leader: the members the newest configuration entry in its log removed may not
    /// know it yet (the leader that appended it may have died before telling them).
    pub(crate) fn leaving_from_log(&mut self) {
        let Some((index, membership)) = self.config_history.last() else {
            return;
        };
        let before = self.membership_before_last_change();
        let removed: BTreeSet<NodeId> = before
            .all_members()
            .difference(&membership.all_members())
            .copied()
            .collect();
        let index = *index;
        let next = self.log.last_index() + 1;
        for id in &removed {
            if *id != self.cfg.id {
                self.progress.insert(*id, Progress::new(next));
            }
        }
        self.start_leaving(removed, index);
    }

    /// Before a heartbeat round: lets go of the members that know they were removed (they
    /// acknowledged a heartbeat carrying the commit of the removing entry) and of those
    /// past the bound. Returns how many were let go.
    pub(crate) fn retire_leaving(&mut self) -> usize {
        let now = self.now;
        let done: Vec<NodeId> = self
            .leaving
            .iter()
            .filter(|(id, leaving)| {
                let acked = self.progress.get(id).map_or(0, |p| p.acked_heartbeat_tick);
                now >= leaving.until || leaving.informed_at.is_some_and(|tick| acked >= tick)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &done {
            self.leaving.remove(id);
            self.progress.remove(id);
        }
        done.len()
    }

    /// A heartbeat carrying commit index `commit` goes to `to` now.
    pub(crate) fn note_leaving_heartbeat(&mut self, to: NodeId, commit: Index) {
        let now = self.now;
        if let Some(leaving) = self.leaving.get_mut(&to) {
            if commit >= leaving.removed_at && leaving.informed_at.is_none() {
                leaving.informed_at = Some(now);
            }
        }
    }
}
