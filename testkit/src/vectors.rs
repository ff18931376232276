//! Test vectors: the deterministic scenarios whose roots every implementation must reach,
//! and the seeded keys and peer ids they use.
//!
//! [`generate_all`] builds the committed vectors from seeded keys with deterministic
//! signing, so the same code always yields the same bytes; `agora_core::vectors::check`
//! replays them. Each scenario also asserts what it is about (a proposal passed, a nonce
//! was refused), so a vector can only be regenerated if the ledger still behaves as the
//! scenario says.

use agora_core::block::{Block, Entry, EntryPayload};
use agora_core::crypto::{KeyKind, SecretKey};
use agora_core::encoding::Canonical;
use agora_core::genesis::{Genesis, GenesisAccount, GenesisValidator};
use agora_core::hash::{tagged_hash, Hash32};
use agora_core::ledger::Ledger;
use agora_core::outcome::{Event, Outcome, ProposalError, TxError, TxStatus};
use agora_core::params::{ParamChange, Params};
use agora_core::state::ProposalStatus;
use agora_core::tx::{Action, ProposalKind, Sender, Transaction, VoteChoice};
use agora_core::types::{AccountId, Amount, Ratio, ValidatorId};
use agora_core::vectors::{ConfigWeight, Expected, VectorEntry, VectorFile, FORMAT};

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
        let members: Vec<SecretKey> = member_kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| seeded_key(*kind, &format!("member-{i}")))
            .collect();
        let validators: Vec<SecretKey> = (0..3)
            .map(|i| seeded_key(KeyKind::MlDsa44, &format!("validator-{i}")))
            .collect();
        let genesis = Genesis {
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
        let height = self.ledger.height() + 1;
        let block = Block::build(
            self.ledger.chain_id(),
            height,
            &self.validators[proposer],
            self.ledger.state().globals.last_block_hash,
            checked_height,
            self.ledger.root_at(checked_height).expect("recent"),
            txs,
            [0u8; 32],
        );
        self.commit(EntryPayload::Block(block.to_canonical_bytes()), note)
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

fn statuses(outcome: &Outcome) -> Vec<TxStatus> {
    outcome.receipts.iter().map(|r| r.status.clone()).collect()
}

fn failed(error: TxError) -> TxStatus {
    TxStatus::Failed(error)
}

const OK: TxStatus = TxStatus::Applied;

fn transfer(to: AccountId, amount: u128) -> Action {
    Action::Transfer {
        to,
        amount: Amount(amount),
    }
}

fn vote(proposal: u64, choice: VoteChoice) -> Action {
    Action::Vote { proposal, choice }
}

fn propose(proposal: ProposalKind) -> Action {
    Action::Propose {
        proposal,
        deposit: Amount(Params::default().min_deposit.0),
    }
}

fn status_of(s: &Scenario, id: u64) -> ProposalStatus {
    s.ledger().state().proposals[&id].status.clone()
}

fn balance(s: &Scenario, id: AccountId) -> u128 {
    s.ledger()
        .state()
        .accounts
        .get(&id)
        .map(|a| a.balance.0)
        .unwrap_or(0)
}

/// Member 0 opens a text proposal (id 0 in these scenarios) in a block by validator 0.
fn open_text_proposal(s: &mut Scenario, title: &str, body: &str) {
    let tx = s.sign(
        0,
        propose(ProposalKind::Text {
            title: title.into(),
            body: body.into(),
        }),
    );
    s.block(0, "proposal", vec![tx]);
}

/// Member `i` votes `choices[i]` on proposal 0, all in one block by validator 1.
fn vote_block(s: &mut Scenario, note: &str, choices: &[VoteChoice]) {
    let votes = choices
        .iter()
        .enumerate()
        .map(|(i, choice)| s.sign(i, vote(0, *choice)))
        .collect();
    s.block(1, note, votes);
}

/// Runs the voting period out with empty blocks, so proposal `id` is tallied.
fn close_voting(s: &mut Scenario, id: u64) {
    let end = s.ledger().state().proposals[&id].voting_end_height;
    while s.ledger().height() < end {
        s.block(0, "voting period runs", vec![]);
    }
}

/// Every scenario, in a fixed order.
pub fn generate_all() -> Vec<VectorFile> {
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
    ]
}

