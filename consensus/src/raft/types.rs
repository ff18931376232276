//! The core's vocabulary: ids, log entries, persistent and volatile state.

use crate::raft::config::{Config, Membership};
use agora_core::AccountId;
use borsh::{BorshDeserialize, BorshSerialize};
use std::sync::Arc;

/// A node in the cluster: the account id of its validator key.
pub type NodeId = AccountId;

/// A Raft term (paper §5.1).
pub type Term = u64;

/// A log index; 0 means "before the first entry".
pub type Index = u64;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize)]
pub enum EntryData {
    /// Appended by every new leader so it can commit entries of its term (§5.4.2, §8).
    Noop,
    /// An application payload (a block's canonical bytes), shared: the log, the storage
    /// write, the appends to each follower and apply hold the same bytes, not copies of
    /// them (encoded exactly as a `Vec<u8>`).
    Normal(Arc<Vec<u8>>),
    /// A configuration change: takes effect when appended (§6).
    Config(ConfigChange),
}

/// Bytes of a payload reserved before they are read: a block's limit, so that a block is
/// read into one allocation, while a length no input backs reserves address space only
/// (never written, so never resident) and fails at the end of the input.
const PAYLOAD_PREALLOC_BYTES: usize = agora_core::block::MAX_BLOCK_BYTES;

/// Accepts exactly the bytes the derived decoder would, but reads a payload with one copy,
/// straight into the buffer the `Arc` then owns, instead of borsh's doubling reads for a
/// `Vec<u8>` of unknown length followed by a copy into the `Arc`: a follower decodes
/// every block it is sent.
impl BorshDeserialize for EntryData {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        use std::io::{Error, ErrorKind, Read};
        match u8::deserialize_reader(reader)? {
            0 => Ok(EntryData::Noop),
            1 => {
                let len = u32::deserialize_reader(reader)? as usize;
                let mut bytes = Vec::with_capacity(len.min(PAYLOAD_PREALLOC_BYTES));
                reader.by_ref().take(len as u64).read_to_end(&mut bytes)?;
                if bytes.len() != len {
                    return Err(Error::new(
                        ErrorKind::UnexpectedEof,
                        "entry payload shorter than its length",
                    ));
                }
                Ok(EntryData::Normal(Arc::new(bytes)))
            }
            2 => Ok(EntryData::Config(ConfigChange::deserialize_reader(reader)?)),
            tag => Err(Error::new(
                ErrorKind::InvalidData,
                format!("unknown entry data variant {tag}"),
            )),
        }
    }
}

/// The two steps of joint consensus.
///
/// Encoded as an enum: `Joint` is 0 (old, new), `Final` is 1 (config) when no
/// configuration in it has witnesses — the bytes the vectors pin. With witnesses, `Joint`
/// is 2 (old, new, then old's and new's extension: witness set and members' peers) and
/// `Final` is 3 (config, its extension); a witness form without any witness is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigChange {
    /// C(old,new): decisions need a quorum of both.
    Joint {
        /// The configuration being left.
        old: Config,
        /// The configuration being entered.
        new: Config,
    },
    /// C(new): the change is complete.
    Final(Config),
}

use crate::raft::config::write_extension;

impl BorshSerialize for ConfigChange {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        match self {
            ConfigChange::Joint { old, new } => {
                let witnesses = !old.witnesses.is_empty() || !new.witnesses.is_empty();
                BorshSerialize::serialize(&(if witnesses { 2u8 } else { 0u8 }), writer)?;
                BorshSerialize::serialize(old, writer)?;
                BorshSerialize::serialize(new, writer)?;
                if witnesses {
                    write_extension(old, writer)?;
                    write_extension(new, writer)?;
                }
            }
            ConfigChange::Final(config) => {
                let witnesses = !config.witnesses.is_empty();
                BorshSerialize::serialize(&(if witnesses { 3u8 } else { 1u8 }), writer)?;
                BorshSerialize::serialize(config, writer)?;
                if witnesses {
                    write_extension(config, writer)?;
                }
            }
        }
        Ok(())
    }
}

impl BorshDeserialize for ConfigChange {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        use crate::raft::config::{read_extension, require_some_witness};
        match u8::deserialize_reader(reader)? {
            tag @ (0 | 2) => {
                let mut old = Config::deserialize_reader(reader)?;
                let mut new = Config::deserialize_reader(reader)?;
                if tag == 2 {
                    read_extension(reader, &mut old)?;
                    read_extension(reader, &mut new)?;
                    require_some_witness(&[&old, &new])?;
                }
                Ok(ConfigChange::Joint { old, new })
            }
            tag @ (1 | 3) => {
                let mut config = Config::deserialize_reader(reader)?;
                if tag == 3 {
                    read_extension(reader, &mut config)?;
                    require_some_witness(&[&config])?;
                }
                Ok(ConfigChange::Final(config))
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "unknown configuration change",
            )),
        }
    }
}

