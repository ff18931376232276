//! Genesis: the initial state, read from JSON. The chain id is the hash of its canonical
//! bytes, so two nodes with different genesis files can never talk about the same chain.

use crate::crypto::PublicKey;
use crate::hash::{tagged_hash, tags, Hash32};
use crate::ledger::derive_weight;
use crate::params::{Params, ParamsError, MAX_BASE_REPUTATION};
use crate::state::{Account, Globals, State, Validator, Witness};
use crate::tx::MAX_PEER_BYTES;
use crate::types::{AccountId, Amount, ChainId, ValidatorId};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// A funded account at genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GenesisAccount {
    /// The account id (`agora keys show` prints it).
    pub account: AccountId,
    /// Spendable tokens.
    pub balance: Amount,
    /// Staked tokens.
    #[serde(default)]
    pub staked: Amount,
}

/// A validator at genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// Its ML-DSA validator key.
    pub public_key: PublicKey,
    /// Its network identity (libp2p peer id bytes, hex).
    #[serde(with = "crate::block::hex_bytes", default)]
    pub peer: Vec<u8>,
    /// Its base reputation.
    pub base_reputation: u64,
}

/// A witness at genesis: votes and keeps the log, does not execute the ledger.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GenesisWitness {
    /// Its ML-DSA key (votes are signed with it).
    pub public_key: PublicKey,
    /// Its network identity (libp2p peer id bytes, hex).
    #[serde(with = "crate::block::hex_bytes", default)]
    pub peer: Vec<u8>,
    /// Its consensus weight, fixed.
    pub weight: u64,
}

/// The genesis file.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Genesis {
    /// A human name; part of the chain id.
    pub chain_name: String,
    /// Initial parameters.
    #[serde(default)]
    pub params: Params,
    /// Funded accounts.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Validators.
    pub validators: Vec<GenesisValidator>,
    /// Initial treasury.
    #[serde(default)]
    pub treasury: Amount,
    /// Witnesses. Hashed into the chain id after everything else, and only when there
    /// are some: a genesis without witnesses keeps the chain id it had before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[borsh(skip)]
    pub witnesses: Vec<GenesisWitness>,
}

/// Why a genesis is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// Not valid JSON for a genesis.
    #[error("genesis JSON: {0}")]
    Json(String),
    /// Bad parameters.
    #[error("genesis params: {0}")]
    Params(#[from] ParamsError),
    /// No validators, or none with weight.
    #[error("genesis needs at least one validator with a base reputation above zero")]
    NoValidators,
    /// The same account or validator twice.
    #[error("genesis lists {0} twice")]
    Duplicate(String),
    /// A value out of range.
    #[error("genesis: {0}")]
    Invalid(String),
}

/// A peer id of at most [`MAX_PEER_BYTES`].
fn check_peer(peer: &[u8]) -> Result<(), GenesisError> {
    if peer.len() > MAX_PEER_BYTES {
        return Err(GenesisError::Invalid(format!(
            "peer id longer than {MAX_PEER_BYTES} bytes"
        )));
    }
    Ok(())
}

impl Genesis {
    /// Parses and validates a genesis JSON document, putting it in canonical order.
    pub fn from_json(text: &str) -> Result<Genesis, GenesisError> {
        let genesis: Genesis =
            serde_json::from_str(text).map_err(|e| GenesisError::Json(e.to_string()))?;
        genesis.normalized()
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis serializes")
    }

    /// Sorts accounts and validators by id and validates the whole.
    pub fn normalized(mut self) -> Result<Genesis, GenesisError> {
        self.params.validate()?;
        self.accounts.sort_by_key(|a| a.account);
        self.validators
            .sort_by_key(|v| ValidatorId::from_public_key(&v.public_key));
        if let Some(pair) = self
            .accounts
            .windows(2)
            .find(|p| p[0].account == p[1].account)
        {
            return Err(GenesisError::Duplicate(format!(
                "account {}",
                pair[0].account
            )));
        }
        let ids: Vec<ValidatorId> = self
            .validators
            .iter()
            .map(|v| ValidatorId::from_public_key(&v.public_key))
            .collect();
        if let Some(pair) = ids.windows(2).find(|p| p[0] == p[1]) {
            return Err(GenesisError::Duplicate(format!("validator {}", pair[0])));
        }
        for validator in &self.validators {
            if validator.base_reputation > MAX_BASE_REPUTATION {
                return Err(GenesisError::Invalid(format!(
                    "base reputation above {MAX_BASE_REPUTATION}"
                )));
            }
            check_peer(&validator.peer)?;
        }
        self.witnesses
            .sort_by_key(|w| ValidatorId::from_public_key(&w.public_key));
        let witness_ids: Vec<ValidatorId> = self
            .witnesses
            .iter()
            .map(|w| ValidatorId::from_public_key(&w.public_key))
            .collect();
        if let Some(pair) = witness_ids.windows(2).find(|p| p[0] == p[1]) {
            return Err(GenesisError::Duplicate(format!("witness {}", pair[0])));
        }
        if let Some(both) = witness_ids.iter().find(|id| ids.contains(id)) {
            return Err(GenesisError::Invalid(format!(
                "{both} is both a validator and a witness"
            )));
        }
        for witness in &self.witnesses {
            if witness.weight == 0 || witness.weight > crate::ledger::MAX_VALIDATOR_WEIGHT {
                return Err(GenesisError::Invalid(format!(
                    "witness weight must be 1 to {}",
                    crate::ledger::MAX_VALIDATOR_WEIGHT
                )));
            }
            check_peer(&witness.peer)?;
        }
        if !self.validators.iter().any(|v| v.base_reputation > 0) {
            return Err(GenesisError::NoValidators);
        }
        self.total_supply()?;
        Ok(self)
    }