fn transfers_and_fees() -> VectorFile {
    let kinds = [
        KeyKind::MlDsa44,
        KeyKind::MlDsa44,
        KeyKind::MlDsa65,
        KeyKind::MlDsa87,
    ];
    let mut s = Scenario::new(
        "transfers_and_fees",
        "Key registration by first transaction, transfers (to known and new accounts), the flat fee to the treasury, proposer rewards, all three ML-DSA parameter sets, and a leader's no-op entry.",
        &kinds,
        Params::default(),
    );
    let fee = Params::default().fee.0;
    let newcomer = AccountId(tagged_hash(b"agora/test-seed/v1", &[b"newcomer"]));
    let (m0, m1) = (s.member(0), s.member(1));
    let txs = vec![
        s.sign(0, transfer(m1, 1_000)),
        s.sign(0, transfer(newcomer, 250)),
    ];
    let out = s.block(
        0,
        "member 0 registers its key and pays member 1 and a new account",
        txs,
    );
    assert_eq!(statuses(&out), vec![OK, OK]);
    assert_eq!(balance(&s, m0), MEMBER_FUNDS - 1_250 - 2 * fee);
    assert_eq!(balance(&s, newcomer), 250);
    let txs = vec![
        s.sign(1, transfer(m0, 10)),
        s.sign(2, transfer(m0, 20)),
        s.sign(3, transfer(m0, 30)),
    ];
    let out = s.block(1, "ML-DSA-44, -65 and -87 senders in one block", txs);
    assert_eq!(statuses(&out), vec![OK, OK, OK]);
    s.noop("a new leader's empty entry: height advances, no reward");
    let txs = vec![s.sign(0, transfer(m1, 5)), s.sign(1, transfer(m1, 7))];
    let out = s.block(
        2,
        "later transactions name the account instead of the key; a self-transfer",
        txs,
    );
    assert_eq!(statuses(&out), vec![OK, OK]);
    assert_eq!(s.ledger().state().globals.treasury.0, 50_000 + 7 * fee);
    s.finish()
}

fn failures() -> VectorFile {
    let kinds = [KeyKind::MlDsa44; 3];
    let mut s = Scenario::new(
        "failures",
        "Every way a transaction fails: bad signature, wrong chain id, replayed and skipped nonces, insufficient funds (fee charged), unknown account, malformed and truncated bytes, a second key registration, a zero amount, and a fee the balance cannot pay.",
        &kinds,
        Params::default(),
    );
    let m1 = s.member(1);
    let first = s.sign(0, transfer(m1, 1));
    let second = s.sign(0, transfer(m1, 1));
    let out = s.block(
        0,
        "member 0 registers, then sends by account id",
        vec![first.clone(), second.clone()],
    );
    assert_eq!(statuses(&out), vec![OK, OK]);

    let key0 = s.members[0].clone();
    let signed_by_0 = |s: &mut Scenario, edit: &dyn Fn(&mut Transaction)| {
        let mut tx = s.next_tx(&key0, transfer(m1, 2));
        s.forget_pending();
        edit(&mut tx);
        tx.sign(&key0, [0u8; 32]).to_canonical_bytes()
    };
    let mut bad_sig = signed_by_0(&mut s, &|_| {});
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    let wrong_chain = signed_by_0(&mut s, &|tx| tx.chain_id = Hash32([0xee; 32]));
    let skipped = signed_by_0(&mut s, &|tx| tx.nonce += 5);
    let too_much = s.sign(0, transfer(m1, MEMBER_FUNDS * 10));
    let zero = s.sign(0, transfer(m1, 0));
    let unknown_key = seeded_key(KeyKind::MlDsa44, "never-registered");
    let unknown = Transaction {
        chain_id: s.ledger().chain_id(),
        sender: Sender::Account(AccountId::from_public_key(unknown_key.public_key())),
        nonce: 0,
        action: transfer(m1, 1),
    }
    .sign(&unknown_key, [0u8; 32])
    .to_canonical_bytes();
    let reregister = Transaction {
        chain_id: s.ledger().chain_id(),
        sender: Sender::Register(key0.public_key().clone()),
        nonce: 4,
        action: transfer(m1, 1),
    }
    .sign(&key0, [0u8; 32])
    .to_canonical_bytes();
    let malformed = b"not a transaction".to_vec();
    let truncated = second[..second.len() / 2].to_vec();
    let mut trailing = second.clone();
    trailing.push(0);
    let poor_key = seeded_key(KeyKind::MlDsa44, "unfunded");
    let poor = Transaction {
        chain_id: s.ledger().chain_id(),
        sender: Sender::Register(poor_key.public_key().clone()),
        nonce: 0,
        action: transfer(m1, 1),
    }
    .sign(&poor_key, [0u8; 32])
    .to_canonical_bytes();
    let txs = vec![
        first,
        second,
        bad_sig,
        wrong_chain,
        skipped,
        too_much,
        zero,
        unknown,
        reregister,
        malformed,
        truncated,
        trailing,
        poor,
    ];
    let out = s.block(
        1,
        "one block of failures; only the two funded-but-failing actions pay the fee",
        txs,
    );
    assert_eq!(
        statuses(&out),
        vec![
            failed(TxError::KeyAlreadyRegistered),
            failed(TxError::ReplayedNonce {
                expected: 2,
                got: 1
            }),
            failed(TxError::BadSignature),
            failed(TxError::WrongChainId),
            failed(TxError::SkippedNonce {
                expected: 2,
                got: 7
            }),
            failed(TxError::InsufficientFunds),
            failed(TxError::ZeroAmount),
            failed(TxError::UnknownAccount),
            failed(TxError::KeyAlreadyRegistered),
            failed(TxError::Malformed),
            failed(TxError::Malformed),
            failed(TxError::Malformed),
            failed(TxError::InsufficientFundsForFee),
        ]
    );
    let charged: Vec<u128> = out.receipts.iter().map(|r| r.fee.0).collect();
    let fee = Params::default().fee.0;
    assert_eq!(charged, vec![0, 0, 0, 0, 0, fee, fee, 0, 0, 0, 0, 0, 0]);
    let next = s.sign(0, transfer(m1, 1));
    let out = s.block(
        2,
        "the account continues at the next nonce after its failures",
        vec![next],
    );
    assert_eq!(statuses(&out), vec![OK]);
    s.finish()
}

