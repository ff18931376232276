//! Test vectors: the deterministic scenarios whose roots every implementation must reach,
//! and the seeded keys and peer ids they use.
//!
//! [`generate_all`] builds the committed vectors from seeded keys with deterministic
//! signing, so the same code always yields the same bytes; `agora_core::vectors::check`
//! replays them. Each scenario also asserts what it is about (a proposal passed, a nonce
//! was refused), so a vector can only be regenerated if the ledger still behaves as the
//! scenario says.

use agora_core::block::{Block, Entry, EntryPayload};
use agora_core::certificate::{
    signed_weight, Certificate, CommitSignature, MAX_CERTIFICATES_PER_BLOCK,
};
use agora_core::crypto::{KeyKind, Purpose, SecretKey};
use agora_core::encoding::Canonical;
use agora_core::genesis::{Genesis, GenesisAccount, GenesisValidator};
use agora_core::hash::{tagged_hash, Hash32};
use agora_core::ledger::Ledger;
use agora_core::outcome::{Event, Outcome, ProposalError, TxError, TxStatus};
use agora_core::params::{ParamChange, Params};
use agora_core::state::ProposalStatus;
use agora_core::tx::{Action, ProposalKind, Sender, Transaction, VoteChoice};
use agora_core::types::{AccountId, Amount, Ratio, ValidatorId};
use agora_core::vectors::{ConfigWeight, Expected, RefusedEntry, VectorEntry, VectorFile, FORMAT};

/// 32 bytes from a label, the same on every run: the seed of every test key.
pub fn test_seed(label: &str) -> [u8; 32] {
    tagged_hash(b"agora/test-seed/v1", &[label.as_bytes()]).0
}

/// A key from a label, the same on every run.
pub fn seeded_key(kind: KeyKind, label: &str) -> SecretKey {
    SecretKey::from_seed(kind, test_seed(label))
}

/// The libp2p peer ids (hex of their bytes) of validators `validator-0` … `validator-3`:
/// ed25519 keys seeded with `test_seed("network/validator-i")`, so that a replay cluster
/// can run as the validators a vector names. agora-core has no ed25519; a test in
/// agora-node derives them and checks these constants.
pub const VALIDATOR_PEER_IDS: [&str; 4] = [
    "0024080112205119dcdaeaf94d3473705de88c5f37372728f0f38a2c414548d423bfa6b6732c",
    "002408011220d9e04fa8b42d70ac590763694ada2f9fa89b89631a992c0c1cd98684c53867ae",
    "0024080112200f6514a50e2cfa733f024cce230f06c781fd99a2e5587151a65c72815eb70bca",
    "002408011220af74a23f2fd3eb809915f9f8bd700a5420ace947dad2e9dfbf7faa669e6669ad",
];

/// The peer id bytes of vector validator `i`.
pub fn validator_peer(i: usize) -> Vec<u8> {
    hex::decode(VALIDATOR_PEER_IDS[i]).expect("constant hex")
}

/// Builds one scenario: seeded members and validators, blocks applied as they are made.
pub struct Scenario {
    name: String,
    description: String,
    genesis: Genesis,
    ledger: Ledger,
    /// Member keys, by index.
    pub members: Vec<SecretKey>,
    /// Validator keys, by index.
    pub validators: Vec<SecretKey>,
    pending: Vec<(AccountId, u64)>,
    entries: Vec<VectorEntry>,
    term: u64,
    /// Validators (by index) that sign every height they can; empty: blocks carry no
    /// certificates.
    certifiers: Vec<usize>,
    /// Refusals to attach to the next committed entry.
    refusals: Vec<RefusedEntry>,
}

/// Genesis funding of each member in the standard scenario genesis.
pub const MEMBER_FUNDS: u128 = 1_000_000;
/// Genesis stake of each member in the standard scenario genesis.
pub const MEMBER_STAKE: u128 = 100_000;

impl Scenario {
    /// A scenario over the standard genesis: `member_kinds.len()` members funded with
    /// [`MEMBER_FUNDS`] and staking [`MEMBER_STAKE`], three validators with base
    /// reputations 10, 20 and 30, and `params`.
    pub fn new(
        name: &str,
        description: &str,
        member_kinds: &[KeyKind],
        params: Params,
    ) -> Scenario {
        Scenario::with_bases(name, description, member_kinds, params, [10, 20, 30])
    }

