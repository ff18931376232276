//! The simulated clients: accounts that submit transfers to random nodes and wait for the
//! commit, and linearizable reads. What a node answers them is what the checkers judge.

use super::world::{fail, Input, World, GOVERNOR};
use crate::raft::NodeId;
use crate::replica::{Answer, Query, Request, RequestId};
use crate::sim::checker::Violation;
use crate::storage::memory::MemoryStore;
use agora_api::{ApiError, Consistency, SubmitStatus};
use agora_core::encoding::Canonical;
use agora_core::outcome::TxStatus;
use agora_core::state::ProposalStatus;
use agora_core::tx::{tx_hash, Action, Sender, Transaction, VoteChoice};
use agora_core::{AccountId, Amount, Hash32, Ledger, Params};
use rand::Rng;
use std::collections::BTreeMap;

/// What a submitted transaction does, for what the client does next.
#[derive(Clone, Copy)]
pub(super) enum Purpose {
    Transfer,
    Propose,
    Vote,
}

/// What a client asked and is waiting for.
pub(super) enum Outstanding {
    Submit {
        client: usize,
        tx_hash: Hash32,
        purpose: Purpose,
        bytes: Vec<u8>,
        /// The tick it was sent.
        sent_at: u64,
    },
    Replay {
        client: usize,
    },
    Read {
        /// The highest height acknowledged to any client before the read began.
        acknowledged_before: u64,
    },
}