fn staking_and_unbonding() -> VectorFile {
    let mut s = Scenario::new(
        "staking_and_unbonding",
        "Stake, unstake into the unbonding queue, too large an unstake, and release to the balance exactly unbonding_blocks later.",
        &[KeyKind::MlDsa44; 2],
        Params::default(),
    );
    let m0 = s.member(0);
    let txs = vec![
        s.sign(
            0,
            Action::Stake {
                amount: Amount(5_000),
            },
        ),
        s.sign(
            0,
            Action::Unstake {
                amount: Amount(2_000),
            },
        ),
        s.sign(
            0,
            Action::Unstake {
                amount: Amount(MEMBER_STAKE * 10),
            },
        ),
        s.sign(
            0,
            Action::Stake {
                amount: Amount(MEMBER_FUNDS * 10),
            },
        ),
    ];
    let out = s.block(
        0,
        "stake, unstake, then an unstake and a stake that are too large",
        txs,
    );
    assert_eq!(
        statuses(&out),
        vec![
            OK,
            OK,
            failed(TxError::InsufficientStake),
            failed(TxError::InsufficientFunds)
        ]
    );
    let release = s.ledger().height() + Params::default().unbonding_blocks;
    let account = s.ledger().state().accounts[&m0].clone();
    assert_eq!(account.staked.0, MEMBER_STAKE + 3_000);
    assert_eq!(account.unbonding.0, 2_000);
    while s.ledger().height() < release - 1 {
        s.block(1, "waiting out the unbonding period", vec![]);
    }
    let before = balance(&s, m0);
    let out = s.block(2, "the unbonded tokens become spendable", vec![]);
    assert!(out.events.contains(&Event::Unbonded {
        account: m0,
        amount: Amount(2_000)
    }));
    assert_eq!(balance(&s, m0), before + 2_000);
    assert_eq!(s.ledger().state().accounts[&m0].unbonding.0, 0);
    s.finish()
}

