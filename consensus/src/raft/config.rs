//! Configurations: who votes, with what weight, under which key.

use crate::raft::quorum;
use crate::raft::types::NodeId;
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet};

/// A member of a configuration.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Member {
    /// Consensus weight; 0 makes a learner (replicates, never votes or counts).
    pub weight: u64,
    /// The canonical bytes of its ML-DSA validator key; votes are verified against it.
    pub public_key: Vec<u8>,
    /// How the transport authenticates it (agora-node: its libp2p peer id). Carried only
    /// by configurations with witnesses (see [`Config`]): a witness does not execute the
    /// ledger, so it learns a new member's identity from here; full members learn it from
    /// the ledger, and leave it empty otherwise.
    #[borsh(skip)]
    pub peer: Vec<u8>,
}

/// A configuration: `NodeId -> (weight, key)`, and which members are witnesses.
///
/// Its derived encoding is the members only (weight and key): configuration entries
/// ([`ConfigChange`]) and memberships ([`Membership`]) write the rest themselves — the
/// witness set, then each member's peer in member order — after everything else and only
/// when some configuration has witnesses, so a configuration without witnesses keeps the
/// bytes it had before witnesses existed (the vectors pin them).
///
/// [`ConfigChange`]: crate::raft::ConfigChange
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Config {
    /// The members, by id.
    pub members: BTreeMap<NodeId, Member>,
    /// The members that are witnesses: they vote and keep the log, but never lead (nobody
    /// votes for one, it never campaigns) and do not execute the entries.
    #[borsh(skip)]
    pub witnesses: BTreeSet<NodeId>,
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No member has weight.
    #[error("a configuration needs at least one member with weight above 0")]
    NoVoters,
    /// The weights would overflow.
    #[error("total weight overflows u64")]
    Overflow,
    /// Only witnesses have weight: no member could lead.
    #[error("a configuration needs a member with weight that is not a witness")]
    NoFullVoters,
    /// A witness that is not a member.
    #[error("witness {0} is not a member of the configuration")]
    WitnessNotMember(NodeId),
}

impl Config {
    /// Checks that the configuration can decide anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let total = self
            .members
            .values()
            .try_fold(0u64, |sum, m| sum.checked_add(m.weight));
        match total {
            None => return Err(ConfigError::Overflow),
            Some(0) => return Err(ConfigError::NoVoters),
            Some(_) => {}
        }
        if let Some(stray) = self
            .witnesses
            .iter()
            .find(|id| !self.members.contains_key(id))
        {
            return Err(ConfigError::WitnessNotMember(*stray));
        }
        if !self.voters().any(|(id, _)| !self.witnesses.contains(id)) {
            return Err(ConfigError::NoFullVoters);
        }
        Ok(())
    }

    /// Whether `id` is a witness here.
    pub fn is_witness(&self, id: &NodeId) -> bool {
        self.witnesses.contains(id)
    }

    /// The same configuration with its witnesses' weight left out: the full members.
    pub fn full_members(&self) -> Config {
        Config {
            members: self
                .members
                .iter()
                .filter(|(id, _)| !self.witnesses.contains(id))
                .map(|(id, m)| (*id, m.clone()))
                .collect(),
            witnesses: BTreeSet::new(),
        }
    }

    /// Whether at least two of the full members (all of them, if fewer) have matched
    /// `index`, as `matched` reports them.
    pub fn full_members_hold(&self, index: u64, matched: impl Fn(&NodeId) -> u64) -> bool {
        let full: Vec<u64> = self
            .members
            .keys()
            .filter(|id| !self.witnesses.contains(id))
            .map(&matched)
            .collect();
        full.iter().filter(|m| **m >= index).count() >= full.len().min(2)
    }

    /// Sum of all weights.
    pub fn total_weight(&self) -> u64 {
        self.members.values().map(|m| m.weight).sum()
    }

    /// The weight of `id` (0 if absent).
    pub fn weight(&self, id: &NodeId) -> u64 {
        self.members.get(id).map_or(0, |m| m.weight)
    }

    /// Members with weight above zero.
    pub fn voters(&self) -> impl Iterator<Item = (&NodeId, u64)> {
        self.members
            .iter()
            .filter(|(_, m)| m.weight > 0)
            .map(|(id, m)| (id, m.weight))
    }

    /// Whether `acks` hold strictly more than half of the weight.
    pub fn is_quorum(&self, acks: &BTreeSet<NodeId>) -> bool {
        quorum::is_quorum(self, |id| acks.contains(id))
    }
}

