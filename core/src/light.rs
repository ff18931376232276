//! The light client: a value accepted without trusting the node that serves it.
//!
//! A client trusts a committee (the genesis one, or one pinned by a checkpoint hash) and
//! accepts a state root only with a commit certificate whose signers hold more than half
//! of the *trusted* committee's weight, every one of their signatures checked under the
//! key it trusts. The certified root's `Committee` leaf, proved against that root, then
//! becomes the trusted committee. When too much of the trusted committee is gone for a
//! certificate to carry that majority, the client bisects: it asks for a certified height
//! between the two and tries again from there, so it follows the committee's changes
//! through as few certificates as it can (`vectors/README.md` §7, "Light clients").
//!
//! Each certificate is also checked as the ledger checks it ([`check_certificate`])
//! against the committee its own state names, so an underweight or malformed certificate
//! is refused with the ledger's reason rather than only as "not trusted".
//!
//! Nothing here does I/O: a [`Source`] answers the client's three questions (the CLI over
//! HTTP, tests and benchmarks from memory).

use crate::block::BlockHeader;
use crate::certificate::{
    check_certificate, Certificate, CertificateFault, CommitStatement, Committee,
    MAX_CERTIFICATE_SIGNATURES,
};
use crate::crypto::Purpose;
use crate::genesis::Genesis;
use crate::hash::{tagged_hash, tags, Hash32};
use crate::outcome::ConfigMember;
use crate::state::{Globals, StateKey};
use crate::state_tree::StateProof;
use crate::types::{ChainId, ValidatorId};
use std::collections::BTreeSet;

/// The most certificates one [`LightClient::sync_to`] checks before giving up: a bound on
/// what a source that keeps offering unhelpful heights can make the client do.
pub const MAX_SYNC_STEPS: u64 = 4_096;

/// A certified state root as a node serves it: the chain and height it claims, the root,
/// and the certificate a later block carried for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedRoot {
    /// The chain the node says this is from.
    pub chain_id: ChainId,
    /// The certified height.
    pub height: u64,
    /// The state root after that height.
    pub state_root: Hash32,
    /// The validators' signatures over it.
    pub certificate: Certificate,
}

/// A value and its Merkle proof as a node serves it, with the root it says it proved
/// against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvedValue {
    /// The value's canonical bytes.
    pub value: Vec<u8>,
    /// Its proof.
    pub proof: StateProof,
    /// The root the node proved against.
    pub state_root: Hash32,
}

/// What a light client asks of a node. Errors are the transport's, as text.
pub trait Source {
    /// The newest certified height the node has, if any.
    fn latest_certified(&mut self) -> Result<Option<CertifiedRoot>, String>;
    /// The first certified height at or above `from`, if any.
    fn certified_from(&mut self, from: u64) -> Result<Option<CertifiedRoot>, String>;
    /// `key`'s value at `height` with its proof.
    fn prove(&mut self, key: &StateKey, height: u64) -> Result<ProvedValue, String>;
}