fn governance_parameter_change() -> VectorFile {
    let mut s = Scenario::new(
        "governance_parameter_change",
        "A parameter change (fee 10 -> 25, quorum 2/5) passes with all stake voting Yes and takes effect for the next transaction; the deposit is refunded.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    let changes = vec![
        ParamChange::Fee(Amount(25)),
        ParamChange::Quorum(Ratio::new(2, 5)),
    ];
    let tx = s.sign(0, propose(ProposalKind::ParameterChange { changes }));
    let out = s.block(0, "member 0 proposes", vec![tx]);
    assert_eq!(statuses(&out), vec![OK]);
    let votes = (0..3)
        .map(|i| s.sign(i, vote(0, VoteChoice::Yes)))
        .collect();
    s.block(1, "everyone votes yes", votes);
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    assert_eq!(s.ledger().state().params.fee, Amount(25));
    let m2 = s.member(2);
    let tx = s.sign(1, transfer(m2, 1));
    let out = s.block(2, "the new fee applies", vec![tx]);
    assert_eq!(out.receipts[0].fee, Amount(25));
    s.finish()
}

fn governance_treasury_spend() -> VectorFile {
    let mut s = Scenario::new(
        "governance_treasury_spend",
        "A treasury spend passes and pays its recipient; a second spend larger than the treasury passes the vote but fails to execute, refunding its deposit.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    let recipient = AccountId(tagged_hash(b"agora/test-seed/v1", &[b"grant recipient"]));
    let txs = vec![
        s.sign(
            0,
            propose(ProposalKind::TreasurySpend {
                to: recipient,
                amount: Amount(40_000),
            }),
        ),
        s.sign(
            1,
            propose(ProposalKind::TreasurySpend {
                to: recipient,
                amount: Amount(10_000_000),
            }),
        ),
    ];
    s.block(0, "two spends proposed", txs);
    let mut votes = Vec::new();
    for i in 0..3 {
        votes.push(s.sign(i, vote(0, VoteChoice::Yes)));
        votes.push(s.sign(i, vote(1, VoteChoice::Yes)));
    }
    s.block(1, "both pass the vote", votes);
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    assert!(matches!(
        status_of(&s, 1),
        ProposalStatus::ExecutionFailed(_)
    ));
    assert_eq!(balance(&s, recipient), 40_000);
    s.finish()
}

fn governance_rejected() -> VectorFile {
    let mut s = Scenario::new(
        "governance_rejected",
        "A text proposal with quorum met but a No majority is rejected; its deposit is refunded; votes and tally stay in state.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    open_text_proposal(&mut s, "Adopt the charter", "Shall we?");
    vote_block(
        &mut s,
        "one yes, two no",
        &[VoteChoice::Yes, VoteChoice::No, VoteChoice::No],
    );
    let proposer = s.member(0);
    let before = balance(&s, proposer);
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Rejected);
    assert_eq!(
        balance(&s, proposer),
        before + Params::default().min_deposit.0
    );
    s.finish()
}

fn governance_vetoed() -> VectorFile {
    let mut s = Scenario::new(
        "governance_vetoed",
        "A proposal with Veto above the veto threshold is vetoed although Yes leads; the deposit goes to the treasury.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    open_text_proposal(&mut s, "Contentious", "");
    vote_block(
        &mut s,
        "two yes, one veto: a third of the votes, just under the 0.334 veto threshold",
        &[VoteChoice::Yes, VoteChoice::Yes, VoteChoice::Veto],
    );
    // Member 2 adds stake so that its veto weighs more than 33.4% of the votes.
    let tx = s.sign(
        2,
        Action::Stake {
            amount: Amount(10_000),
        },
    );
    s.block(
        2,
        "the vetoing member stakes more before the tally",
        vec![tx],
    );
    let treasury = s.ledger().state().globals.treasury.0;
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Vetoed);
    assert_eq!(
        s.ledger().state().globals.treasury.0,
        treasury + Params::default().min_deposit.0
    );
    s.finish()
}

fn governance_quorum_not_met() -> VectorFile {
    let mut s = Scenario::new(
        "governance_quorum_not_met",
        "Only one of four equal stakers votes (25% < 33.4% quorum): quorum not met, deposit refunded.",
        &[KeyKind::MlDsa44; 4],
        Params::default(),
    );
    open_text_proposal(&mut s, "Quiet", "");
    vote_block(&mut s, "a single vote", &[VoteChoice::Yes]);
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::QuorumNotMet);
    s.finish()
}