    /// [`Scenario::new`] with the three validators' base reputations given.
    pub fn with_bases(
        name: &str,
        description: &str,
        member_kinds: &[KeyKind],
        params: Params,
        bases: [u64; 3],
    ) -> Scenario {
        Scenario::with_validator_kind(
            name,
            description,
            member_kinds,
            params,
            bases,
            KeyKind::MlDsa44,
        )
    }

    /// [`Scenario::with_bases`] with validator keys of `validator_kind`.
    pub fn with_validator_kind(
        name: &str,
        description: &str,
        member_kinds: &[KeyKind],
        params: Params,
        bases: [u64; 3],
        validator_kind: KeyKind,
    ) -> Scenario {
        let members: Vec<SecretKey> = member_kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| seeded_key(*kind, &format!("member-{i}")))
            .collect();
        let validators: Vec<SecretKey> = (0..3)
            .map(|i| seeded_key(validator_kind, &format!("validator-{i}")))
            .collect();
        let genesis = Genesis {
            witnesses: vec![],
            chain_name: format!("agora-vectors-{name}"),
            params,
            accounts: members
                .iter()
                .map(|key| GenesisAccount {
                    account: AccountId::from_public_key(key.public_key()),
                    balance: Amount(MEMBER_FUNDS),
                    staked: Amount(MEMBER_STAKE),
                })
                .collect(),
            validators: validators
                .iter()
                .enumerate()
                .map(|(i, key)| GenesisValidator {
                    public_key: key.public_key().clone(),
                    peer: validator_peer(i),
                    base_reputation: bases[i],
                })
                .collect(),
            treasury: Amount(50_000),
        }
        .normalized()
        .expect("the standard genesis is valid");
        Scenario::with_genesis(name, description, genesis, members, validators)
    }

    /// A scenario over a custom genesis.
    pub fn with_genesis(
        name: &str,
        description: &str,
        genesis: Genesis,
        members: Vec<SecretKey>,
        validators: Vec<SecretKey>,
    ) -> Scenario {
        let ledger = Ledger::from_genesis(&genesis);
        Scenario {
            name: name.to_string(),
            description: description.to_string(),
            genesis,
            ledger,
            members,
            validators,
            pending: Vec::new(),
            entries: Vec::new(),
            term: 1,
            certifiers: Vec::new(),
            refusals: Vec::new(),
        }
    }

    /// The ledger as of the last entry.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Member `i`'s account.
    pub fn member(&self, i: usize) -> AccountId {
        AccountId::from_public_key(self.members[i].public_key())
    }

    /// Validator `i`'s id.
    pub fn validator(&self, i: usize) -> ValidatorId {
        ValidatorId::from_public_key(self.validators[i].public_key())
    }

    /// The unsigned transaction `key` would send next: right nonce, `Register` on first use.
    pub fn next_tx(&mut self, key: &SecretKey, action: Action) -> Transaction {
        let id = AccountId::from_public_key(key.public_key());
        let queued = self.pending.iter().filter(|(a, _)| *a == id).count() as u64;
        let state = self.ledger.state();
        let nonce = state.accounts.get(&id).map(|a| a.nonce).unwrap_or(0) + queued;
        let sender = if state.account_keys.contains_key(&id) || queued > 0 {
            Sender::Account(id)
        } else {
            Sender::Register(key.public_key().clone())
        };
        self.pending.push((id, nonce));
        Transaction {
            chain_id: self.ledger.chain_id(),
            sender,
            nonce,
            action,
        }
    }

    /// Forgets transactions built for the next block, so the next one reuses their nonces
    /// (for transactions meant to fail before they use a nonce).
    pub fn forget_pending(&mut self) {
        self.pending.clear();
    }

    /// Member `i` signs `action` (deterministic signing) with the next nonce.
    pub fn sign(&mut self, i: usize, action: Action) -> Vec<u8> {
        let key = self.members[i].clone();
        self.next_tx(&key, action)
            .sign(&key, [0u8; 32])
            .to_canonical_bytes()
    }

    /// Commits a block by validator `proposer`. Its checked root lags one height behind
    /// (as a pipelining leader's would) except right after genesis.
    pub fn block(&mut self, proposer: usize, note: &str, txs: Vec<Vec<u8>>) -> Outcome {
        let checked_height = self.ledger.height().saturating_sub(1);
        self.block_checking(proposer, checked_height, note, txs)
    }

    /// [`Scenario::block`] with the checked height chosen (any recorded height below the
    /// block is valid).
    pub fn block_checking(
        &mut self,
        proposer: usize,
        checked_height: u64,
        note: &str,
        txs: Vec<Vec<u8>>,
    ) -> Outcome {
        let certificates = self.honest_certificates();
        let payload = self.block_payload(proposer, checked_height, txs, certificates);
        self.commit(payload, note)
    }

    /// From now on blocks carry a certificate for every height the validators `signers`
    /// (indexes) can certify: what a leader that hears from exactly them includes.
    pub fn certify_by(&mut self, signers: &[usize]) {
        self.certifiers = signers.to_vec();
    }

    /// Validator `i`'s commit signature for `height` (applied already).
    pub fn commit_signature(&self, i: usize, height: u64) -> CommitSignature {
        let statement = self.ledger.commit_statement(height).expect("root kept");
        CommitSignature {
            validator: self.validator(i),
            signature: self.validators[i].sign(Purpose::Commit, &statement.to_bytes(), [0; 32]),
        }
    }

    /// A certificate for `height` signed by validators `signers`, in the order given.
    pub fn certificate(&self, height: u64, signers: &[usize]) -> Certificate {
        Certificate {
            height,
            signatures: signers
                .iter()
                .map(|&i| self.commit_signature(i, height))
                .collect(),
        }
    }

    /// The certificates an honest leader hearing from the certifiers includes in the next
    /// block: every height after the last certified one whose signers hold a majority of
    /// its committee, in order, at most a block's worth.
    fn honest_certificates(&self) -> Vec<Certificate> {
        if self.certifiers.is_empty() {
            return Vec::new();
        }
        let next = self.ledger.height() + 1;
        let first = self.ledger.state().globals.certified_height + 1;
        let mut certificates = Vec::new();
        for height in first..next {
            let Some(committee) = self.ledger.certifying_committee(height) else {
                continue;
            };
            let mut signers: Vec<usize> = self
                .certifiers
                .iter()
                .copied()
                .filter(|&i| committee.iter().any(|m| m.validator == self.validator(i)))
                .collect();
            signers.sort_by_key(|&i| self.validator(i));
            let ids: Vec<ValidatorId> = signers.iter().map(|&i| self.validator(i)).collect();
            let (signed, total) = signed_weight(committee, &ids);
            if signed * 2 > total && certificates.len() < MAX_CERTIFICATES_PER_BLOCK {
                certificates.push(self.certificate(height, &signers));
            }
        }
        certificates
    }

    fn block_payload(
        &self,
        proposer: usize,
        checked_height: u64,
        txs: Vec<Vec<u8>>,
        certificates: Vec<Certificate>,
    ) -> EntryPayload {
        let block = Block::build(
            self.ledger.chain_id(),
            self.ledger.height() + 1,
            &self.validators[proposer],
            self.ledger.state().globals.last_block_hash,
            checked_height,
            self.ledger.root_at(checked_height).expect("recent"),
            txs,
            certificates,
            [0u8; 32],
        );
        EntryPayload::Block(block.to_canonical_bytes())
    }

    /// A block by `proposer` whose header binds `signed` but that carries `carried`.
    pub fn tampered_block(
        &self,
        proposer: usize,
        signed: Vec<Certificate>,
        carried: Vec<Certificate>,
    ) -> EntryPayload {
        let checked_height = self.ledger.height().saturating_sub(1);
        let EntryPayload::Block(bytes) =
            self.block_payload(proposer, checked_height, vec![], signed)
        else {
            unreachable!("a block payload")
        };
        let mut block = Block::from_canonical_bytes(&bytes).expect("just built");
        block.certificates = carried;
        EntryPayload::Block(block.to_canonical_bytes())
    }

    /// Commits a block by `proposer` carrying exactly `certificates`.
    pub fn block_with_certificates(
        &mut self,
        proposer: usize,
        note: &str,
        certificates: Vec<Certificate>,
    ) -> Outcome {
        let checked_height = self.ledger.height().saturating_sub(1);
        let payload = self.block_payload(proposer, checked_height, vec![], certificates);
        self.commit(payload, note)
    }

    /// Offers a block by `proposer` carrying `certificates` that the ledger must refuse
    /// with the halt code `halt`, changing nothing; recorded with the next entry.
    pub fn refuse_certificates(
        &mut self,
        proposer: usize,
        note: &str,
        certificates: Vec<Certificate>,
        halt: &str,
    ) {
        let checked_height = self.ledger.height().saturating_sub(1);
        let payload = self.block_payload(proposer, checked_height, vec![], certificates);
        self.refuse(payload, note, halt);
    }

    /// Offers an entry the ledger must refuse with `halt`, changing nothing.
    pub fn refuse(&mut self, payload: EntryPayload, note: &str, halt: &str) {
        let entry = Entry {
            index: self.ledger.height() + 1,
            term: self.term,
            payload,
        };
        let root = self.ledger.state_root();
        let got = match self.ledger.apply(&entry) {
            Ok(_) => panic!("scenario {}: {note}: applied", self.name),
            Err(error) => error.code(),
        };
        assert_eq!(got, halt, "scenario {}: {note}", self.name);
        assert_eq!(root, self.ledger.state_root(), "a refusal changes nothing");
        self.refusals.push(RefusedEntry {
            entry,
            note: note.to_string(),
            halt: halt.to_string(),
        });
    }

    /// Commits a leader's empty entry (a new term begins).
    pub fn noop(&mut self, note: &str) -> Outcome {
        self.term += 1;
        self.commit(EntryPayload::Noop, note)
    }

    /// Commits a Raft configuration-change entry carrying `change` (its canonical bytes):
    /// to the ledger an entry like a no-op.
    pub fn membership(&mut self, note: &str, change: Vec<u8>) -> Outcome {
        self.commit(EntryPayload::Membership(change), note)
    }

    /// Commits `count` empty blocks, rotating proposers.
    pub fn empty_blocks(&mut self, count: u64, note: &str) {
        for i in 0..count {
            self.block((i % 3) as usize, note, vec![]);
        }
    }

    fn commit(&mut self, payload: EntryPayload, note: &str) -> Outcome {
        self.pending.clear();
        let entry = Entry {
            index: self.ledger.height() + 1,
            term: self.term,
            payload,
        };
        let outcome = self
            .ledger
            .apply(&entry)
            .unwrap_or_else(|halt| panic!("scenario {}: {halt}", self.name));
        self.ledger
            .state()
            .check_invariants()
            .unwrap_or_else(|e| panic!("scenario {}: {e}", self.name));
        self.entries.push(VectorEntry {
            entry,
            note: note.to_string(),
            expected: Expected {
                state_root: outcome.state_root,
                receipts: outcome.receipts.clone(),
                events: outcome.events.clone(),
                config: outcome.config_changed.as_ref().map(ConfigWeight::of),
            },
            refused: std::mem::take(&mut self.refusals),
        });
        outcome
    }

    /// The finished vector.
    pub fn finish(self) -> VectorFile {
        let genesis_root = Ledger::from_genesis(&self.genesis).state_root();
        VectorFile {
            format: FORMAT.to_string(),
            chain_id: self.genesis.chain_id(),
            name: self.name,
            description: self.description,
            genesis: self.genesis,
            genesis_state_root: genesis_root,
            entries: self.entries,
        }
    }
}