/// Why the light client refused what a node served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LightError {
    /// The answer is from another chain.
    #[error(
        "the node served a certificate from chain {got}, not from the trusted chain {expected}"
    )]
    OtherChain {
        /// The trusted chain.
        expected: ChainId,
        /// The one served.
        got: ChainId,
    },
    /// The certificate names another height than the one it was served for.
    #[error("the certificate served for height {expected} is for height {got}")]
    HeightMismatch {
        /// The height asked about.
        expected: u64,
        /// The certificate's.
        got: u64,
    },
    /// A trusted validator's signature does not sign this root: the root or the
    /// signature is forged.
    #[error("certificate for height {height}: validator {validator}'s signature does not sign state root {state_root} (a forged root or a forged signature)")]
    ForgedSignature {
        /// The height.
        height: u64,
        /// The validator whose signature fails.
        validator: ValidatorId,
        /// The root it was claimed to sign.
        state_root: Hash32,
    },
    /// The certificate is not valid by the ledger's own rules.
    #[error("certificate for height {height} is not valid: {fault}")]
    Invalid {
        /// The height.
        height: u64,
        /// The ledger's reason.
        fault: CertificateFault,
    },
    /// Valid perhaps, but too little of the trusted committee signed it.
    #[error("certificate for height {height}: its signers hold {signed} of the trusted committee's weight {total}, not more than half")]
    NotTrusted {
        /// The height.
        height: u64,
        /// The trusted weight among the signers.
        signed: u128,
        /// The trusted committee's total.
        total: u128,
    },
    /// A leaf the client needs (`committee`, `globals`) does not verify against the
    /// certified root, or does not decode.
    #[error(
        "the {leaf} leaf at height {height} does not verify against the certified root: {reason}"
    )]
    LeafProof {
        /// Which leaf.
        leaf: &'static str,
        /// The height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// The value does not verify against the certified root.
    #[error("the value of {key} at height {height} does not match its proof against the certified root {state_root}: {reason}")]
    ValueProof {
        /// The key, as text.
        key: String,
        /// The height.
        height: u64,
        /// The certified root.
        state_root: Hash32,
        /// Why.
        reason: String,
    },
    /// The node proved against another root than the certified one.
    #[error("the node proved {key} against state root {claimed} at height {height}, but the root certified there is {certified}")]
    RootMismatch {
        /// The key, as text.
        key: String,
        /// The height.
        height: u64,
        /// The root the node used.
        claimed: Hash32,
        /// The certified one.
        certified: Hash32,
    },
    /// No chain of certificates links the trusted committee to the height.
    #[error("no certified height between {from} and {to} is signed by more than half of the committee trusted at {from}: the committee changed too much to follow (start from a newer checkpoint)")]
    NoPath {
        /// The trusted height.
        from: u64,
        /// The height it could not reach.
        to: u64,
    },
    /// The node has certified nothing yet.
    #[error(
        "the node has no certified height yet (certificates follow a height by a block or two)"
    )]
    NothingCertified,
    /// The checkpoint's committee is not the one pinned.
    #[error("the committee at checkpoint height {height} hashes to {got}, not to the trusted {expected}")]
    CheckpointMismatch {
        /// The height.
        height: u64,
        /// The pinned hash.
        expected: Hash32,
        /// The served committee's hash.
        got: Hash32,
    },
    /// The header is not the one the certified state names for its height.
    #[error("the header served for height {height} hashes to {got}, but the state certified at that height names block {expected}")]
    HeaderMismatch {
        /// The height.
        height: u64,
        /// The block hash the certified `Globals` leaf holds.
        expected: Hash32,
        /// The served header's hash.
        got: Hash32,
    },
    /// The node did not answer.
    #[error("asking the node: {0}")]
    Source(String),
    /// The sync checked [`MAX_SYNC_STEPS`] certificates without reaching the height.
    #[error("gave up after checking {0} certificates")]
    TooManySteps(u64),
}

/// `H(agora/committee/v1, canonical Committee)`: what a checkpoint pins.
pub fn committee_hash(committee: &Committee) -> Hash32 {
    tagged_hash(
        tags::COMMITTEE,
        &[&borsh::to_vec(committee).expect("in memory")],
    )
}

/// A value the client accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The certified height it is read at.
    pub height: u64,
    /// The certified root it is proved against.
    pub state_root: Hash32,
    /// The value's canonical bytes.
    pub value: Vec<u8>,
}

/// A light client: the chain, the committee it trusts, and what it has checked.
#[derive(Clone, Debug)]
pub struct LightClient {
    chain_id: ChainId,
    /// The height whose end the trusted committee was derived at (or later).
    trusted_height: u64,
    /// The trusted committee: members with their keys and weights, in id order.
    trusted: Vec<ConfigMember>,
    /// Certificates accepted so far.
    pub certificates_checked: u64,
    /// Of those, the ones that moved the trusted committee forward on the way to a
    /// target the trusted committee could not reach directly.
    pub bisection_steps: u64,
}

impl LightClient {
    /// Trusting the committee of `genesis` (which names the chain).
    pub fn from_genesis(genesis: &Genesis) -> LightClient {
        let ledger = crate::Ledger::from_genesis(genesis);
        LightClient::trusting(
            ledger.chain_id(),
            0,
            ledger.state().committee.members.clone(),
        )
    }

    /// Trusting `members` as the committee in force after `height` of `chain_id`.
    pub fn trusting(chain_id: ChainId, height: u64, members: Vec<ConfigMember>) -> LightClient {
        LightClient {
            chain_id,
            trusted_height: height,
            trusted: members,
            certificates_checked: 0,
            bisection_steps: 0,
        }
    }

