//! The light client over the `certificates` vector's chain: it follows the committee
//! change there, accepts honest values, refuses each lie a node could tell with its own
//! reason, bisects when its trusted committee lost its majority, and starts from a
//! checkpoint only when the committee hashes as pinned.

use agora_core::certificate::CertificateFault;
use agora_core::light::{committee_hash, LightClient, LightError, Source};
use agora_core::outcome::ConfigMember;
use agora_core::state::StateKey;
use agora_core::vectors::VectorFile;
use agora_core::{Hash32, KeyKind, ValidatorId};
use agora_testkit::light::{Lie, MemoryChain};
use agora_testkit::{generate_all, seeded_key};

fn certificates_vector() -> VectorFile {
    generate_all()
        .into_iter()
        .find(|f| f.name == "certificates")
        .expect("the certificates vector")
}

fn chain() -> (VectorFile, MemoryChain) {
    let file = certificates_vector();
    let chain = MemoryChain::replay(&file, |_| true);
    (file, chain)
}

#[test]
fn an_honest_node_is_followed_across_the_committee_change() {
    let (file, chain) = chain();
    let mut client = LightClient::from_genesis(&file.genesis);
    assert_eq!(client.chain_id(), file.chain_id);
    assert_eq!(client.trusted().len(), 3, "three validators at genesis");
    let account = StateKey::Account(file.genesis.accounts[0].account);
    let mut source = chain.source(None);
    let verified = client.verified_value(&mut source, &account).unwrap();
    let newest = chain.certified_heights().last().unwrap();
    assert_eq!(verified.height, newest);
    let ledger = chain.ledger(newest).unwrap();
    assert_eq!(verified.state_root, ledger.state_root());
    assert_eq!(verified.value, ledger.prove(&account).unwrap().0);
    // The committee it trusts now is the one after validator 3 joined.
    assert_eq!(client.trusted_height(), newest);
    assert_eq!(client.trusted(), &ledger.state().committee.members[..]);
    assert_eq!(client.trusted().len(), 4);
    assert_eq!(
        client.certificates_checked, 1,
        "three of four trusted signers carried it"
    );
    // The block header at that height is what the certified root names.
    let target = source.latest_certified().unwrap().unwrap();
    let globals = source.prove(&StateKey::Globals, newest).unwrap();
    let header = chain.header(newest).expect("a block at the newest height");
    LightClient::check_header(&target, header, &globals).unwrap();
    let other = chain.header(newest - 1).expect("a block before it");
    assert!(matches!(
        LightClient::check_header(&target, other, &globals),
        Err(LightError::HeaderMismatch { .. })
    ));
}

#[test]
fn every_lie_is_refused_with_its_reason() {
    let (file, chain) = chain();
    let key = StateKey::Globals;
    let refused = |lie| {
        let mut client = LightClient::from_genesis(&file.genesis);
        let mut source = chain.source(Some(lie));
        client.verified_value(&mut source, &key).unwrap_err()
    };
    assert!(matches!(refused(Lie::Value), LightError::ValueProof { .. }));
    assert!(matches!(
        refused(Lie::Root),
        LightError::ForgedSignature { .. }
    ));
    assert!(matches!(
        refused(Lie::Signature),
        LightError::ForgedSignature { .. }
    ));
    assert!(matches!(
        refused(Lie::Underweight),
        LightError::Invalid {
            fault: CertificateFault::InsufficientWeight,
            ..
        }
    ));
    assert!(matches!(
        refused(Lie::OtherChain),
        LightError::OtherChain { .. }
    ));
    // A repeated or out-of-order signer is refused by its shape, before any signature.
    let mut client = LightClient::from_genesis(&file.genesis);
    let mut source = chain.source(None);
    let honest = source.latest_certified().unwrap().unwrap();
    let committee = source.prove(&StateKey::Committee, honest.height).unwrap();
    let mut repeated = honest.clone();
    let first = repeated.certificate.signatures[0].clone();
    repeated.certificate.signatures.insert(0, first);
    assert!(matches!(
        client.accept(&repeated, &committee),
        Err(LightError::Invalid {
            fault: CertificateFault::DuplicateSigner,
            ..
        })
    ));
    let mut reversed = honest.clone();
    reversed.certificate.signatures.reverse();
    assert!(matches!(
        client.accept(&reversed, &committee),
        Err(LightError::Invalid {
            fault: CertificateFault::UnsortedSigners,
            ..
        })
    ));
    client.accept(&honest, &committee).unwrap();
    // The honest source passes the same client.
    let mut client = LightClient::from_genesis(&file.genesis);
    client
        .verified_value(&mut chain.source(None), &key)
        .unwrap();
}