mod accounts;
mod certificates;
pub use certificates::certified_chain;
mod governance;
mod support;
mod witnesses;

/// Every scenario, in a fixed order.
pub fn generate_all() -> Vec<VectorFile> {
    use accounts::*;
    use certificates::*;
    use governance::*;
    use witnesses::*;
    vec![
        transfers_and_fees(),
        failures(),
        staking_and_unbonding(),
        governance_parameter_change(),
        governance_treasury_spend(),
        governance_rejected(),
        governance_vetoed(),
        governance_quorum_not_met(),
        governance_validators(),
        governance_vote_changed(),
        reputation_epochs(),
        governance_failures(),
        consensus_weights(),
        edge_cases(),
        certificates(),
        certificate_failures(),
        governance_witnesses(),
    ]
}

/// The canonical bytes of the Raft entry `ConfigChange::Final(Config)` for `members`
/// (vectors/README.md §1): variant 1, then a map from validator id to
/// `Member { weight: u64, public_key: Vec<u8> }` in increasing id order. Built by hand
/// because the consensus crate sits above this one; a test there decodes these bytes.
pub fn final_config_bytes(
    members: &[(ValidatorId, u64, &agora_core::crypto::PublicKey)],
) -> Vec<u8> {
    let mut members = members.to_vec();
    members.sort_by_key(|(id, _, _)| *id);
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for (id, weight, key) in members {
        bytes.extend_from_slice(&id.0 .0);
        bytes.extend_from_slice(&weight.to_le_bytes());
        let key = borsh::to_vec(key).expect("in memory");
        bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&key);
    }
    bytes
}
