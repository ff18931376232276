//! The ledger: the only code that changes state.
//!
//! [`Ledger::apply`] is a pure function of (state, committed entry): no clock, no
//! randomness, no floats, checked arithmetic, ordered maps. Height is the only clock.
//!
//! Applying is split in two so that the expensive, state-independent work can run ahead
//! of the apply loop: [`Ledger::prepare`] decodes the block, checks its transaction root
//! and proposer signature, and verifies every transaction signature it can; then
//! [`Ledger::apply_prepared`] executes. `apply` does both.

use crate::block::{Block, Entry, EntryPayload};
use crate::certificate::CertificateFault;
use crate::crypto::{PublicKey, Purpose};
use crate::encoding::{Canonical, DecodeError};
use crate::genesis::Genesis;
use crate::hash::Hash32;
use crate::outcome::{
    ConfigMember, Event, Halt, Outcome, ProposalError, Receipt, TargetConfig, TxError, TxStatus,
    TxTrace,
};
use crate::params::MAX_BASE_REPUTATION;
use crate::state::{
    Account, Decision, Proposal, ProposalStatus, Snapshot, State, StateKey, Validator, VoteRecord,
    ROOT_HISTORY_LEN,
};
use crate::state_tree::{StateProof, StateTree};
use crate::tx::{Action, ProposalKind, Sender, SignedTransaction};
use crate::tx_root::{tx_ids, tx_root_of_ids};
use crate::types::{AccountId, Amount, ValidatorId};
use fixed::types::U64F64;
use std::collections::{BTreeMap, BTreeSet};

mod actions;
mod certify;
mod governance;

pub(crate) use certify::derive_config;

/// The largest consensus weight a validator can have (keeps sums of weights in u64).
pub const MAX_VALIDATOR_WEIGHT: u64 = 1 << 32;
const _: () = assert!(MAX_BASE_REPUTATION <= MAX_VALIDATOR_WEIGHT);

/// The replicated ledger.
#[derive(Clone, Debug)]
pub struct Ledger {
    chain_id: Hash32,
    state: State,
    tree: StateTree,
    /// Keys changed since the root was last computed.
    dirty: BTreeSet<StateKey>,
    /// Roots of recent heights, to check blocks' `checked_state_root`.
    recent_roots: BTreeMap<u64, Hash32>,
    /// Open proposals by (voting end height, id): derived from state, not hashed.
    open_by_end: BTreeSet<(u64, u64)>,
    target_config: TargetConfig,
}

/// A transaction decoded and checked ahead of the apply loop.
#[derive(Clone, Debug)]
struct PreparedTx {
    hash: Hash32,
    decoded: Result<SignedTransaction, TxError>,
    /// `Some(ok)` when the signature was checked against the key the apply loop will use.
    signature_ok: Option<bool>,
}

/// What a node worked out about an entry's transactions before it applies: signature
/// verdicts reached at admission or when the entry arrived, keyed by transaction hash and
/// the key checked, named by its account id (`H(agora/account/v1, key)`, which is also the
/// sender's id), and the transactions' ids. An implementation returns only what verifying
/// that transaction under that key returned, and only ids it hashed from that entry's own
/// bytes; `None` makes the ledger verify, or hash.
pub trait SignatureVerdicts {
    /// The verdict for transaction `tx` under the key whose account id is `signer`.
    fn verdict(&self, tx: &Hash32, signer: &AccountId) -> Option<bool>;

    /// The ids of the transactions of the block in the log entry at `index` of `term`, in
    /// block order. An index and a term name one entry (Raft's log matching), so ids
    /// hashed when the block was built or arrived are its ids. They cannot change an
    /// outcome: the block's header commits to its ids through the transaction root, and
    /// ids that do not lead to that root are ignored and the bytes hashed.
    fn tx_ids(&self, _index: u64, _term: u64) -> Option<&[Hash32]> {
        None
    }
}

/// No verdicts: every signature is verified during prepare.
pub struct NoVerdicts;

impl SignatureVerdicts for NoVerdicts {
    fn verdict(&self, _: &Hash32, _: &AccountId) -> Option<bool> {
        None
    }
}

/// An entry whose stateless checks are done; apply it with [`Ledger::apply_prepared`].
#[derive(Clone, Debug)]
pub struct PreparedEntry {
    chain_id: Hash32,
    index: u64,
    block: Option<(Block, Vec<PreparedTx>)>,
}