/// The genesis committee with `heavy` given almost all the weight (sorted by id).
fn skewed(file: &VectorFile, heavy: ConfigMember) -> Vec<ConfigMember> {
    let mut members: Vec<ConfigMember> = LightClient::from_genesis(&file.genesis)
        .trusted()
        .iter()
        .filter(|m| m.validator != heavy.validator)
        .cloned()
        .collect();
    members.push(heavy);
    members.sort_by_key(|m| m.validator);
    members
}

#[test]
fn a_trusted_committee_that_lost_its_majority_is_bridged_by_bisection() {
    let (file, chain) = chain();
    let genesis = LightClient::from_genesis(&file.genesis);
    // Trust a committee in which one validator outweighs everyone, then ask for a height
    // it did not sign (validator 0 of the scenario stops signing for a while): only
    // certificates from before it stopped can bridge.
    let signers_of = |h: u64| -> Vec<ValidatorId> {
        let certified = chain.source(None).certified_from(h).unwrap().unwrap();
        certified
            .certificate
            .signatures
            .iter()
            .map(|s| s.validator)
            .collect()
    };
    let (first, unsigned_by_heavy) = genesis
        .trusted()
        .iter()
        .find_map(|m| {
            let h = chain
                .certified_heights()
                .find(|&h| !signers_of(h).contains(&m.validator))?;
            Some((m.clone(), h))
        })
        .expect("a height one genesis validator did not sign");
    assert!(
        signers_of(1).contains(&first.validator),
        "it signed the first heights"
    );
    let heavy = ConfigMember {
        weight: 1_000_000,
        ..first.clone()
    };
    let mut source = chain.source(None);
    let target = source.certified_from(unsigned_by_heavy).unwrap().unwrap();
    let mut client = LightClient::trusting(genesis.chain_id(), 0, skewed(&file, heavy));
    client.sync_to(&mut source, &target).unwrap();
    assert!(client.bisection_steps >= 1);
    assert_eq!(client.trusted_height(), target.height);

    // A trusted committee whose majority never signed anything: no path.
    let outsider = seeded_key(KeyKind::MlDsa44, "never-signs");
    let ghost = ConfigMember {
        validator: ValidatorId::from_public_key(outsider.public_key()),
        weight: 1_000_000,
        public_key: outsider.public_key().clone(),
        peer: Vec::new(),
    };
    let mut client = LightClient::trusting(genesis.chain_id(), 0, skewed(&file, ghost));
    let mut source = chain.source(None);
    let newest = source.latest_certified().unwrap().unwrap();
    assert!(matches!(
        client.sync_to(&mut source, &newest),
        Err(LightError::NoPath { from: 0, .. })
    ));
}

#[test]
fn a_checkpoint_is_trusted_only_as_pinned() {
    let (_, chain) = chain();
    let height = chain.certified_heights().nth(3).unwrap();
    let committee = chain.ledger(height).unwrap().state().committee.clone();
    let pinned = committee_hash(&committee);
    let mut source = chain.source(None);
    let client =
        LightClient::from_checkpoint(chain.chain_id(), height, pinned, &mut source).unwrap();
    assert_eq!(client.trusted_height(), height);
    assert_eq!(client.trusted(), &committee.members[..]);
    let wrong =
        LightClient::from_checkpoint(chain.chain_id(), height, Hash32([1; 32]), &mut source);
    assert!(matches!(wrong, Err(LightError::CheckpointMismatch { .. })));
}
