//! Outbound requests in flight, counted against their limits: per (peer, zone) for Raft
//! messages, per zone for forwarded transactions.

use super::MAX_INFLIGHT_PER_PEER;
use agora_core::ChainId;
use libp2p::PeerId;
use std::collections::BTreeMap;

/// What an outbound request carries, for the in-flight limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A Raft message: at most [`MAX_INFLIGHT_PER_PEER`] to one peer in one zone.
    Raft,
    /// A forwarded transaction: at most [`MAX_FORWARDS_IN_FLIGHT`] in one zone.
    Forward,
}

/// Forwarded transactions awaiting the leader's answer, at most, per zone.
pub const MAX_FORWARDS_IN_FLIGHT: usize = 1024;

/// Whom a request goes to: a peer, in a zone.
type Destination = (PeerId, ChainId);

/// Outbound requests awaiting an answer. Each is counted against its own limit when it
/// starts and released exactly once, when its answer or failure arrives: a forward's
/// answer never frees a Raft slot it did not take, and one zone's requests never take
/// another's slots.
pub(super) struct InFlight<Id> {
    requests: BTreeMap<Id, (Destination, Kind)>,
    raft: BTreeMap<Destination, usize>,
    forwards: BTreeMap<ChainId, usize>,
}

impl<Id: Ord> Default for InFlight<Id> {
    fn default() -> Self {
        InFlight {
            requests: BTreeMap::new(),
            raft: BTreeMap::new(),
            forwards: BTreeMap::new(),
        }
    }
}

fn release<K: Ord>(counts: &mut BTreeMap<K, usize>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

impl<Id: Ord> InFlight<Id> {
    /// Whether a request of `kind` to `to` is within its limit.
    pub(super) fn may_start(&self, to: Destination, kind: Kind) -> bool {
        match kind {
            Kind::Raft => self.raft.get(&to).copied().unwrap_or(0) < MAX_INFLIGHT_PER_PEER,
            Kind::Forward => {
                self.forwards.get(&to.1).copied().unwrap_or(0) < MAX_FORWARDS_IN_FLIGHT
            }
        }
    }

    pub(super) fn started(&mut self, id: Id, to: Destination, kind: Kind) {
        match kind {
            Kind::Raft => *self.raft.entry(to).or_default() += 1,
            Kind::Forward => *self.forwards.entry(to.1).or_default() += 1,
        }
        self.requests.insert(id, (to, kind));
    }

    /// The request `id` was answered or failed; returns its kind (none if unknown).
    pub(super) fn finished(&mut self, id: &Id) -> Option<Kind> {
        let (to, kind) = self.requests.remove(id)?;
        match kind {
            Kind::Raft => release(&mut self.raft, to),
            Kind::Forward => release(&mut self.forwards, to.1),
        }
        Some(kind)
    }

    /// Requests in flight.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.requests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::Hash32;

    /// Forwards and Raft messages are limited separately, and answers release only the
    /// slot their own request took: a stream of forwarded transactions cannot wear down
    /// (or inflate) the Raft limit.
    #[test]
    fn forward_answers_release_only_their_own_slots() {
        let peer = (PeerId::random(), Hash32([1; 32]));
        let mut in_flight = InFlight::<u64>::default();
        for id in 0..MAX_INFLIGHT_PER_PEER as u64 {
            assert!(in_flight.may_start(peer, Kind::Raft));
            in_flight.started(id, peer, Kind::Raft);
        }
        assert!(
            !in_flight.may_start(peer, Kind::Raft),
            "the Raft limit holds"
        );
        let forward_ids = 10_000..10_000 + MAX_FORWARDS_IN_FLIGHT as u64;
        for id in forward_ids.clone() {
            assert!(in_flight.may_start(peer, Kind::Forward));
            in_flight.started(id, peer, Kind::Forward);
        }
        assert!(
            !in_flight.may_start(peer, Kind::Forward),
            "the forward limit holds"
        );
        for id in forward_ids {
            assert_eq!(in_flight.finished(&id), Some(Kind::Forward));
        }
        assert!(
            !in_flight.may_start(peer, Kind::Raft),
            "answers to forwards freed no Raft slot"
        );
        assert_eq!(in_flight.finished(&0), Some(Kind::Raft));
        assert!(in_flight.may_start(peer, Kind::Raft));
        assert_eq!(in_flight.finished(&0), None, "released once");
        assert_eq!(in_flight.len(), MAX_INFLIGHT_PER_PEER - 1);
    }

    /// A zone that used up its limits to a peer leaves another zone's untouched: a flood
    /// in one zone does not stall the next.
    #[test]
    fn one_zones_requests_never_take_anothers_slots() {
        let peer = PeerId::random();
        let (busy, quiet) = ((peer, Hash32([1; 32])), (peer, Hash32([2; 32])));
        let mut in_flight = InFlight::<u64>::default();
        for id in 0..MAX_INFLIGHT_PER_PEER as u64 {
            in_flight.started(id, busy, Kind::Raft);
        }
        for id in 0..MAX_FORWARDS_IN_FLIGHT as u64 {
            in_flight.started(100_000 + id, busy, Kind::Forward);
        }
        assert!(!in_flight.may_start(busy, Kind::Raft));
        assert!(!in_flight.may_start(busy, Kind::Forward));
        assert!(in_flight.may_start(quiet, Kind::Raft));
        assert!(in_flight.may_start(quiet, Kind::Forward));
    }
}