impl PreparedEntry {
    /// The entry index it was prepared for.
    pub fn index(&self) -> u64 {
        self.index
    }
}

/// How [`Ledger::authorize`] treats a nonce above the account's next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceRule {
    /// Only the account's next nonce (apply: transactions take effect in nonce order).
    Exact,
    /// The next nonce or a later one (admission: earlier nonces may still be pending).
    AtLeast,
}

/// A transaction that [`Ledger::authorize`] let through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The sender's account id.
    pub sender: AccountId,
    /// The sender's account as it stands.
    pub account: Account,
    /// The fee it pays.
    pub fee: Amount,
}

/// State keys and their values as canonical bytes, laid end to end in one buffer (no
/// allocation per key): what a batch of tree updates is made of.
struct EncodedKeys {
    bytes: Vec<u8>,
    /// Per key that holds a value: where its key bytes start, end, and its value ends.
    held: Vec<(usize, usize, usize)>,
    /// Per key that holds nothing: its key bytes.
    vacant: Vec<(usize, usize)>,
}

impl EncodedKeys {
    fn new(state: &State, keys: impl IntoIterator<Item = StateKey>) -> Self {
        let mut encoded = EncodedKeys {
            bytes: Vec::new(),
            held: Vec::new(),
            vacant: Vec::new(),
        };
        for key in keys {
            let start = encoded.bytes.len();
            key.write_bytes(&mut encoded.bytes);
            let key_end = encoded.bytes.len();
            if state.write_value(&key, &mut encoded.bytes) {
                encoded.held.push((start, key_end, encoded.bytes.len()));
            } else {
                encoded.vacant.push((start, key_end));
            }
        }
        encoded
    }

    /// The `(key, value)` pairs of the keys that hold a value.
    fn entries(&self) -> Vec<(&[u8], &[u8])> {
        let bytes = &self.bytes;
        self.held
            .iter()
            .map(|&(start, key_end, end)| (&bytes[start..key_end], &bytes[key_end..end]))
            .collect()
    }

    /// The keys that hold nothing.
    fn vacant(&self) -> impl Iterator<Item = &[u8]> {
        self.vacant
            .iter()
            .map(|&(start, end)| &self.bytes[start..end])
    }
}

impl Ledger {
    /// The ledger at height 0 described by `genesis` (already validated).
    pub fn from_genesis(genesis: &Genesis) -> Ledger {
        let chain_id = genesis.chain_id();
        let state = genesis.initial_state(chain_id);
        Ledger::from_state(chain_id, state, BTreeMap::new())
    }

    fn from_state(chain_id: Hash32, state: State, recent_roots: BTreeMap<u64, Hash32>) -> Ledger {
        let mut tree = StateTree::new();
        let encoded = EncodedKeys::new(&state, state.keys());
        assert!(encoded.vacant.is_empty(), "listed keys hold values");
        tree.insert_many(&encoded.entries());
        let open_by_end = state
            .proposals
            .values()
            .filter(|p| p.status == ProposalStatus::Voting)
            .map(|p| (p.voting_end_height, p.id))
            .collect();
        let mut ledger = Ledger {
            chain_id,
            state,
            tree,
            dirty: BTreeSet::new(),
            recent_roots,
            open_by_end,
            target_config: TargetConfig::default(),
        };
        ledger.target_config = TargetConfig {
            members: ledger.state.committee.members.clone(),
            witnesses: derive_config(&ledger.state.validators, &ledger.state.witnesses).1,
        };
        let root = ledger.tree.root();
        ledger
            .recent_roots
            .insert(ledger.state.globals.height, root);
        ledger
    }

    /// The chain id.
    pub fn chain_id(&self) -> Hash32 {
        self.chain_id
    }

    /// The height of the last applied entry.
    pub fn height(&self) -> u64 {
        self.state.globals.height
    }

    /// The state, read-only.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The nonce `account`'s next transaction must carry (0 for an account not yet
    /// registered).
    pub fn next_nonce(&self, account: &AccountId) -> u64 {
        self.state.accounts.get(account).map_or(0, |a| a.nonce)
    }