/// The configuration in force: one, or two during joint consensus.
///
/// Encoded as `incoming`, then `outgoing` as an option whose tag is 0 (none) or 1 (some)
/// when neither configuration has witnesses, as before witnesses existed; 2 or 3 when
/// one has, and then the incoming witness set, and the outgoing one if present, follow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// The configuration being entered (or the only one).
    pub incoming: Config,
    /// During joint consensus, the configuration being left.
    pub outgoing: Option<Config>,
}

impl Membership {
    /// A membership of one configuration.
    pub fn single(config: Config) -> Membership {
        Membership {
            incoming: config,
            outgoing: None,
        }
    }

    /// Whether a joint change is under way.
    pub fn is_joint(&self) -> bool {
        self.outgoing.is_some()
    }

    /// Whether `id` belongs to either configuration.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.incoming.members.contains_key(id)
            || self
                .outgoing
                .as_ref()
                .is_some_and(|c| c.members.contains_key(id))
    }

    /// Whether either configuration has witnesses.
    pub fn has_witnesses(&self) -> bool {
        !self.incoming.witnesses.is_empty()
            || self
                .outgoing
                .as_ref()
                .is_some_and(|c| !c.witnesses.is_empty())
    }

    /// Whether `id` is a witness in either configuration: it never leads.
    pub fn is_witness(&self, id: &NodeId) -> bool {
        self.incoming.is_witness(id) || self.outgoing.as_ref().is_some_and(|c| c.is_witness(id))
    }

    /// The highest index that a quorum of the full members' weight (witnesses left out)
    /// of every configuration has matched, and that at least two full members hold (one,
    /// if there is only one): entries a witness may forget. The full members that could
    /// be elected without the witness hold them, and losing one full member's disk does
    /// not lose the last copy.
    pub fn full_members_matched(&self, matched: impl Fn(&NodeId) -> u64) -> u64 {
        let of = |config: &Config| {
            let full = config.full_members();
            let mut matches: Vec<u64> = full.voters().map(|(id, _)| matched(id)).collect();
            matches.sort_unstable_by(|a, b| b.cmp(a));
            let held_twice = matches.get(1).or(matches.first()).copied().unwrap_or(0);
            quorum::committed_index(&full, &matched).min(held_twice)
        };
        let incoming = of(&self.incoming);
        match &self.outgoing {
            Some(old) => incoming.min(of(old)),
            None => incoming,
        }
    }

    /// Whether `id` votes in either configuration.
    pub fn is_voter(&self, id: &NodeId) -> bool {
        self.incoming.weight(id) > 0 || self.outgoing.as_ref().is_some_and(|c| c.weight(id) > 0)
    }

    /// The validator key of `id`, from the incoming configuration first.
    pub fn public_key(&self, id: &NodeId) -> Option<&[u8]> {
        self.incoming
            .members
            .get(id)
            .or_else(|| self.outgoing.as_ref().and_then(|c| c.members.get(id)))
            .map(|m| m.public_key.as_slice())
    }

    /// Every member of either configuration.
    pub fn all_members(&self) -> BTreeSet<NodeId> {
        let mut ids: BTreeSet<NodeId> = self.incoming.members.keys().copied().collect();
        if let Some(old) = &self.outgoing {
            ids.extend(old.members.keys().copied());
        }
        ids
    }

    /// Whether the nodes for which `acked` is true form a quorum of every configuration
    /// in force (both, during joint consensus).
    pub fn is_quorum(&self, acked: impl Fn(&NodeId) -> bool) -> bool {
        quorum::is_quorum(&self.incoming, &acked)
            && self
                .outgoing
                .as_ref()
                .is_none_or(|old| quorum::is_quorum(old, &acked))
    }

    /// The highest index that a quorum of every configuration has matched.
    pub fn committed_index(&self, matched: impl Fn(&NodeId) -> u64) -> u64 {
        let incoming = quorum::committed_index(&self.incoming, &matched);
        match &self.outgoing {
            Some(old) => incoming.min(quorum::committed_index(old, &matched)),
            None => incoming,
        }
    }

    /// The outcome of an election given the votes so far.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> quorum::VoteResult {
        let incoming = quorum::vote_result(&self.incoming, votes);
        match &self.outgoing {
            None => incoming,
            Some(old) => quorum::combine(incoming, quorum::vote_result(old, votes)),
        }
    }
}

