//! Commit certificates in blocks: the checks that make a block invalid, the reputation a
//! landed certificate earns its signers (and costs a validator that keeps missing them),
//! and the committee that certifies each height.

use super::*;
use crate::certificate::{
    certificates_hash, check_certificate, Certificate, CommitStatement, MISSED_RUN_BEFORE_PENALTY,
};
use crate::state::Witness;

impl Ledger {
    /// The statement validators sign for `height`, if its root is still kept.
    pub fn commit_statement(&self, height: u64) -> Option<CommitStatement> {
        Some(CommitStatement {
            chain_id: self.chain_id,
            height,
            state_root: self.root_at(height)?,
        })
    }

    /// The committee whose signatures certify `height`, if still kept.
    pub fn certifying_committee(&self, height: u64) -> Option<&[ConfigMember]> {
        self.state.committee.in_force_for(height)
    }

    /// Checks a block's certificates against the state before it (prepare's half): the
    /// header binds them; heights increase, each above the newest certified height and
    /// below the block, with its root kept and its committee known; then
    /// [`check_certificate`]. Any failure makes the block invalid.
    pub(super) fn check_certificates(
        &self,
        block: &Block,
        verdicts: &dyn SignatureVerdicts,
    ) -> Result<(), Halt> {
        let index = block.header.height;
        if block.header.certificates_hash != certificates_hash(&block.certificates) {
            return Err(Halt::InvalidBlock {
                index,
                reason: "certificates hash does not match the certificates".into(),
            });
        }
        let mut last = self.state.globals.certified_height;
        let verdict = |hash: &Hash32, signer: &ValidatorId| verdicts.verdict(hash, signer);
        for certificate in &block.certificates {
            let height = certificate.height;
            let fault = |fault| Halt::InvalidCertificate {
                index,
                height,
                fault,
            };
            if height <= last || height >= index {
                return Err(fault(CertificateFault::HeightOutOfOrder));
            }
            let statement = self
                .commit_statement(height)
                .ok_or(fault(CertificateFault::HeightNotRecorded))?;
            let committee = self
                .certifying_committee(height)
                .ok_or(fault(CertificateFault::CommitteeUnknown))?;
            check_certificate(&statement, committee, certificate, &verdict).map_err(fault)?;
            last = height;
        }
        Ok(())
    }

    /// Apply's half, after the proposer's reward: every signer of a landed certificate
    /// earns `reputation_per_signature` points and its run of misses ends; a member of the
    /// certifying committee with weight that did not sign extends its run, and past
    /// [`MISSED_RUN_BEFORE_PENALTY`] loses that many points per miss. Then
    /// `certified_height` moves to the last certificate's height.
    pub(super) fn credit_certificates(
        &mut self,
        certificates: &[Certificate],
        events: &mut Vec<Event>,
    ) {
        let per_signature = U64F64::from_num(self.state.params.reputation_per_signature);
        for certificate in certificates {
            let committee = self
                .certifying_committee(certificate.height)
                .expect("checked in prepare")
                .to_vec();
            let mut signers = certificate
                .signatures
                .iter()
                .map(|s| s.validator)
                .peekable();
            for member in committee {
                let signed = signers.next_if_eq(&member.validator).is_some();
                // A member removed since still counted for the certificate; nothing to credit.
                let Some(validator) = self.state.validators.get_mut(&member.validator) else {
                    continue;
                };
                let points = U64F64::from_bits(validator.points_bits);
                if signed {
                    validator.points_bits = points
                        .checked_add(per_signature)
                        .unwrap_or(U64F64::MAX)
                        .to_bits();
                    validator.missed_certificates = 0;
                } else if member.weight > 0 {
                    validator.missed_certificates = validator.missed_certificates.saturating_add(1);
                    if validator.missed_certificates > MISSED_RUN_BEFORE_PENALTY {
                        validator.points_bits = points
                            .checked_sub(per_signature)
                            .unwrap_or(U64F64::ZERO)
                            .to_bits();
                    }
                } else {
                    continue;
                }
                self.dirty.insert(StateKey::Validator(member.validator));
            }
            events.push(Event::Certified {
                height: certificate.height,
                signers: certificate.signatures.len() as u32,
            });
        }
        if let Some(last) = certificates.last() {
            self.state.globals.certified_height = last.height;
            self.dirty.insert(StateKey::Globals);
        }
    }

    /// At the end of a height: when the derived configuration differs from the committee's
    /// current one, the current one becomes the previous and the derived one takes over
    /// from this height on.
    pub(super) fn refresh_target_config(
        &mut self,
        events: &mut Vec<Event>,
    ) -> Option<TargetConfig> {
        let (derived, witnesses) = derive_config(&self.state.validators, &self.state.witnesses);
        if derived == self.state.committee.members {
            if witnesses != self.target_config.witnesses {
                // Only a witness's capped weight moved: the committee (validators) stays.
                self.target_config.witnesses = witnesses;
                events.push(Event::ConfigChanged);
                return Some(self.target_config.clone());
            }
            return None;
        }
        let height = self.height();
        let committee = &mut self.state.committee;
        committee.previous = std::mem::replace(&mut committee.members, derived.clone());
        committee.previous_since = std::mem::replace(&mut committee.since, height);
        self.dirty.insert(StateKey::Committee);
        self.target_config = TargetConfig {
            members: derived.clone(),
            witnesses,
        };
        events.push(Event::ConfigChanged);
        Some(self.target_config.clone())
    }
}

/// The consensus configuration `validators` and `witnesses` ask for: every validator in
/// id order with its consensus weight ([`consensus_weights`]), key and peer, then every
/// witness likewise. The weight cap counts witnesses with the validators (so that two full
/// members and a witness survive the loss of any one); without witnesses this is the
/// validators' configuration alone, as the vectors pin it.
pub(crate) fn derive_config(
    validators: &BTreeMap<ValidatorId, Validator>,
    witnesses: &BTreeMap<ValidatorId, Witness>,
) -> (Vec<ConfigMember>, Vec<ConfigMember>) {
    let weights: Vec<u64> = validators
        .values()
        .map(|v| v.weight)
        .chain(witnesses.values().map(|w| w.weight))
        .collect();
    let capped = consensus_weights(&weights);
    let (validator_weights, witness_weights) = capped.split_at(validators.len());
    let member =
        |id: &ValidatorId, weight: u64, public_key: &PublicKey, peer: &[u8]| ConfigMember {
            validator: *id,
            weight,
            public_key: public_key.clone(),
            peer: peer.to_vec(),
        };
    (
        validators
            .iter()
            .zip(validator_weights)
            .map(|((id, v), w)| member(id, *w, &v.public_key, &v.peer))
            .collect(),
        witnesses
            .iter()
            .zip(witness_weights)
            .map(|((id, w), weight)| member(id, *weight, &w.public_key, &w.peer))
            .collect(),
    )
}