    /// Trusting the committee a node serves at `height` if it hashes to `pinned` (from
    /// [`committee_hash`], obtained out of band).
    pub fn from_checkpoint(
        chain_id: ChainId,
        height: u64,
        pinned: Hash32,
        source: &mut dyn Source,
    ) -> Result<LightClient, LightError> {
        let served = source
            .prove(&StateKey::Committee, height)
            .map_err(LightError::Source)?;
        let committee = decode_committee(height, &served.value)?;
        let got = committee_hash(&committee);
        if got != pinned {
            return Err(LightError::CheckpointMismatch {
                height,
                expected: pinned,
                got,
            });
        }
        Ok(LightClient::trusting(chain_id, height, committee.members))
    }

    /// The chain.
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// The height the trusted committee is as of.
    pub fn trusted_height(&self) -> u64 {
        self.trusted_height
    }

    /// The trusted committee.
    pub fn trusted(&self) -> &[ConfigMember] {
        &self.trusted
    }

    /// Checks `certified` with `committee` (the `Committee` leaf's value and proof at its
    /// height); accepted, the root is trusted and, if newer, the committee its state names
    /// becomes the trusted one. In order: the chain, the trusted signers' signatures
    /// (under the keys the client trusts), the committee leaf against the root, the
    /// certificate by the ledger's rules against that committee, and the trusted weight.
    pub fn accept(
        &mut self,
        certified: &CertifiedRoot,
        committee: &ProvedValue,
    ) -> Result<(), LightError> {
        let height = certified.height;
        if certified.chain_id != self.chain_id {
            return Err(LightError::OtherChain {
                expected: self.chain_id,
                got: certified.chain_id,
            });
        }
        if certified.certificate.height != height {
            return Err(LightError::HeightMismatch {
                expected: height,
                got: certified.certificate.height,
            });
        }
        let statement = CommitStatement {
            chain_id: self.chain_id,
            height,
            state_root: certified.state_root,
        };
        // The shape first, so that a malformed certificate costs no verification.
        let signatures = &certified.certificate.signatures;
        // No committee is larger: past the bound some signer is not a member.
        if signatures.len() > MAX_CERTIFICATE_SIGNATURES {
            return Err(LightError::Invalid {
                height,
                fault: CertificateFault::UnknownSigner,
            });
        }
        for pair in signatures.windows(2) {
            let fault = match pair[0].validator.cmp(&pair[1].validator) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => CertificateFault::DuplicateSigner,
                std::cmp::Ordering::Greater => CertificateFault::UnsortedSigners,
            };
            return Err(LightError::Invalid { height, fault });
        }
        let bytes = statement.to_bytes();
        // Signatures by validators the client trusts, each under the key it trusts (a
        // validator id is the hash of its key, so the same id is the same key).
        let mut verified: BTreeSet<ValidatorId> = BTreeSet::new();
        let mut trusted_signed: u128 = 0;
        for entry in &certified.certificate.signatures {
            let Ok(at) = self
                .trusted
                .binary_search_by(|m| m.validator.cmp(&entry.validator))
            else {
                continue;
            };
            let member = &self.trusted[at];
            if member
                .public_key
                .verify(Purpose::Commit, &bytes, &entry.signature)
                .is_err()
            {
                return Err(LightError::ForgedSignature {
                    height,
                    validator: entry.validator,
                    state_root: certified.state_root,
                });
            }
            if verified.insert(entry.validator) {
                trusted_signed += u128::from(member.weight);
            }
        }
        // The committee that certifies the height, from the root's own state.
        committee
            .proof
            .verify(
                &certified.state_root,
                &StateKey::Committee.to_bytes(),
                &committee.value,
            )
            .map_err(|e| LightError::LeafProof {
                leaf: "committee",
                height,
                reason: e.to_string(),
            })?;
        let leaf = decode_committee(height, &committee.value)?;
        let in_force = leaf.in_force_for(height).ok_or(LightError::Invalid {
            height,
            fault: CertificateFault::CommitteeUnknown,
        })?;
        let already =
            |_: &Hash32, validator: &ValidatorId| verified.contains(validator).then_some(true);
        check_certificate(&statement, in_force, &certified.certificate, &already)
            .map_err(|fault| LightError::Invalid { height, fault })?;
        let total: u128 = self.trusted.iter().map(|m| u128::from(m.weight)).sum();
        if trusted_signed * 2 <= total {
            return Err(LightError::NotTrusted {
                height,
                signed: trusted_signed,
                total,
            });
        }
        self.certificates_checked += 1;
        if height > self.trusted_height {
            self.trusted_height = height;
            self.trusted = leaf.members;
        }
        Ok(())
    }

    /// Brings trust to `target`: accepts it if the trusted committee carries it, else
    /// bisects over the certified heights between, each accepted one moving trust
    /// forward, until `target` is accepted or no certified height in between helps.
    pub fn sync_to(
        &mut self,
        source: &mut dyn Source,
        target: &CertifiedRoot,
    ) -> Result<(), LightError> {
        let mut pending = vec![target.clone()];
        let mut steps = 0u64;
        while let Some(next) = pending.last() {
            steps += 1;
            if steps > MAX_SYNC_STEPS {
                return Err(LightError::TooManySteps(MAX_SYNC_STEPS));
            }
            let committee = source
                .prove(&StateKey::Committee, next.height)
                .map_err(LightError::Source)?;
            match self.accept(next, &committee) {
                Ok(()) => {
                    if pending.len() > 1 {
                        self.bisection_steps += 1;
                    }
                    pending.pop();
                }
                Err(LightError::NotTrusted { height, .. }) => {
                    let (from, to) = (self.trusted_height, height);
                    let middle = from + (to.saturating_sub(from)) / 2;
                    let pivot = source
                        .certified_from(middle.max(from + 1))
                        .map_err(LightError::Source)?;
                    match pivot {
                        Some(pivot) if pivot.height > from && pivot.height < to => {
                            pending.push(pivot)
                        }
                        _ => return Err(LightError::NoPath { from, to }),
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Checks that `header` is the block at `certified`'s height, given the `Globals` leaf
    /// there: the header's hash must be the leaf's `last_block_hash`, the leaf proved
    /// against the certified root. `certified` must have been accepted ([`Self::accept`])
    /// first: this check adds the header to what the root vouches for, no more.
    pub fn check_header(
        certified: &CertifiedRoot,
        header: &BlockHeader,
        globals: &ProvedValue,
    ) -> Result<(), LightError> {
        let height = certified.height;
        globals
            .proof
            .verify(
                &certified.state_root,
                &StateKey::Globals.to_bytes(),
                &globals.value,
            )
            .map_err(|e| LightError::LeafProof {
                leaf: "globals",
                height,
                reason: e.to_string(),
            })?;
        let leaf: Globals =
            borsh::from_slice(&globals.value).map_err(|e| LightError::LeafProof {
                leaf: "globals",
                height,
                reason: format!("it does not decode: {e}"),
            })?;
        let got = header.hash();
        if leaf.height != height || header.height != height || leaf.last_block_hash != got {
            return Err(LightError::HeaderMismatch {
                height,
                expected: leaf.last_block_hash,
                got,
            });
        }
        Ok(())
    }

    /// `key`'s value at the node's newest certified height, accepted only with a chain of
    /// certificates from the trusted committee to that height's root and a Merkle proof
    /// against it.
    pub fn verified_value(
        &mut self,
        source: &mut dyn Source,
        key: &StateKey,
    ) -> Result<Verified, LightError> {
        let target = source
            .latest_certified()
            .map_err(LightError::Source)?
            .ok_or(LightError::NothingCertified)?;
        self.sync_to(source, &target)?;
        let served = source
            .prove(key, target.height)
            .map_err(LightError::Source)?;
        let key_text = format!("{key:?}");
        if served.state_root != target.state_root {
            return Err(LightError::RootMismatch {
                key: key_text,
                height: target.height,
                claimed: served.state_root,
                certified: target.state_root,
            });
        }
        served
            .proof
            .verify(&target.state_root, &key.to_bytes(), &served.value)
            .map_err(|e| LightError::ValueProof {
                key: key_text,
                height: target.height,
                state_root: target.state_root,
                reason: e.to_string(),
            })?;
        Ok(Verified {
            height: target.height,
            state_root: target.state_root,
            value: served.value,
        })
    }
}

fn decode_committee(height: u64, bytes: &[u8]) -> Result<Committee, LightError> {
    borsh::from_slice(bytes).map_err(|e| LightError::LeafProof {
        leaf: "committee",
        height,
        reason: format!("it does not decode: {e}"),
    })
}
