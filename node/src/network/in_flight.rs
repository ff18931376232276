//! Forwarded-transaction requests in flight, counted against a limit per zone. (Raft
//! messages have no requests: they queue on their links, see [`super::links`].)

use agora_core::ChainId;
use std::collections::BTreeMap;

/// Forwarded transactions awaiting the leader's answer, at most, per zone.
pub const MAX_FORWARDS_IN_FLIGHT: usize = 1024;

/// Outbound requests awaiting an answer. Each is counted against its zone's limit when it
/// starts and released exactly once, when its answer or failure arrives: one zone's
/// requests never take another's slots.
pub(super) struct InFlight<Id> {
    requests: BTreeMap<Id, ChainId>,
    per_zone: BTreeMap<ChainId, usize>,
}

impl<Id: Ord> Default for InFlight<Id> {
    fn default() -> Self {
        InFlight {
            requests: BTreeMap::new(),
            per_zone: BTreeMap::new(),
        }
    }
}

impl<Id: Ord> InFlight<Id> {
    /// Whether another request in `zone` is within its limit.
    pub(super) fn may_start(&self, zone: ChainId) -> bool {
        self.per_zone.get(&zone).copied().unwrap_or(0) < MAX_FORWARDS_IN_FLIGHT
    }

    pub(super) fn started(&mut self, id: Id, zone: ChainId) {
        *self.per_zone.entry(zone).or_default() += 1;
        self.requests.insert(id, zone);
    }

    /// The request `id` was answered or failed; false if it was not in flight.
    pub(super) fn finished(&mut self, id: &Id) -> bool {
        let Some(zone) = self.requests.remove(id) else {
            return false;
        };
        if let Some(count) = self.per_zone.get_mut(&zone) {
            *count -= 1;
            if *count == 0 {
                self.per_zone.remove(&zone);
            }
        }
        true
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

    /// The limit holds per zone, an answer releases its slot exactly once, and a zone
    /// that used up its limit leaves another zone's untouched: a flood in one zone does
    /// not stall the next.
    #[test]
    fn answers_release_their_slot_once_and_zones_do_not_share_limits() {
        let (busy, quiet) = (Hash32([1; 32]), Hash32([2; 32]));
        let mut in_flight = InFlight::<u64>::default();
        for id in 0..MAX_FORWARDS_IN_FLIGHT as u64 {
            assert!(in_flight.may_start(busy));
            in_flight.started(id, busy);
        }
        assert!(!in_flight.may_start(busy), "the limit holds");
        assert!(
            in_flight.may_start(quiet),
            "another zone's limit is its own"
        );
        assert!(in_flight.finished(&0));
        assert!(in_flight.may_start(busy));
        assert!(!in_flight.finished(&0), "released once");
        assert_eq!(in_flight.len(), MAX_FORWARDS_IN_FLIGHT - 1);
    }
}