impl ConfigChange {
    /// The membership in force once this entry is appended.
    pub fn membership(&self) -> Membership {
        match self {
            ConfigChange::Joint { old, new } => Membership {
                incoming: new.clone(),
                outgoing: Some(old.clone()),
            },
            ConfigChange::Final(config) => Membership {
                incoming: config.clone(),
                outgoing: None,
            },
        }
    }
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LogEntry {
    /// Its position.
    pub index: Index,
    /// The term of the leader that created it.
    pub term: Term,
    /// Its contents.
    pub data: EntryData,
}

impl LogEntry {
    /// Bytes this entry occupies on the wire (canonical encoding).
    pub fn size_bytes(&self) -> u64 {
        borsh::object_length(self).expect("in memory") as u64
    }
}

/// State that must be durable before any message that depends on it leaves (Figure 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// Whom it voted for in `term`.
    pub vote: Option<NodeId>,
    /// The highest index known committed.
    pub commit: Index,
    /// The node's promises are intact: it rejoined after any loss of state (see the
    /// `rejoin` module), so `term` and `vote` cover every vote it ever cast and its log
    /// every entry it acknowledged. A store that lost its state (or a copy made elsewhere)
    /// reports `false`.
    pub proven: bool,
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes (§9.6 of Ongaro's thesis) before disturbing the cluster.
    PreCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Leads the current term.
    Leader,
}

/// Volatile state worth reporting (status pages, metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftState {
    /// The role.
    pub role: Role,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
}

/// What a snapshot covers.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SnapshotMeta {
    /// The last index it includes.
    pub index: Index,
    /// That entry's term.
    pub term: Term,
    /// The membership as of `index`.
    pub membership: Membership,
    /// The application's state root at `index`; checked by the receiver before install.
    pub state_root: [u8; 32],
}

/// A snapshot: metadata and the application's canonical state bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The application state.
    pub data: std::sync::Arc<Vec<u8>>,
}

/// A linearizable read is safe to serve once the state machine has applied `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// Apply at least this far before reading.
    pub index: Index,
    /// The caller's context, returned unchanged.
    pub context: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::block::EntryPayload;
    use agora_core::vectors::VectorFile;

    /// Shared payload bytes encode exactly as the `Vec<u8>` they were before (tag, u32
    /// length, bytes): stored logs and peers' messages read the same.
    #[test]
    fn a_shared_payload_encodes_as_a_byte_vector() {
        let data = EntryData::Normal(vec![7u8, 8, 9].into());
        let bytes = borsh::to_vec(&data).unwrap();
        assert_eq!(bytes, [1, 3, 0, 0, 0, 7, 8, 9]);
        let mut as_vec = vec![1u8];
        as_vec.extend(borsh::to_vec(&vec![7u8, 8, 9]).unwrap());
        assert_eq!(bytes, as_vec);
        assert_eq!(borsh::from_slice::<EntryData>(&bytes).unwrap(), data);
    }

    /// The hand-written decoder takes what the derived one took and refuses what it
    /// refused: every variant round-trips (a payload of a block's size among them), every
    /// strict prefix of an encoding fails, an unknown variant fails, and a length larger
    /// than the input fails without reading past it.
    #[test]
    fn entry_data_decodes_exactly_its_encodings() {
        let config = ConfigChange::Final(Config::default());
        let cases = [
            EntryData::Noop,
            EntryData::Normal(Vec::new().into()),
            EntryData::Normal((0..=255u8).collect::<Vec<_>>().into()),
            EntryData::Normal(vec![0xAB; 300_000].into()),
            EntryData::Config(config),
        ];
        for data in cases {
            let bytes = borsh::to_vec(&data).unwrap();
            assert_eq!(borsh::from_slice::<EntryData>(&bytes).unwrap(), data);
            let step = (bytes.len() / 64).max(1);
            for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
                assert!(
                    borsh::from_slice::<EntryData>(&bytes[..cut]).is_err(),
                    "a prefix of {cut} of {} bytes decoded",
                    bytes.len()
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(
                borsh::from_slice::<EntryData>(&longer).is_err(),
                "trailing byte"
            );
        }
        assert!(borsh::from_slice::<EntryData>(&[3]).is_err());
        // A length of 4 GiB - 1 behind three bytes: refused, without reserving 4 GiB.
        assert!(borsh::from_slice::<EntryData>(&[1, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]).is_err());
    }

    /// The spec (vectors/README.md §1) gives the `membership` payload's bytes as the
    /// canonical `ConfigChange`; the vector that carries one was built by hand in the test
    /// kit. The bytes must decode here, strictly, to the configuration the ledger asked for.
    #[test]
    fn the_membership_payload_in_the_vectors_is_a_canonical_config_change() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/edge_cases.json");
        let file = VectorFile::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut found = 0;
        let mut last_config = None;
        for vector in &file.entries {
            if let Some(config) = &vector.expected.config {
                last_config = Some(config.clone());
            }
            let EntryPayload::Membership(bytes) = &vector.entry.payload else {
                continue;
            };
            let change: ConfigChange = borsh::from_slice(bytes).expect("decodes");
            assert_eq!(&borsh::to_vec(&change).unwrap(), bytes, "canonical");
            let ConfigChange::Final(config) = change else {
                panic!("expected a final configuration");
            };
            let weights: Vec<(NodeId, u64)> = config
                .members
                .iter()
                .map(|(id, member)| (*id, member.weight))
                .collect();
            let expected: Vec<(NodeId, u64)> = last_config
                .as_ref()
                .expect("a configuration change precedes it")
                .iter()
                .map(|c| (c.validator, c.weight))
                .collect();
            assert_eq!(weights, expected);
            found += 1;
        }
        assert_eq!(found, 1);
    }
}
