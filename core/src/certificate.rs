//! Commit certificates: validators' signatures that a height's state root is the one they
//! applied, carried by later blocks and checked by every node and by light clients.
//!
//! A validator signs a [`CommitStatement`] — chain, height, state root after that height —
//! under [`Purpose::Commit`] once it has applied the height. The statement's state root
//! commits to everything else (the height, the last block's hash, the committee), so a
//! certificate for a height certifies the whole state there. A certificate is valid when
//! its signers hold more than half of the consensus weight of the committee that was in
//! force when the height applied: the configuration derived at the end of the height
//! before it ([`Committee::in_force_for`]). [`check_certificate`] is the one definition of
//! validity, used by the ledger when a block carries a certificate and by the light client.

use crate::crypto::{PublicKey, Purpose, Signature};
use crate::hash::{tagged_hash, tags, Hash32};
use crate::outcome::ConfigMember;
use crate::types::{ChainId, ValidatorId};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Most certificates one block may carry.
pub const MAX_CERTIFICATES_PER_BLOCK: usize = 64;
/// Most signatures one certificate may carry (no committee is larger).
pub const MAX_CERTIFICATE_SIGNATURES: usize = 256;
/// A validator in the committee (with weight above 0) that is missing from this many
/// certificates in a row starts losing points with each further one it misses.
pub const MISSED_RUN_BEFORE_PENALTY: u64 = 8;

/// What a validator signs for a height it applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommitStatement {
    /// The chain.
    pub chain_id: ChainId,
    /// The height.
    pub height: u64,
    /// The state root after applying that height.
    pub state_root: Hash32,
}

impl CommitStatement {
    /// The canonical bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("in memory")
    }

    /// A key for signature verdicts: `H(agora/commit/v1, canonical statement)`.
    pub fn hash(&self) -> Hash32 {
        tagged_hash(tags::COMMIT, &[&self.to_bytes()])
    }
}

/// One validator's signature over a [`CommitStatement`].
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitSignature {
    /// The signer.
    pub validator: ValidatorId,
    /// Its signature under [`Purpose::Commit`].
    pub signature: Signature,
}

/// Signatures over one height's statement, signers in increasing id order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Certificate {
    /// The certified height.
    pub height: u64,
    /// The signatures.
    pub signatures: Vec<CommitSignature>,
}

/// The hash a block header carries for its certificates:
/// `H(agora/certs/v1, canonical Vec<Certificate>)`.
pub fn certificates_hash(certificates: &[Certificate]) -> Hash32 {
    tagged_hash(
        tags::CERTS,
        &[&borsh::to_vec(certificates).expect("in memory")],
    )
}

/// The consensus configurations that certify heights: the one in force now and the one
/// before it. One state leaf ([`crate::state::StateKey::Committee`]), so a light client
/// learns a committee from a proof against a certified root.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Committee {
    /// The height at whose end `members` was derived (0: genesis).
    pub since: u64,
    /// Every validator with its consensus weight, in validator-id order.
    pub members: Vec<ConfigMember>,
    /// The height at whose end `previous` was derived.
    pub previous_since: u64,
    /// The configuration before `members` (empty until the first change).
    pub previous: Vec<ConfigMember>,
}

impl Committee {
    /// The committee that certifies `height` (≥ 1): the configuration in force at the end
    /// of `height − 1`. `None` when that is older than the two kept.
    pub fn in_force_for(&self, height: u64) -> Option<&[ConfigMember]> {
        let before = height.checked_sub(1)?;
        if before >= self.since {
            Some(&self.members)
        } else if before >= self.previous_since && !self.previous.is_empty() {
            Some(&self.previous)
        } else {
            None
        }
    }
}