impl World {
    /// Node `i` crashed: its clients see the connection drop and are free to try
    /// elsewhere.
    pub(super) fn drop_requests_to(&mut self, i: usize) {
        let (lost, kept): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.outstanding)
            .into_iter()
            .partition(|(_, (node, _))| *node == i);
        self.outstanding = kept;
        for (_, (_, outstanding)) in lost {
            if let Outstanding::Submit { client, .. } | Outstanding::Replay { client } = outstanding
            {
                self.busy_clients[client] = false;
            }
        }
    }

    pub(super) fn clients(&mut self) {
        if !self.busy_clients[GOVERNOR] {
            if let Some(action) = self.governance_due() {
                let i = self.full_node();
                let purpose = match action {
                    Action::Vote { .. } => Purpose::Vote,
                    _ => Purpose::Propose,
                };
                self.submit_action(GOVERNOR, i, action, purpose);
            }
        }
        if self.rng.random_range(0..4) == 0 {
            let client = self.rng.random_range(0..self.clients.len());
            let i = self.full_node();
            if !self.busy_clients[client] {
                self.submit(client, i);
            }
        }
        if self.rng.random_range(0..10) == 0 && self.random_reads {
            let i = self.full_node();
            self.read(i);
        }
    }

    /// A node drawn for a client's request: any but a witness (the next one after it).
    fn full_node(&mut self) -> usize {
        let count = self.nodes.len();
        let mut i = self.rng.random_range(0..count);
        while self.nodes[i].witness {
            i = (i + 1) % count;
        }
        i
    }

    fn next_request(&mut self) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    /// The governor's next transaction, if one is due: the vote it owes, or the next
    /// planned proposal.
    fn governance_due(&self) -> Option<Action> {
        if let Some(proposal) = self.governance.vote_due {
            return Some(Action::Vote {
                proposal,
                choice: VoteChoice::Yes,
            });
        }
        let (at, kind) = self.governance.plan.front()?;
        (self.now >= *at).then(|| Action::Propose {
            proposal: kind.clone(),
            deposit: Params::default().min_deposit,
        })
    }

    /// Client `client` sends a transfer to node `i` (or, on a replay cluster, a no-op).
    pub(super) fn submit(&mut self, client: usize, i: usize) {
        let Some(replica) = self.nodes[i].replica.as_ref() else {
            return;
        };
        if !self.opts.election_noop {
            // A replay cluster takes no transactions: the client appends a no-op at the
            // node's next index, as `agora vectors check --node` appends a vector's.
            let entry = agora_core::block::Entry {
                index: replica.raft().last_index() + 1,
                term: 0,
                payload: agora_core::block::EntryPayload::Noop,
            };
            let id = self.next_request();
            self.outstanding
                .insert(id, (i, Outstanding::Replay { client }));
            self.busy_clients[client] = true;
            self.input(i, Input::Request(id, Request::Replay { entry }));
            return;
        }
        let to = AccountId(Hash32([self.rng.random_range(1..=16); 32]));
        let transfer = Action::Transfer {
            to,
            amount: Amount(1),
        };
        self.submit_action(client, i, transfer, Purpose::Transfer);
    }

    /// Client `client` signs `action` with the nonce node `i` believes is next and submits
    /// it there, waiting for the commit.
    fn submit_action(&mut self, client: usize, i: usize, action: Action, purpose: Purpose) {
        let Some(replica) = self.nodes[i].replica.as_ref() else {
            return;
        };
        let randomness: [u8; 32] = self.rng.random();
        let bytes = self.sign(client, replica.ledger(), action, randomness);
        let id = self.next_request();
        self.outstanding.insert(
            id,
            (
                i,
                Outstanding::Submit {
                    client,
                    tx_hash: tx_hash(&bytes),
                    purpose,
                    bytes: bytes.clone(),
                    sent_at: self.now,
                },
            ),
        );
        self.busy_clients[client] = true;
        self.checker.on_sent(tx_hash(&bytes));
        self.input(i, Input::Request(id, Request::Submit { bytes, wait: true }));
    }

    fn sign(
        &self,
        client: usize,
        ledger: &Ledger,
        action: Action,
        randomness: [u8; 32],
    ) -> Vec<u8> {
        let key = &self.clients[client];
        let id = AccountId::from_public_key(key.public_key());
        let state = ledger.state();
        let sender = if state.account_keys.contains_key(&id) {
            Sender::Account(id)
        } else {
            Sender::Register(key.public_key().clone())
        };
        let nonce = state.accounts.get(&id).map_or(0, |a| a.nonce);
        Transaction {
            chain_id: ledger.chain_id(),
            sender,
            nonce,
            action,
        }
        .sign(key, randomness)
        .to_canonical_bytes()
    }

    /// A linearizable read of client 0's account at node `i`; its request id.
    pub(super) fn read(&mut self, i: usize) -> Option<RequestId> {
        self.nodes[i].replica.as_ref()?;
        let id = self.next_request();
        let acknowledged_before = self.checker.highest_acknowledged();
        self.outstanding.insert(
            id,
            (
                i,
                Outstanding::Read {
                    acknowledged_before,
                },
            ),
        );
        let account = AccountId::from_public_key(self.clients[0].public_key());
        let request = Request::Query {
            query: Query::Account(account),
            consistency: Consistency::Linearizable,
        };
        self.input(i, Input::Request(id, request));
        Some(id)
    }

    /// A node answered a client: the checkers look at what it promised.
    pub(super) fn on_reply(
        &mut self,
        i: usize,
        request: RequestId,
        result: Result<Answer, ApiError>,
    ) -> Result<(), Violation> {
        let Some((_, outstanding)) = self.outstanding.remove(&request) else {
            // A forwarded transaction's answer: the node that received it only logs it.
            return Ok(());
        };
        let id = self.nodes[i].id;
        match (outstanding, result) {
            (
                Outstanding::Submit {
                    client,
                    tx_hash,
                    purpose,
                    ..
                },
                Ok(Answer::Submitted(submitted)),
            ) => {
                self.busy_clients[client] = false;
                if submitted.status != SubmitStatus::Committed {
                    return Err(fail(
                        "a waiting client is answered with the commit",
                        format!("{id:?} answered {submitted:?}"),
                    ));
                }
                let height = submitted.height.unwrap_or(0);
                let receipt = submitted
                    .receipt
                    .unwrap_or_else(|| panic!("a committed answer carries its receipt ({id:?})"));
                if receipt.tx_hash != tx_hash {
                    return Err(fail(
                        "receipts given to clients are the committed ones",
                        format!("{id:?} answered a submission with another transaction's receipt"),
                    ));
                }
                self.checker.on_acknowledge_tx(id, height, &receipt)?;
                self.acknowledged(id, height)?;
                let applied = receipt.status == TxStatus::Applied;
                self.governance_progress(i, purpose, applied);
            }
            (
                Outstanding::Submit {
                    client, sent_at, ..
                },
                Err(error),
            ) if error.code == "commit_timeout" => {
                self.busy_clients[client] = false;
                // A node gives up on a commit only after a long wait. Once the cluster has
                // healed, every node that can still be reached is a member that hears the
                // leader (a node voted out while cut off refuses new submissions: it knows
                // no leader), so a submission made since must commit in time.
                if self.healed_at.is_some_and(|healed| sent_at >= healed) {
                    return Err(fail(
                        "once the cluster heals, every waiting client is answered with the commit",
                        format!("{id:?} answered {error:?} to a submission made at tick {sent_at}, after healing"),
                    ));
                }
                self.report.commit_timeouts += 1;
            }
            (Outstanding::Submit { client, .. }, Err(error)) if error.code == "not_a_member" => {
                self.busy_clients[client] = false;
                // Only a node that a committed configuration left out may say so.
                let raft = self.nodes[i].replica.as_ref().expect("it answered").raft();
                if raft.membership_at(raft.commit_index()).contains(&id) {
                    return Err(fail(
                        "only a node voted out answers that it is not a member",
                        format!(
                            "{id:?} answered {error:?} while its committed configuration holds it"
                        ),
                    ));
                }
                self.report.voted_out_answers += 1;
            }
            (Outstanding::Submit { client, .. }, _) => self.busy_clients[client] = false,
            (Outstanding::Replay { client }, Ok(Answer::Replayed(replayed))) => {
                self.busy_clients[client] = false;
                self.acknowledged(id, replayed.index)?;
            }
            (Outstanding::Replay { client }, _) => self.busy_clients[client] = false,
            (
                Outstanding::Read {
                    acknowledged_before,
                },
                Ok(Answer::Account(account)),
            ) => {
                self.checker
                    .on_read_served(id, account.at.height, acknowledged_before)?;
                self.report.reads_served += 1;
            }
            (Outstanding::Read { .. }, _) => {}
        }
        Ok(())
    }

    /// Node `id` told a client that height `height` committed: it must be durable on a
    /// quorum of the configuration that committed it.
    fn acknowledged(&mut self, id: NodeId, height: u64) -> Result<(), Violation> {
        let stores: Vec<(NodeId, &MemoryStore)> =
            self.nodes.iter().map(|n| (n.id, &n.store)).collect();
        if let Err(mut violation) = self.checker.check_durable_on_quorum(id, height, &stores) {
            violation
                .detail
                .push_str(&format!("\ncluster:\n{}", self.describe()));
            return Err(violation);
        }
        self.latest_ack = Some((self.now, height));
        self.report.acknowledged += 1;
        Ok(())
    }

    /// The governor's transaction committed: after a proposal, vote on it; after a vote,
    /// go on with the plan. A proposal that failed is tried again.
    fn governance_progress(&mut self, i: usize, purpose: Purpose, applied: bool) {
        match purpose {
            Purpose::Transfer => {}
            Purpose::Vote => self.governance.vote_due = None,
            Purpose::Propose if applied => {
                let governor = AccountId::from_public_key(self.clients[GOVERNOR].public_key());
                let replica = self.nodes[i].replica.as_ref().expect("it just answered");
                self.governance.vote_due = replica
                    .ledger()
                    .state()
                    .proposals
                    .values()
                    .filter(|p| p.proposer == governor && p.status == ProposalStatus::Voting)
                    .map(|p| p.id)
                    .max();
                self.governance.plan.pop_front();
            }
            Purpose::Propose => {}
        }
    }
}