fn invalid(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
}

/// Writes what the derived encoding leaves out of `config`: its witness set, then each
/// member's peer, in member order.
pub(crate) fn write_extension<W: std::io::Write>(
    config: &Config,
    writer: &mut W,
) -> std::io::Result<()> {
    BorshSerialize::serialize(&config.witnesses, writer)?;
    let peers: Vec<&Vec<u8>> = config.members.values().map(|m| &m.peer).collect();
    BorshSerialize::serialize(&peers, writer)
}

/// Reads what [`write_extension`] wrote into `config`: witnesses must be members, and
/// there is one peer per member.
pub(crate) fn read_extension<R: std::io::Read>(
    reader: &mut R,
    config: &mut Config,
) -> std::io::Result<()> {
    let witnesses = BTreeSet::<NodeId>::deserialize_reader(reader)?;
    if witnesses.iter().any(|id| !config.members.contains_key(id)) {
        return Err(invalid("a witness must be a member"));
    }
    let peers = Vec::<Vec<u8>>::deserialize_reader(reader)?;
    if peers.len() != config.members.len() {
        return Err(invalid("one peer per member"));
    }
    for (member, peer) in config.members.values_mut().zip(peers) {
        member.peer = peer;
    }
    config.witnesses = witnesses;
    Ok(())
}

/// Whether a decoded witness encoding carried any witness at all (the short form must be
/// used otherwise: one byte form per value).
pub(crate) fn require_some_witness(configs: &[&Config]) -> std::io::Result<()> {
    if configs.iter().all(|c| c.witnesses.is_empty()) {
        return Err(invalid("the witness form without witnesses"));
    }
    Ok(())
}

impl BorshSerialize for Membership {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.incoming, writer)?;
        let witnesses = self.has_witnesses();
        let tag = u8::from(self.outgoing.is_some()) + if witnesses { 2 } else { 0 };
        BorshSerialize::serialize(&tag, writer)?;
        if let Some(old) = &self.outgoing {
            BorshSerialize::serialize(old, writer)?;
        }
        if witnesses {
            write_extension(&self.incoming, writer)?;
            if let Some(old) = &self.outgoing {
                write_extension(old, writer)?;
            }
        }
        Ok(())
    }
}

impl BorshDeserialize for Membership {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let mut incoming = Config::deserialize_reader(reader)?;
        let tag = u8::deserialize_reader(reader)?;
        if tag > 3 {
            return Err(invalid("unknown membership form"));
        }
        let mut outgoing = if tag & 1 == 1 {
            Some(Config::deserialize_reader(reader)?)
        } else {
            None
        };
        if tag >= 2 {
            read_extension(reader, &mut incoming)?;
            if let Some(old) = &mut outgoing {
                read_extension(reader, old)?;
            }
            let mut configs = vec![&incoming];
            configs.extend(outgoing.as_ref());
            require_some_witness(&configs)?;
        }
        Ok(Membership { incoming, outgoing })
    }
}