    /// The state root at the current height.
    pub fn state_root(&self) -> Hash32 {
        *self
            .recent_roots
            .get(&self.height())
            .expect("the current height's root is always recorded")
    }

    /// The root at a recent height, if still kept.
    pub fn root_at(&self, height: u64) -> Option<Hash32> {
        self.recent_roots.get(&height).copied()
    }

    /// The consensus configuration the state asks for.
    pub fn target_config(&self) -> &TargetConfig {
        &self.target_config
    }

    /// The value at `key` with a proof against [`Ledger::state_root`].
    pub fn prove(&self, key: &StateKey) -> Option<(Vec<u8>, StateProof)> {
        let value = self.state.value_bytes(key)?;
        let proof = self
            .tree
            .prove(&key.to_bytes())
            .expect("state and tree hold the same keys");
        Some((value, proof))
    }

    /// The canonical snapshot of the current state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            chain_id: self.chain_id,
            state: self.state.clone(),
            recent_roots: self.recent_roots.iter().map(|(h, r)| (*h, *r)).collect(),
        }
    }

    /// Restores from canonical snapshot bytes, checking that the rebuilt state has
    /// `expected_root` (the root the snapshot was taken at, from a trusted source such as
    /// the Raft snapshot metadata).
    pub fn restore(bytes: &[u8], expected_root: &Hash32) -> Result<Ledger, RestoreError> {
        let snapshot = Snapshot::from_canonical_bytes(bytes)?;
        // Before anything is derived from the state: the derivations assume its invariants.
        snapshot
            .state
            .check_invariants()
            .map_err(RestoreError::Invariant)?;
        let height = snapshot.state.globals.height;
        let recorded = snapshot
            .recent_roots
            .iter()
            .find(|(h, _)| *h == height)
            .map(|(_, r)| *r);
        let ledger = Ledger::from_state(
            snapshot.chain_id,
            snapshot.state,
            snapshot.recent_roots.into_iter().collect(),
        );
        let actual = ledger.state_root();
        if &actual != expected_root || recorded.is_some_and(|r| r != actual) {
            return Err(RestoreError::RootMismatch {
                expected: *expected_root,
                actual,
            });
        }
        Ok(ledger)
    }

    /// Applies one committed entry. The only function that changes ledger state.
    pub fn apply(&mut self, entry: &Entry) -> Result<Outcome, Halt> {
        let prepared = self.prepare(entry)?;
        self.apply_prepared(prepared)
    }

    /// [`Ledger::apply`], reusing signature verdicts reached earlier (a miss verifies).
    /// Same bytes, same outcome: a verdict is what verifying the same transaction under
    /// the same key returned.
    pub fn apply_with(
        &mut self,
        entry: &Entry,
        verdicts: &dyn SignatureVerdicts,
    ) -> Result<Outcome, Halt> {
        let prepared = self.prepare_with(entry, verdicts)?;
        self.apply_prepared(prepared)
    }

    /// Decodes and checks `entry` without changing state: block decoding, transaction root,
    /// proposer signature, and each transaction's signature where the key is known.
    pub fn prepare(&self, entry: &Entry) -> Result<PreparedEntry, Halt> {
        self.prepare_with(entry, &NoVerdicts)
    }

    /// [`Ledger::prepare`], taking each transaction's signature verdict from `verdicts`
    /// when it has one.
    pub fn prepare_with(
        &self,
        entry: &Entry,
        verdicts: &dyn SignatureVerdicts,
    ) -> Result<PreparedEntry, Halt> {
        let index = entry.index;
        let block = match &entry.payload {
            EntryPayload::Noop | EntryPayload::Membership(_) => None,
            EntryPayload::Block(bytes) => {
                let known_ids = verdicts.tx_ids(index, entry.term);
                Some(self.prepare_block(index, bytes, known_ids, verdicts)?)
            }
        };
        Ok(PreparedEntry {
            chain_id: self.chain_id,
            index,
            block,
        })
    }

    fn prepare_block(
        &self,
        index: u64,
        bytes: &[u8],
        known_ids: Option<&[Hash32]>,
        verdicts: &dyn SignatureVerdicts,
    ) -> Result<(Block, Vec<PreparedTx>), Halt> {
        let invalid = |reason: String| Halt::InvalidBlock { index, reason };
        let block = Block::from_canonical_bytes(bytes).map_err(|error| Halt::CorruptBlock {
            index,
            reason: error.to_string(),
        })?;
        let header = &block.header;
        if header.chain_id != self.chain_id {
            return Err(invalid("block is for another chain".into()));
        }
        if header.height != index {
            return Err(invalid(format!(
                "header height {} differs from the entry index",
                header.height
            )));
        }
        // Each transaction's id (the root's leaf and the receipt both use it): the ids this
        // node already hashed from this entry's bytes when they lead to the header's root,
        // else the bytes hashed here.
        let ids = match known_ids {
            Some(ids) if ids.len() == block.txs.len() && header.tx_root == tx_root_of_ids(ids) => {
                ids.to_vec()
            }
            _ => {
                let ids = tx_ids(&block.txs);
                if header.tx_root != tx_root_of_ids(&ids) {
                    return Err(invalid(
                        "transaction root does not match the transactions".into(),
                    ));
                }
                ids
            }
        };
        let proposer =
            self.state.validators.get(&header.proposer).ok_or_else(|| {
                invalid(format!("proposer {} is not a validator", header.proposer))
            })?;
        let header_bytes = borsh::to_vec(header).expect("in memory");
        proposer
            .public_key
            .verify(Purpose::Block, &header_bytes, &block.signature)
            .map_err(|_| invalid("proposer signature does not verify".into()))?;
        self.check_certificates(&block, verdicts)?;
        let txs = block
            .txs
            .iter()
            .zip(ids)
            .map(|(bytes, hash)| self.prepare_tx(bytes, hash, verdicts))
            .collect();
        Ok((block, txs))
    }

    fn prepare_tx(
        &self,
        bytes: &[u8],
        hash: Hash32,
        verdicts: &dyn SignatureVerdicts,
    ) -> PreparedTx {
        let decoded = SignedTransaction::from_canonical_bytes(bytes)
            .map_err(|_: DecodeError| TxError::Malformed);
        let signature_ok = decoded.as_ref().ok().and_then(|signed| {
            // Registered keys never change, so a check against them now holds at apply.
            // A key registered earlier in this same block is checked during apply.
            let key = self.signer_key(signed)?;
            Some(
                verdicts
                    .verdict(&hash, &signed.tx.sender.account_id())
                    .unwrap_or_else(|| signed.signature_verifies(key)),
            )
        });
        PreparedTx {
            hash,
            decoded,
            signature_ok,
        }
    }

    /// Applies an entry prepared by [`Ledger::prepare`] on this chain.
    pub fn apply_prepared(&mut self, prepared: PreparedEntry) -> Result<Outcome, Halt> {
        let height = self.height();
        if prepared.chain_id != self.chain_id {
            return Err(Halt::PreparedMismatch {
                prepared: prepared.index,
                height,
            });
        }
        let expected = height.checked_add(1).expect("heights never reach u64::MAX");
        if prepared.index != expected {
            return Err(Halt::OutOfOrder {
                height,
                got: prepared.index,
            });
        }
        let mut events = Vec::new();
        let mut receipts = Vec::new();
        let mut traces = Vec::new();
        if let Some((block, txs)) = prepared.block {
            self.check_block_position(&block)?;
            self.set_height(expected);
            for tx in txs {
                let before = events.len();
                let sender = tx.decoded.as_ref().ok().map(|s| s.tx.sender.account_id());
                receipts.push(self.apply_tx(tx, &mut events));
                let emitted = u32::try_from(events.len() - before)
                    .expect("a transaction emits a handful of events");
                traces.push(TxTrace {
                    sender,
                    events: emitted,
                });
            }
            self.reward_proposer(&block.header.proposer, &mut events);
            self.credit_certificates(&block.certificates, &mut events);
            self.state.globals.last_block_hash = block.header.hash();
        } else {
            self.set_height(expected);
        }
        self.end_height(&mut events);
        let config_changed = self.refresh_target_config(&mut events);
        let state_root = self.commit_root();
        Ok(Outcome {
            height: expected,
            state_root,
            receipts,
            events,
            traces,
            config_changed,
        })
    }

    fn check_block_position(&self, block: &Block) -> Result<(), Halt> {
        let header = &block.header;
        let index = header.height;
        if header.parent_hash != self.state.globals.last_block_hash {
            return Err(Halt::InvalidBlock {
                index,
                reason: "parent hash is not the last block's hash".into(),
            });
        }
        if header.checked_height >= index {
            return Err(Halt::InvalidBlock {
                index,
                reason: format!(
                    "checked height {} is not below the block",
                    header.checked_height
                ),
            });
        }
        let ours = self
            .recent_roots
            .get(&header.checked_height)
            .ok_or_else(|| Halt::InvalidBlock {
                index,
                reason: format!(
                    "checked height {} is older than the {ROOT_HISTORY_LEN} roots kept",
                    header.checked_height
                ),
            })?;
        if ours != &header.checked_state_root {
            return Err(Halt::StateDivergence {
                height: header.checked_height,
                ours: *ours,
                theirs: header.checked_state_root,
            });
        }
        let max_txs = self.state.params.max_block_txs as usize;
        if block.txs.len() > max_txs {
            return Err(Halt::InvalidBlock {
                index,
                reason: format!(
                    "{} transactions exceed max_block_txs {max_txs}",
                    block.txs.len()
                ),
            });
        }
        Ok(())
    }

    fn set_height(&mut self, height: u64) {
        assert!(
            height > self.state.globals.height,
            "height only moves forward"
        );
        self.state.globals.height = height;
        self.dirty.insert(StateKey::Globals);
    }

    fn commit_root(&mut self) -> Hash32 {
        let encoded = EncodedKeys::new(&self.state, std::mem::take(&mut self.dirty));
        for key in encoded.vacant() {
            self.tree.remove(key);
        }
        self.tree.insert_many(&encoded.entries());
        let root = self.tree.root();
        let height = self.height();
        self.recent_roots.insert(height, root);
        while self.recent_roots.len() as u64 > ROOT_HISTORY_LEN {
            self.recent_roots.pop_first();
        }
        root
    }

    // ---- transactions ------------------------------------------------------------------

    fn apply_tx(&mut self, tx: PreparedTx, events: &mut Vec<Event>) -> Receipt {
        let (status, fee) = match self.charge_and_execute(&tx, events) {
            Ok(fee) => (TxStatus::Applied, fee),
            Err((error, fee)) => (TxStatus::Failed(error), fee),
        };
        Receipt {
            tx_hash: tx.hash,
            status,
            fee,
        }
    }

    /// Checks authorization and charges the fee; then runs the action. On failure returns
    /// the error and the fee that was charged (zero if authorization failed).
    fn charge_and_execute(
        &mut self,
        tx: &PreparedTx,
        events: &mut Vec<Event>,
    ) -> Result<Amount, (TxError, Amount)> {
        let unpaid = |error| (error, Amount::ZERO);
        let signed = tx.decoded.as_ref().map_err(|e| unpaid(e.clone()))?;
        let body = &signed.tx;
        let Authorization {
            sender,
            account,
            fee,
        } = self
            .authorize(signed, tx.signature_ok, NonceRule::Exact)
            .map_err(unpaid)?;
        let balance = account
            .balance
            .checked_sub(fee)
            .expect("authorize checked the balance covers the fee");
        // Authorized: from here on the fee is charged and the nonce used, whatever the action does.
        let treasury = self
            .state
            .globals
            .treasury
            .checked_add(fee)
            .expect("fees are part of the supply");
        self.state.globals.treasury = treasury;
        self.dirty.insert(StateKey::Globals);
        if let Sender::Register(key) = &body.sender {
            self.state.account_keys.insert(sender, key.clone());
            self.dirty.insert(StateKey::AccountKey(sender));
            events.push(Event::KeyRegistered { account: sender });
        }
        self.put_account(
            sender,
            Account {
                balance,
                nonce: account.nonce + 1,
                ..account
            },
        );
        self.execute(sender, &body.action, events)
            .map(|()| fee)
            .map_err(|error| (error, fee))
    }

    /// The rules that decide whether `signed` may take effect on the current state: its
    /// chain, its sender's key (registered, or carried by the first transaction), its
    /// signature, its nonce and the fee. [`Ledger::apply`] runs them with
    /// [`NonceRule::Exact`] on every transaction; a node's admission runs them with
    /// [`NonceRule::AtLeast`] before it queues one, so the two can never drift apart.
    ///
    /// `signature_ok` is a verdict reached earlier on the same bytes under the same key
    /// (see [`Ledger::prepare`]); `None` verifies here.
    pub fn authorize(
        &self,
        signed: &SignedTransaction,
        signature_ok: Option<bool>,
        nonce_rule: NonceRule,
    ) -> Result<Authorization, TxError> {
        let body = &signed.tx;
        if body.chain_id != self.chain_id {
            return Err(TxError::WrongChainId);
        }
        let sender = body.sender.account_id();
        let registered = self.state.account_keys.get(&sender);
        let key: &PublicKey = match (&body.sender, registered) {
            (Sender::Register(_), Some(_)) => return Err(TxError::KeyAlreadyRegistered),
            (Sender::Register(key), None) => key,
            (Sender::Account(_), Some(key)) => key,
            (Sender::Account(_), None) => return Err(TxError::UnknownAccount),
        };
        let signature_ok = signature_ok.unwrap_or_else(|| signed.signature_verifies(key));
        if !signature_ok {
            return Err(TxError::BadSignature);
        }
        let account = self.account(&sender);
        if body.nonce < account.nonce {
            return Err(TxError::ReplayedNonce {
                expected: account.nonce,
                got: body.nonce,
            });
        }
        if body.nonce > account.nonce && nonce_rule == NonceRule::Exact {
            return Err(TxError::SkippedNonce {
                expected: account.nonce,
                got: body.nonce,
            });
        }
        let fee = self.state.params.fee;
        if account.balance < fee {
            return Err(TxError::InsufficientFundsForFee);
        }
        Ok(Authorization {
            sender,
            account,
            fee,
        })
    }

    /// The key `signed`'s signature must verify under, when it is known now: the key it
    /// registers, or its sender's registered key (which never changes once registered).
    pub fn signer_key<'a>(&'a self, signed: &'a SignedTransaction) -> Option<&'a PublicKey> {
        match &signed.tx.sender {
            Sender::Register(key) => Some(key),
            Sender::Account(id) => self.state.account_keys.get(id),
        }
    }

    fn account(&self, id: &AccountId) -> Account {
        self.state.accounts.get(id).cloned().unwrap_or_default()
    }

    fn put_account(&mut self, id: AccountId, account: Account) {
        self.state.accounts.insert(id, account);
        self.dirty.insert(StateKey::Account(id));
    }

    fn credit(&mut self, id: AccountId, amount: Amount) -> Result<(), TxError> {
        let mut account = self.account(&id);
        account.balance = account
            .balance
            .checked_add(amount)
            .ok_or(TxError::Overflow)?;
        self.put_account(id, account);
        Ok(())
    }

    // ---- per block and per height ------------------------------------------------------

    fn reward_proposer(&mut self, proposer: &ValidatorId, events: &mut Vec<Event>) {
        let reward = self.state.params.proposer_reward;
        let per_block = U64F64::from_num(self.state.params.reputation_per_block);
        let validator = self
            .state
            .validators
            .get_mut(proposer)
            .expect("checked in prepare");
        let points = U64F64::from_bits(validator.points_bits);
        // Saturate rather than wrap: a validator that has earned 2^64 points stays there.
        validator.points_bits = points
            .checked_add(per_block)
            .unwrap_or(U64F64::MAX)
            .to_bits();
        validator.blocks_proposed = validator.blocks_proposed.saturating_add(1);
        self.dirty.insert(StateKey::Validator(*proposer));
        if reward.is_zero() {
            return;
        }
        let supply = self.state.globals.total_supply.checked_add(reward);
        let credited = self.account(proposer).balance.checked_add(reward);
        if let (Some(supply), Some(_)) = (supply, credited) {
            self.state.globals.total_supply = supply;
            self.credit(*proposer, reward).expect("checked above");
            events.push(Event::ProposerRewarded {
                validator: *proposer,
                amount: reward,
            });
        }
    }

    fn end_height(&mut self, events: &mut Vec<Event>) {
        let height = self.height();
        self.release_unbonding(height, events);
        while let Some(&(end, id)) = self.open_by_end.first() {
            if end > height {
                break;
            }
            self.open_by_end.pop_first();
            self.tally(id, events);
        }
        let epoch_blocks = self.state.params.epoch_blocks;
        if height.is_multiple_of(epoch_blocks) {
            self.end_epoch(height / epoch_blocks, events);
        }
    }

    fn release_unbonding(&mut self, height: u64, events: &mut Vec<Event>) {
        let due: Vec<(u64, AccountId)> = self
            .state
            .unbonding
            .range(..=(height, AccountId(Hash32([0xff; 32]))))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let amount = self.state.unbonding.remove(&key).expect("listed above");
            self.dirty.insert(StateKey::Unbonding(key.0, key.1));
            let mut account = self.account(&key.1);
            account.unbonding = account
                .unbonding
                .checked_sub(amount)
                .expect("queue and account agree");
            account.balance = account
                .balance
                .checked_add(amount)
                .expect("within the supply");
            self.put_account(key.1, account);
            events.push(Event::Unbonded {
                account: key.1,
                amount,
            });
        }
    }

    /// Decays earned points and derives weights again. If that would leave no validator
    /// with weight (every base zero and points decayed away), the old weights stay.
    fn end_epoch(&mut self, epoch: u64, events: &mut Vec<Event>) {
        let decay = self.state.params.reputation_decay;
        let keep = U64F64::from_num(decay.numerator)
            .checked_div(U64F64::from_num(decay.denominator))
            .expect("validated: 0 < denominator and numerator <= denominator");
        let mut next: BTreeMap<ValidatorId, (u128, u64)> = BTreeMap::new();
        for (id, validator) in &self.state.validators {
            // Multiplying by a factor in [0, 1] cannot overflow.
            let points = U64F64::from_bits(validator.points_bits)
                .checked_mul(keep)
                .expect("factor <= 1");
            next.insert(
                *id,
                (
                    points.to_bits(),
                    derive_weight(validator.base_reputation, points.to_bits()),
                ),
            );
        }
        let keep_weights = next.values().all(|(_, weight)| *weight == 0);
        for (id, (points_bits, weight)) in next {
            let validator = self.state.validators.get_mut(&id).expect("listed above");
            validator.points_bits = points_bits;
            if !keep_weights {
                validator.weight = weight;
            }
            self.dirty.insert(StateKey::Validator(id));
        }
        events.push(Event::EpochEnded { epoch });
    }
}