/// The weight `signers` hold in `committee` (signers outside it count nothing) and the
/// committee's total: a certificate needs `2 · signed > total`.
pub fn signed_weight<'a>(
    committee: &[ConfigMember],
    signers: impl IntoIterator<Item = &'a ValidatorId>,
) -> (u128, u128) {
    let weight_of = |id: &ValidatorId| {
        committee
            .binary_search_by(|m| m.validator.cmp(id))
            .map_or(0, |at| u128::from(committee[at].weight))
    };
    let signed = signers.into_iter().map(weight_of).sum();
    let total = committee.iter().map(|m| u128::from(m.weight)).sum();
    (signed, total)
}

/// Why a certificate is not valid.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    thiserror::Error,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CertificateFault {
    /// Not above the newest certified height (or the one before it in the block), or not
    /// below the block's own height.
    #[error("height is not after the last certified height and before the block")]
    HeightOutOfOrder,
    /// The height's state root is no longer among the roots kept.
    #[error("height is older than the state roots kept")]
    HeightNotRecorded,
    /// The committee that certifies the height is older than the two kept.
    #[error("the committee that certifies this height is no longer kept")]
    CommitteeUnknown,
    /// Signers are not in strictly increasing id order.
    #[error("signers are not in increasing id order")]
    UnsortedSigners,
    /// A signer appears twice.
    #[error("a signer appears twice")]
    DuplicateSigner,
    /// A signer is not in the committee.
    #[error("a signer is not in the committee")]
    UnknownSigner,
    /// The signers hold half of the committee's weight or less.
    #[error("the signers hold half of the committee's weight or less")]
    InsufficientWeight,
    /// A signature does not verify.
    #[error("a signature does not verify")]
    BadSignature,
}

/// Signature verdicts reached earlier, keyed by statement hash and signer (see
/// [`crate::ledger::SignatureVerdicts`]); `None` verifies.
pub type Verdict<'a> = &'a dyn Fn(&Hash32, &ValidatorId) -> Option<bool>;