fn governance_validators() -> VectorFile {
    let mut s = Scenario::new(
        "governance_validators",
        "Governance adds a validator (which then proposes a block) and removes another; each change emits a new target configuration.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    let newcomer = seeded_key(KeyKind::MlDsa44, "validator-3");
    let add = ProposalKind::AddValidator {
        public_key: newcomer.public_key().clone(),
        peer: validator_peer(3),
        base_reputation: 15,
    };
    let remove = ProposalKind::RemoveValidator {
        validator: s.validator(0),
    };
    let txs = vec![s.sign(0, propose(add)), s.sign(1, propose(remove))];
    s.block(1, "add and remove proposed", txs);
    let mut votes = Vec::new();
    for i in 0..3 {
        votes.push(s.sign(i, vote(0, VoteChoice::Yes)));
        votes.push(s.sign(i, vote(1, VoteChoice::Yes)));
    }
    s.block(1, "both pass", votes);
    let end = s.ledger().state().proposals[&0].voting_end_height;
    while s.ledger().height() < end - 1 {
        s.block(1, "voting period runs", vec![]);
    }
    let out = s.block(2, "tally: validator 3 joins, validator 0 leaves", vec![]);
    assert!(out.config_changed.is_some());
    let ids: Vec<ValidatorId> = s
        .ledger()
        .target_config()
        .members
        .iter()
        .map(|m| m.validator)
        .collect();
    assert!(ids.contains(&ValidatorId::from_public_key(newcomer.public_key())));
    assert!(!ids.contains(&s.validator(0)));
    s.validators.push(newcomer);
    s.block(3, "the new validator proposes", vec![]);
    s.finish()
}

fn governance_vote_changed() -> VectorFile {
    let mut s = Scenario::new(
        "governance_vote_changed",
        "Votes change before the end: a No becomes Yes and the proposal passes; a voter who unstakes before the tally counts with its remaining stake.",
        &[KeyKind::MlDsa44; 3],
        Params::default(),
    );
    open_text_proposal(&mut s, "Change of heart", "");
    vote_block(
        &mut s,
        "one yes, two no",
        &[VoteChoice::Yes, VoteChoice::No, VoteChoice::No],
    );
    let txs = vec![
        s.sign(1, vote(0, VoteChoice::Yes)),
        s.sign(
            2,
            Action::Unstake {
                amount: Amount(MEMBER_STAKE - 1),
            },
        ),
    ];
    s.block(
        2,
        "member 1 switches to yes; member 2 unstakes almost everything",
        txs,
    );
    close_voting(&mut s, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    let record = &s.ledger().state().votes[&(0, s.member(2))];
    assert_eq!(record.weight, Some(Amount(1)));
    s.finish()
}

fn reputation_epochs() -> VectorFile {
    let params = Params {
        epoch_blocks: 4,
        reputation_per_block: 8,
        reputation_decay: Ratio::new(1, 2),
        ..Params::default()
    };
    let mut s = Scenario::new(
        "reputation_epochs",
        "Reputation points from proposing, halved at each 4-block epoch boundary, weights derived at the boundary, and a governance-set base reputation.",
        &[KeyKind::MlDsa44; 3],
        params,
    );
    for _ in 0..4 {
        s.block(0, "validator 0 proposes a whole epoch", vec![]);
    }
    let weight = |s: &Scenario, i: usize| s.ledger().state().validators[&s.validator(i)].weight;
    // 4 blocks x 8 points, halved at the boundary: 16 points on top of base 10.
    assert_eq!(weight(&s, 0), 26);
    let tx = s.sign(
        0,
        propose(ProposalKind::SetReputation {
            validator: s.validator(2),
            base_reputation: 1,
        }),
    );
    s.block(1, "proposal to lower validator 2's base", vec![tx]);
    let votes = (0..3)
        .map(|i| s.sign(i, vote(0, VoteChoice::Yes)))
        .collect();
    s.block(1, "votes", votes);
    close_voting(&mut s, 0);
    assert_eq!(
        s.ledger().state().validators[&s.validator(2)].base_reputation,
        1
    );
    for _ in 0..8 {
        s.block(1, "validator 1 proposes two epochs", vec![]);
    }
    assert!(weight(&s, 1) > weight(&s, 2));
    s.finish()
}

fn propose_with(proposal: ProposalKind, deposit: u128) -> Action {
    Action::Propose {
        proposal,
        deposit: Amount(deposit),
    }
}

fn invalid(error: ProposalError) -> TxStatus {
    failed(TxError::InvalidProposal(error))
}

/// Every member votes Yes on every proposal in `ids`, in one block by `proposer`.
fn all_vote_yes(s: &mut Scenario, proposer: usize, ids: std::ops::Range<u64>, note: &str) {
    let mut votes = Vec::new();
    for id in ids {
        for i in 0..s.members.len() {
            votes.push(s.sign(i, vote(id, VoteChoice::Yes)));
        }
    }
    let out = s.block(proposer, note, votes);
    assert!(statuses(&out).iter().all(|status| *status == OK));
}

/// Empty blocks by `proposer` until proposal `id`'s voting period is over.
fn close_voting_by(s: &mut Scenario, proposer: usize, id: u64) -> Outcome {
    let end = s.ledger().state().proposals[&id].voting_end_height;
    let mut last = None;
    while s.ledger().height() < end {
        last = Some(s.block(proposer, "voting period runs", vec![]));
    }
    last.expect("the voting period was still running")
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

fn governance_failures() -> VectorFile {
    let mut s = Scenario::new(
        "governance_failures",
        "Every way governance refuses: a deposit below the minimum, each invalid_proposal code at submission, a vote on an unknown proposal and on a closed one; and passed proposals that fail to execute because an earlier proposal at the same tally changed the state (validator gone, key already added, parameters invalid together, no validator left with weight). No reputation from proposing, so weights are the bases.",
        &[KeyKind::MlDsa44; 3],
        Params {
            reputation_per_block: 0,
            ..Params::default()
        },
    );
    let min = Params::default().min_deposit.0;
    let stranger = AccountId(tagged_hash(b"agora/test-seed/v1", &[b"no such validator"]));
    let newcomer = seeded_key(KeyKind::MlDsa44, "validator-3");
    let add = |base| ProposalKind::AddValidator {
        public_key: newcomer.public_key().clone(),
        peer: validator_peer(3),
        base_reputation: base,
    };
    let params = |changes| ProposalKind::ParameterChange { changes };
    let txs = vec![
        s.sign(
            0,
            propose_with(
                ProposalKind::Text {
                    title: "Too cheap".into(),
                    body: String::new(),
                },
                min - 1,
            ),
        ),
        s.sign(0, propose(params(vec![]))),
        s.sign(
            0,
            propose(params(vec![ParamChange::VotingPeriodBlocks(20)])),
        ),
        s.sign(
            0,
            propose(ProposalKind::TreasurySpend {
                to: s.member(1),
                amount: Amount(0),
            }),
        ),
        s.sign(
            1,
            propose(ProposalKind::AddValidator {
                public_key: s.validators[1].public_key().clone(),
                peer: validator_peer(1),
                base_reputation: 5,
            }),
        ),
        s.sign(1, propose(add(1_000_001))),
        s.sign(
            1,
            propose(ProposalKind::RemoveValidator {
                validator: stranger,
            }),
        ),
        s.sign(
            2,
            propose(ProposalKind::SetReputation {
                validator: s.validator(0),
                base_reputation: 2_000_000,
            }),
        ),
        s.sign(
            2,
            propose(ProposalKind::SetReputation {
                validator: stranger,
                base_reputation: 1,
            }),
        ),
        s.sign(2, vote(7, VoteChoice::Yes)),
    ];
    let out = s.block(
        0,
        "refused at submission: each pays the fee and uses its nonce, no deposit is taken",
        txs,
    );
    assert_eq!(
        statuses(&out),
        vec![
            failed(TxError::DepositTooLow {
                minimum: Amount(min)
            }),
            invalid(ProposalError::EmptyChange),
            invalid(ProposalError::InvalidParameters),
            invalid(ProposalError::ZeroSpend),
            invalid(ProposalError::AlreadyValidator),
            invalid(ProposalError::BaseReputationTooHigh),
            invalid(ProposalError::UnknownValidator),
            invalid(ProposalError::BaseReputationTooHigh),
            invalid(ProposalError::UnknownValidator),
            failed(TxError::UnknownProposal),
        ]
    );
    assert_eq!(s.ledger().state().globals.next_proposal_id, 0);

    let remove = |s: &Scenario, i| ProposalKind::RemoveValidator {
        validator: s.validator(i),
    };
    let proposals = vec![
        (0, remove(&s, 0)),
        (0, remove(&s, 0)),
        (0, remove(&s, 1)),
        (
            1,
            ProposalKind::SetReputation {
                validator: s.validator(2),
                base_reputation: 0,
            },
        ),
        (1, remove(&s, 2)),
        (1, add(5)),
        (2, add(7)),
        (2, params(vec![ParamChange::VotingPeriodBlocks(15)])),
        (2, params(vec![ParamChange::UnbondingBlocks(12)])),
    ];
    let count = proposals.len() as u64;
    let txs = proposals
        .into_iter()
        .map(|(member, kind)| s.sign(member, propose(kind)))
        .collect();
    let out = s.block(
        1,
        "nine proposals, each valid on its own now; they all end at the same height",
        txs,
    );
    assert!(statuses(&out).iter().all(|status| *status == OK));
    all_vote_yes(&mut s, 2, 0..count, "every member votes yes on all nine");
    let out = close_voting_by(&mut s, 2, 0);
    let expected = [
        ProposalStatus::Passed,
        ProposalStatus::ExecutionFailed(ProposalError::UnknownValidator),
        ProposalStatus::Passed,
        ProposalStatus::ExecutionFailed(ProposalError::NoValidatorWithWeight),
        ProposalStatus::ExecutionFailed(ProposalError::NoValidatorWithWeight),
        ProposalStatus::Passed,
        ProposalStatus::ExecutionFailed(ProposalError::AlreadyValidator),
        ProposalStatus::Passed,
        ProposalStatus::ExecutionFailed(ProposalError::InvalidParameters),
    ];
    for (id, status) in expected.into_iter().enumerate() {
        assert_eq!(status_of(&s, id as u64), status, "proposal {id}");
    }
    assert!(out.events.contains(&Event::ConfigChanged));
    assert_eq!(s.ledger().state().validators.len(), 2);
    let late = s.sign(0, vote(0, VoteChoice::No));
    let out = s.block(2, "a vote after the tally", vec![late]);
    assert_eq!(statuses(&out), vec![failed(TxError::VotingClosed)]);
    s.finish()
}

fn consensus_weights() -> VectorFile {
    let params = Params {
        reputation_per_block: 0,
        ..Params::default()
    };
    let mut s = Scenario::new(
        "consensus_weights",
        "The consensus weight cap and when config_changed fires: validator 2's weight (30 of 60) is capped to 29 from genesis; raising it to 31 changes the stored weight but not the capped configuration (no config_changed); two re-ratings tallied at one height emit one config_changed, where validator 1 (20 of 36) is now the capped one. No reputation from proposing, so only governance moves weights.",
        &[KeyKind::MlDsa44; 3],
        params,
    );
    let rate = |s: &Scenario, i: usize, base: u64| {
        propose(ProposalKind::SetReputation {
            validator: s.validator(i),
            base_reputation: base,
        })
    };
    let capped = |s: &Scenario| -> Vec<u64> {
        s.ledger()
            .target_config()
            .members
            .iter()
            .map(|m| m.weight)
            .collect()
    };
    let by_id = |s: &Scenario, weights: [u64; 3]| -> Vec<u64> {
        let mut pairs: Vec<(ValidatorId, u64)> =
            (0..3).map(|i| (s.validator(i), weights[i])).collect();
        pairs.sort();
        pairs.into_iter().map(|(_, w)| w).collect()
    };
    assert_eq!(capped(&s), by_id(&s, [10, 20, 29]));
    let tx = s.sign(0, rate(&s, 2, 31));
    s.block(0, "proposal 0: validator 2's base to 31", vec![tx]);
    let txs = vec![s.sign(1, rate(&s, 2, 5)), s.sign(2, rate(&s, 0, 11))];
    s.block(
        1,
        "proposals 1 and 2: validator 2's base to 5, validator 0's to 11",
        txs,
    );
    all_vote_yes(&mut s, 0, 0..3, "every member votes yes on all three");
    let out = close_voting_by(&mut s, 1, 0);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    assert_eq!(s.ledger().state().validators[&s.validator(2)].weight, 31);
    assert_eq!(out.config_changed, None, "capped weights unchanged");
    assert_eq!(capped(&s), by_id(&s, [10, 20, 29]));
    let out = close_voting_by(&mut s, 0, 1);
    assert_eq!(status_of(&s, 1), ProposalStatus::Passed);
    assert_eq!(status_of(&s, 2), ProposalStatus::Passed);
    let changes = out
        .events
        .iter()
        .filter(|e| **e == Event::ConfigChanged)
        .count();
    assert_eq!(changes, 1, "once per height");
    assert_eq!(capped(&s), by_id(&s, [11, 15, 5]));
    s.block(2, "validator 2 still proposes with its low weight", vec![]);
    s.finish()
}

fn edge_cases() -> VectorFile {
    let params = Params {
        epoch_blocks: 2,
        reputation_per_block: 1,
        reputation_decay: Ratio::new(1, 2),
        voting_period_blocks: 4,
        unbonding_blocks: u64::MAX,
        ..Params::default()
    };
    let mut s = Scenario::with_bases(
        "edge_cases",
        "Rules no other vector reaches: an unstake whose release height overflows u64 (overflow, fee charged); blocks checking older heights than h-1 and h-2; a Raft configuration entry (membership payload, a no-op to the ledger); and an epoch at which every derived weight would be 0, so the weights stay as they were. Validators' bases are 1, 0 and 0; 2-block epochs, 1 point per block, halved each epoch.",
        &[KeyKind::MlDsa44; 3],
        params,
        [1, 0, 0],
    );
    let tx = s.sign(0, Action::Unstake { amount: Amount(1) });
    let out = s.block(1, "an unstake released at h + 2^64 - 1 overflows", vec![tx]);
    assert_eq!(statuses(&out), vec![failed(TxError::Overflow)]);
    assert_eq!(out.receipts[0].fee, Params::default().fee);
    let tx = s.sign(
        0,
        propose(ProposalKind::SetReputation {
            validator: s.validator(0),
            base_reputation: 0,
        }),
    );
    let out = s.block(
        1,
        "proposal 0: validator 0's base to 0; epoch 1 ends",
        vec![tx],
    );
    assert!(out.config_changed.is_some(), "validator 1 earned weight");
    all_vote_yes(&mut s, 1, 0..1, "every member votes yes");
    s.block_checking(1, 0, "a block checking the genesis root (h-4)", vec![]);
    s.block_checking(1, 2, "a block checking h-3", vec![]);
    let out = s.block(1, "tally: validator 0's weight drops to 0 at once", vec![]);
    assert_eq!(status_of(&s, 0), ProposalStatus::Passed);
    assert!(out.config_changed.is_some());
    let weight = |s: &Scenario, i: usize| s.ledger().state().validators[&s.validator(i)].weight;
    assert_eq!(weight(&s, 0), 0);
    // No blocks from here: validator 1's points halve each epoch until none is whole.
    loop {
        let out = s.noop("a no-op entry: no proposer, no points");
        let earned = s.ledger().state().validators[&s.validator(1)].points_bits >> 64;
        if earned == 0
            && out
                .events
                .iter()
                .any(|e| matches!(e, Event::EpochEnded { .. }))
        {
            break;
        }
    }
    assert!(
        weight(&s, 1) > 0,
        "every weight would be 0: the old ones stay"
    );
    assert_eq!(weight(&s, 0) + weight(&s, 2), 0);
    s.block(1, "validator 1 proposes on its kept weight", vec![]);
    let members: Vec<(ValidatorId, u64, &agora_core::crypto::PublicKey)> = s
        .ledger()
        .target_config()
        .members
        .iter()
        .map(|m| (m.validator, m.weight, &m.public_key))
        .collect();
    let change = final_config_bytes(&members);
    let out = s.membership("last: a Raft configuration entry for the configuration the ledger asks for (agora-node devnet --vector refuses it: a cluster's configuration is its own)", change);
    assert!(out.receipts.is_empty());
    assert!(
        out.events
            .iter()
            .all(|e| matches!(e, Event::EpochEnded { .. })),
        "only what every height does"
    );
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::vectors::{check, Divergence};

    #[test]
    fn a_tampered_vector_is_caught() {
        let mut file = governance_quorum_not_met();
        check(&file).unwrap();
        file.entries[1].expected.state_root = Hash32([1; 32]);
        assert!(matches!(
            check(&file),
            Err(Divergence::Mismatch {
                index: 2,
                what: "state root",
                ..
            })
        ));
        let mut file = governance_quorum_not_met();
        file.entries[0].expected.events.pop();
        assert!(matches!(
            check(&file),
            Err(Divergence::Mismatch {
                index: 1,
                what: "events",
                ..
            })
        ));
        let mut file = governance_quorum_not_met();
        file.genesis.treasury = Amount(1);
        assert!(matches!(check(&file), Err(Divergence::Genesis(_))));
    }
}