/// The consensus weights (Raft's) from the validators' reputation weights: the same,
/// except that with three or more voters none may hold half the total or more, so that
/// losing any single validator leaves a weighted quorum. (Reputation now comes from
/// service, signing certificates as well as proposing, so an available follower keeps up
/// with the leader; the cap remains for a governance-set base, a parameter change that
/// favours proposing, or followers that stop signing: vectors/README.md §5.) At most one
/// validator can reach half; it is lowered to one less than the others' sum.
pub fn consensus_weights(weights: &[u64]) -> Vec<u64> {
    let mut weights = weights.to_vec();
    let voters = weights.iter().filter(|w| **w > 0).count();
    // In u128: no count of u64 weights a state can hold overflows it.
    let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if voters >= 3 {
        if let Some(heaviest) = weights
            .iter_mut()
            .find(|w| u128::from(**w) >= total - u128::from(**w))
        {
            // The others' sum is at most this weight, so it fits in u64; with three or
            // more voters it is at least 2.
            let others = total - u128::from(*heaviest);
            *heaviest = u64::try_from(others - 1).expect("below a u64 weight");
        }
    }
    weights
}

/// Consensus weight from reputation: base plus whole earned points, capped.
pub fn derive_weight(base_reputation: u64, points_bits: u128) -> u64 {
    let earned: u64 = U64F64::from_bits(points_bits).to_num::<u64>();
    base_reputation
        .saturating_add(earned)
        .min(MAX_VALIDATOR_WEIGHT)
}

fn positive(amount: Amount) -> Result<(), TxError> {
    if amount.is_zero() {
        Err(TxError::ZeroAmount)
    } else {
        Ok(())
    }
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The bytes are not a canonical snapshot.
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// The rebuilt state's root differs from the one expected.
    #[error("snapshot state root is {actual}, expected {expected}; the snapshot is corrupt or from another chain")]
    RootMismatch {
        /// The root it should have.
        expected: Hash32,
        /// The root it has.
        actual: Hash32,
    },
    /// The snapshot's state breaks an invariant.
    #[error("snapshot state is inconsistent: {0}")]
    Invariant(String),
}

#[cfg(test)]
mod tests;