/// Checks `certificate` over `statement` against `committee` (the members in force for
/// its height), in the specified order: signer order, membership, weight, signatures.
/// Returns the signers' weight and the committee's total.
pub fn check_certificate(
    statement: &CommitStatement,
    committee: &[ConfigMember],
    certificate: &Certificate,
    verdict: Verdict<'_>,
) -> Result<(u128, u128), CertificateFault> {
    let mut keys: Vec<(&PublicKey, &Signature, &ValidatorId)> =
        Vec::with_capacity(certificate.signatures.len());
    let mut signed: u128 = 0;
    for (i, entry) in certificate.signatures.iter().enumerate() {
        if let Some(before) = i.checked_sub(1).map(|j| &certificate.signatures[j]) {
            if before.validator == entry.validator {
                return Err(CertificateFault::DuplicateSigner);
            }
            if before.validator > entry.validator {
                return Err(CertificateFault::UnsortedSigners);
            }
        }
        let member = committee
            .binary_search_by(|m| m.validator.cmp(&entry.validator))
            .map(|at| &committee[at])
            .map_err(|_| CertificateFault::UnknownSigner)?;
        signed += u128::from(member.weight);
        keys.push((&member.public_key, &entry.signature, &entry.validator));
    }
    let total: u128 = committee.iter().map(|m| u128::from(m.weight)).sum();
    if signed * 2 <= total {
        return Err(CertificateFault::InsufficientWeight);
    }
    let bytes = statement.to_bytes();
    let hash = statement.hash();
    for (key, signature, validator) in keys {
        let ok = verdict(&hash, validator)
            .unwrap_or_else(|| key.verify(Purpose::Commit, &bytes, signature).is_ok());
        if !ok {
            return Err(CertificateFault::BadSignature);
        }
    }
    Ok((signed, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyKind, SecretKey};

    fn member(key: &SecretKey, weight: u64) -> ConfigMember {
        ConfigMember {
            validator: ValidatorId::from_public_key(key.public_key()),
            weight,
            public_key: key.public_key().clone(),
            peer: Vec::new(),
        }
    }

    fn setup() -> (Vec<SecretKey>, Vec<ConfigMember>, CommitStatement) {
        let mut keys: Vec<SecretKey> = (0..3u8)
            .map(|i| SecretKey::from_seed(KeyKind::MlDsa44, [i; 32]))
            .collect();
        keys.sort_by_key(|k| ValidatorId::from_public_key(k.public_key()));
        let committee = vec![
            member(&keys[0], 10),
            member(&keys[1], 20),
            member(&keys[2], 30),
        ];
        let statement = CommitStatement {
            chain_id: Hash32([7; 32]),
            height: 5,
            state_root: Hash32([9; 32]),
        };
        (keys, committee, statement)
    }

    fn sign(key: &SecretKey, statement: &CommitStatement) -> CommitSignature {
        CommitSignature {
            validator: ValidatorId::from_public_key(key.public_key()),
            signature: key.sign(Purpose::Commit, &statement.to_bytes(), [0; 32]),
        }
    }

    const NONE: Verdict<'static> = &|_, _| None;

    #[test]
    fn every_fault_is_found_and_a_majority_passes() {
        let (keys, committee, statement) = setup();
        let cert = |signers: &[usize]| Certificate {
            height: 5,
            signatures: signers
                .iter()
                .map(|&i| sign(&keys[i], &statement))
                .collect(),
        };
        // 20 + 30 of 60: more than half.
        assert_eq!(
            check_certificate(&statement, &committee, &cert(&[1, 2]), NONE),
            Ok((50, 60))
        );
        // 10 + 20 = 30 of 60: exactly half is not enough.
        assert_eq!(
            check_certificate(&statement, &committee, &cert(&[0, 1]), NONE),
            Err(CertificateFault::InsufficientWeight)
        );
        assert_eq!(
            check_certificate(&statement, &committee, &cert(&[2, 1]), NONE),
            Err(CertificateFault::UnsortedSigners)
        );
        assert_eq!(
            check_certificate(&statement, &committee, &cert(&[2, 2]), NONE),
            Err(CertificateFault::DuplicateSigner)
        );
        let outsider = SecretKey::from_seed(KeyKind::MlDsa44, [99; 32]);
        let mut with_outsider = cert(&[1, 2]);
        with_outsider.signatures.push(sign(&outsider, &statement));
        with_outsider.signatures.sort_by_key(|s| s.validator);
        assert_eq!(
            check_certificate(&statement, &committee, &with_outsider, NONE),
            Err(CertificateFault::UnknownSigner)
        );
        // A signature over another root does not verify for this one.
        let other = CommitStatement {
            state_root: Hash32([1; 32]),
            ..statement
        };
        let mut forged = cert(&[1, 2]);
        forged.signatures[1] = CommitSignature {
            validator: forged.signatures[1].validator,
            signature: keys[2].sign(Purpose::Commit, &other.to_bytes(), [0; 32]),
        };
        assert_eq!(
            check_certificate(&statement, &committee, &forged, NONE),
            Err(CertificateFault::BadSignature)
        );
        // A verdict is reused; it never turns a bad signature good by itself being absent.
        let yes: Verdict<'_> = &|_, _| Some(true);
        assert!(check_certificate(&statement, &committee, &forged, yes).is_ok());
    }

    #[test]
    fn the_committee_for_a_height_is_the_one_in_force_before_it() {
        let (_, committee, _) = setup();
        let changed = Committee {
            since: 10,
            members: committee[..2].to_vec(),
            previous_since: 4,
            previous: committee.clone(),
        };
        assert_eq!(changed.in_force_for(11).unwrap().len(), 2);
        assert_eq!(changed.in_force_for(10).unwrap().len(), 3);
        assert_eq!(changed.in_force_for(5).unwrap().len(), 3);
        assert!(changed.in_force_for(4).is_none());
        assert!(changed.in_force_for(0).is_none());
        let genesis = Committee {
            members: committee,
            ..Committee::default()
        };
        assert_eq!(genesis.in_force_for(1).unwrap().len(), 3);
    }
}
