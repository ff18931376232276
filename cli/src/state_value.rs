//! What a proved state value says: its canonical bytes decoded by the type its key names
//! (vectors/README.md §4), for people (a line of text) and programs (JSON).

use crate::format::{ratio, tokens};
use agora_core::state::{Account, Globals, Proposal, Validator, VoteRecord, Witness};
use agora_core::{Amount, Params, PublicKey, StateKey};
use anyhow::{Context, Result};
use borsh::BorshDeserialize;
use serde::Serialize;
use serde_json::{json, Value};

/// Decodes `value` as the type `key` holds; the bytes must be canonical (nothing left over).
pub fn describe(key: &[u8], value: &[u8]) -> Result<(Value, String)> {
    let key = StateKey::try_from_slice(key).context("the proved key is not a state key")?;
    let described = match key {
        StateKey::Globals => {
            let g: Globals = decode(value)?;
            let text = format!(
                "height {}, total supply {}, staked {}, treasury {}, next proposal {}",
                g.height,
                tokens(g.total_supply),
                tokens(g.total_staked),
                tokens(g.treasury),
                g.next_proposal_id
            );
            (to_json(&g), text)
        }
        StateKey::Params => {
            let p: Params = decode(value)?;
            let text = format!(
                "fee {}, proposer reward {}, min deposit {}, unbonding {} blocks, voting {} blocks, epoch {} blocks, quorum {}, threshold {}, veto {}, reputation {}/block and {}/signature decaying to {}, at most {} txs/block",
                tokens(p.fee),
                tokens(p.proposer_reward),
                tokens(p.min_deposit),
                p.unbonding_blocks,
                p.voting_period_blocks,
                p.epoch_blocks,
                ratio(&p.quorum),
                ratio(&p.threshold),
                ratio(&p.veto_threshold),
                p.reputation_per_block,
                p.reputation_per_signature,
                ratio(&p.reputation_decay),
                p.max_block_txs
            );
            (to_json(&p), text)
        }
        StateKey::Account(_) => {
            let a: Account = decode(value)?;
            let text = format!(
                "balance {}, staked {}, unbonding {}, nonce {}",
                tokens(a.balance),
                tokens(a.staked),
                tokens(a.unbonding),
                a.nonce
            );
            (to_json(&a), text)
        }
        StateKey::AccountKey(_) => {
            let k: PublicKey = decode(value)?;
            let text = format!("key {} ({} bytes)", k.kind().name(), value.len() - 1);
            (to_json(&k), text)
        }
        StateKey::Validator(_) => {
            let v: Validator = decode(value)?;
            let earned = v.points_bits >> 64;
            let text = format!(
                "weight {}, base reputation {}, earned points {}, blocks proposed {}, certificates missed in a row {}",
                v.weight, v.base_reputation, earned, v.blocks_proposed, v.missed_certificates
            );
            (to_json(&v), text)
        }
        StateKey::Witness(_) => {
            let w: Witness = decode(value)?;
            let text = format!("witness, weight {}", w.weight);
            (to_json(&w), text)
        }
        StateKey::Proposal(_) => {
            let p: Proposal = decode(value)?;
            let kind = serde_json::to_value(&p.kind).expect("serializes");
            let kind_name = match &kind {
                Value::Object(map) => map.keys().next().cloned().unwrap_or_default(),
                Value::String(name) => name.clone(),
                _ => String::new(),
            };
            let text = format!(
                "proposal {} ({kind_name}) by {}, deposit {}, voting {}..={}, status {}",
                p.id,
                p.proposer,
                tokens(p.deposit),
                p.submit_height,
                p.voting_end_height,
                crate::governance::status_name(&p.status)
            );
            (to_json(&p), text)
        }
        StateKey::Vote(..) => {
            let v: VoteRecord = decode(value)?;
            let choice = serde_json::to_value(v.choice).expect("serializes");
            let weight = v.weight.map_or("counted at the tally".to_string(), |w| {
                format!("weight {}", tokens(w))
            });
            let text = format!("vote {}, {weight}", choice.as_str().unwrap_or_default());
            (to_json(&v), text)
        }
        StateKey::Unbonding(release, _) => {
            let amount: Amount = decode(value)?;
            let text = format!("{} unbonding, released at height {release}", tokens(amount));
            (json!({ "amount": amount, "release_height": release }), text)
        }
        StateKey::Committee => {
            let c: agora_core::Committee = decode(value)?;
            let weights: Vec<String> = c
                .members
                .iter()
                .map(|m| format!("{}…={}", &m.validator.to_string()[..8], m.weight))
                .collect();
            let text = format!(
                "committee since height {}: {} (previous since height {}, {} members)",
                c.since,
                weights.join(", "),
                c.previous_since,
                c.previous.len()
            );
            (to_json(&c), text)
        }
    };
    Ok(described)
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T> {
    borsh::from_slice(bytes).context("the proved value does not decode as its key's type")
}

fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).expect("state values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::{AccountId, Hash32};

    #[test]
    fn an_account_reads_as_balances_and_a_nonce() {
        let key = StateKey::Account(AccountId(Hash32([3; 32]))).to_bytes();
        let account = Account {
            balance: Amount(12_500_000),
            staked: Amount(1_000_000),
            unbonding: Amount(0),
            nonce: 4,
        };
        let (json, text) = describe(&key, &borsh::to_vec(&account).unwrap()).unwrap();
        assert_eq!(json["nonce"], 4);
        assert!(
            text.starts_with("balance ") && text.ends_with("nonce 4"),
            "{text}"
        );
        assert!(text.contains(&tokens(Amount(12_500_000))), "{text}");
    }

    #[test]
    fn bytes_of_another_type_are_refused() {
        let key = StateKey::Account(AccountId(Hash32([3; 32]))).to_bytes();
        assert!(describe(&key, &[1, 2, 3]).is_err());
        let mut long = borsh::to_vec(&Account::default()).unwrap();
        long.push(0);
        assert!(describe(&key, &long).is_err(), "trailing bytes");
        assert!(describe(&[0xff], &[]).is_err(), "not a state key");
    }
}
