//! Scenarios of accounts, fees, staking, reputation and the rules at the edges.

use super::support::*;
use super::*;

pub(super) fn transfers_and_fees() -> VectorFile {
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

pub(super) fn failures() -> VectorFile {
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

pub(super) fn staking_and_unbonding() -> VectorFile {
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

pub(super) fn reputation_epochs() -> VectorFile {
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

pub(super) fn edge_cases() -> VectorFile {
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