    fn total_supply(&self) -> Result<Amount, GenesisError> {
        let overflow = || GenesisError::Invalid("total supply overflows u128".into());
        let mut supply = self.treasury;
        for account in &self.accounts {
            supply = supply
                .checked_add(account.balance)
                .and_then(|s| s.checked_add(account.staked))
                .ok_or_else(overflow)?;
        }
        Ok(supply)
    }

    /// The chain id: the tagged hash of the canonical genesis bytes.
    pub fn chain_id(&self) -> ChainId {
        let body = borsh::to_vec(self).expect("in memory");
        if self.witnesses.is_empty() {
            tagged_hash(tags::GENESIS, &[&body])
        } else {
            let witnesses = borsh::to_vec(&self.witnesses).expect("in memory");
            tagged_hash(tags::GENESIS, &[&body, &witnesses])
        }
    }

    /// The state at height 0.
    pub(crate) fn initial_state(&self, chain_id: Hash32) -> State {
        let mut state = State {
            params: self.params.clone(),
            ..State::default()
        };
        let mut total_staked = Amount::ZERO;
        for funded in &self.accounts {
            state.accounts.insert(
                funded.account,
                Account {
                    balance: funded.balance,
                    staked: funded.staked,
                    ..Account::default()
                },
            );
            total_staked = total_staked
                .checked_add(funded.staked)
                .expect("bounded by the supply");
        }
        for validator in &self.validators {
            state.validators.insert(
                ValidatorId::from_public_key(&validator.public_key),
                Validator {
                    public_key: validator.public_key.clone(),
                    peer: validator.peer.clone(),
                    base_reputation: validator.base_reputation,
                    points_bits: 0,
                    blocks_proposed: 0,
                    weight: derive_weight(validator.base_reputation, 0),
                    missed_certificates: 0,
                },
            );
        }
        for witness in &self.witnesses {
            state.witnesses.insert(
                ValidatorId::from_public_key(&witness.public_key),
                Witness {
                    public_key: witness.public_key.clone(),
                    peer: witness.peer.clone(),
                    weight: witness.weight,
                },
            );
        }
        state.globals = Globals {
            height: 0,
            last_block_hash: chain_id,
            total_supply: self.total_supply().expect("validated"),
            total_staked,
            treasury: self.treasury,
            next_proposal_id: 0,
            certified_height: 0,
        };
        state.committee = crate::certificate::Committee {
            members: crate::ledger::derive_config(&state.validators, &state.witnesses).0,
            ..Default::default()
        };
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyKind, SecretKey};

    fn sample() -> Genesis {
        let key = SecretKey::from_seed(KeyKind::MlDsa44, [1; 32]);
        Genesis {
            chain_name: "test".into(),
            params: Params::default(),
            accounts: vec![
                GenesisAccount {
                    account: AccountId(Hash32([2; 32])),
                    balance: Amount(5),
                    staked: Amount(1),
                },
                GenesisAccount {
                    account: AccountId(Hash32([1; 32])),
                    balance: Amount(7),
                    staked: Amount::ZERO,
                },
            ],
            validators: vec![GenesisValidator {
                public_key: key.public_key().clone(),
                peer: vec![1, 2],
                base_reputation: 3,
            }],
            treasury: Amount(100),
            witnesses: vec![],
        }
    }

    #[test]
    fn json_round_trip_normalizes_order_and_fixes_the_chain_id() {
        let genesis = sample().normalized().unwrap();
        assert_eq!(
            genesis.accounts[0].account,
            AccountId(Hash32([1; 32])),
            "sorted by id"
        );
        let parsed = Genesis::from_json(&sample().to_json()).unwrap();
        assert_eq!(parsed, genesis);
        assert_eq!(parsed.chain_id(), genesis.chain_id());
        let mut renamed = genesis.clone();
        renamed.chain_name = "other".into();
        assert_ne!(renamed.chain_id(), genesis.chain_id());
        let state = genesis.initial_state(genesis.chain_id());
        assert_eq!(state.globals.total_supply, Amount(113));
        assert_eq!(state.globals.total_staked, Amount(1));
        state.check_invariants().unwrap();
    }

    #[test]
    fn bad_genesis_files_are_refused_with_the_reason() {
        let mut duplicate = sample();
        duplicate.accounts[1].account = duplicate.accounts[0].account;
        assert!(matches!(
            duplicate.normalized(),
            Err(GenesisError::Duplicate(_))
        ));
        let mut powerless = sample();
        powerless.validators[0].base_reputation = 0;
        assert_eq!(powerless.normalized(), Err(GenesisError::NoValidators));
        let mut bad_params = sample();
        bad_params.params.epoch_blocks = 0;
        assert!(matches!(
            bad_params.normalized(),
            Err(GenesisError::Params(_))
        ));
        let mut overflow = sample();
        overflow.treasury = Amount(u128::MAX);
        assert!(matches!(
            overflow.normalized(),
            Err(GenesisError::Invalid(_))
        ));
        assert!(matches!(
            Genesis::from_json("{\"chain_name\": 5}"),
            Err(GenesisError::Json(_))
        ));
        let text = sample()
            .to_json()
            .replace("\"balance\": \"5\"", "\"balance\": 5");
        assert!(
            matches!(Genesis::from_json(&text), Err(GenesisError::Json(_))),
            "amounts are strings"
        );
    }
}
