//! `agora proof KEY --trustless`: the light client of `agora_core::light` over a node's
//! HTTP API. The node is asked for certified heights (`/v1/certificates`) and proofs
//! (`/v1/proof`); nothing it says is believed until the certificates and proofs check
//! out against the committee the genesis (or a pinned checkpoint) names.

use crate::client::{Failure, Node};
use agora_api::{state_key_text, CertificatesResponse, CertifiedHeight, ProofResponse};
use agora_core::light::{CertifiedRoot, LightClient, LightError, ProvedValue, Source, Verified};
use agora_core::{ChainId, Genesis, Hash32, StateKey};
use anyhow::{anyhow, Context};

/// A node as a light client's [`Source`], counting the bytes it answered.
pub struct NodeSource<'a> {
    node: &'a Node,
    /// Bytes of the answers' bodies, as JSON.
    pub bytes: u64,
    /// Requests made.
    pub requests: u64,
}

impl<'a> NodeSource<'a> {
    /// Asking `node`.
    pub fn new(node: &'a Node) -> NodeSource<'a> {
        NodeSource {
            node,
            bytes: 0,
            requests: 0,
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&mut self, path: &str) -> Result<T, String> {
        let answer = self
            .node
            .request(reqwest::Method::GET, path, None)
            .map_err(|e| e.to_string())?;
        self.requests += 1;
        self.bytes += answer.body.to_string().len() as u64;
        answer.into_result().map_err(|e| e.to_string())
    }

    fn first(&mut self, path: &str) -> Result<Option<CertifiedRoot>, String> {
        let answer: CertificatesResponse = self.get(path)?;
        let chain_id = answer.chain_id;
        Ok(answer
            .certified
            .into_iter()
            .next()
            .map(|c: CertifiedHeight| CertifiedRoot {
                chain_id,
                height: c.height,
                state_root: c.state_root,
                certificate: c.certificate,
            }))
    }
}

impl Source for NodeSource<'_> {
    fn latest_certified(&mut self) -> Result<Option<CertifiedRoot>, String> {
        self.first("/v1/certificates")
    }

    fn certified_from(&mut self, from: u64) -> Result<Option<CertifiedRoot>, String> {
        self.first(&format!("/v1/certificates?from={from}&limit=1"))
    }

    fn prove(&mut self, key: &StateKey, height: u64) -> Result<ProvedValue, String> {
        let text = state_key_text(key).ok_or_else(|| format!("{key:?} has no text form"))?;
        let answer: ProofResponse = self.get(&format!("/v1/proof?key={text}&height={height}"))?;
        let (key_bytes, value) = answer
            .decode()
            .map_err(|e| format!("the key or value is not hex: {e}"))?;
        if key_bytes != key.to_bytes() {
            return Err(format!("the node answered for another key than {text}"));
        }
        if answer.at.height != height {
            return Err(format!(
                "the node answered at height {} when asked for {height}",
                answer.at.height
            ));
        }
        Ok(ProvedValue {
            value,
            proof: answer.proof,
            state_root: answer.at.state_root,
        })
    }
}

/// [`LightClient::verified_value`], asked again once, a moment later, when the node had
/// just taken a snapshot past its newest certified height and could not yet prove there
/// (it proves past heights by replaying from its snapshot; the next certified height
/// follows within a block or two).
pub fn verified_value(
    client: &mut LightClient,
    source: &mut NodeSource<'_>,
    key: &StateKey,
) -> Result<Verified, LightError> {
    match client.verified_value(source, key) {
        Err(LightError::Source(message)) if message.contains("too_far_back") => {
            std::thread::sleep(std::time::Duration::from_secs(2));
            client.verified_value(source, key)
        }
        other => other,
    }
}

/// Where trust starts: the chain's genesis file, and optionally a checkpoint
/// (`HEIGHT:COMMITTEE_HASH`) pinned from a source the user trusts.
pub fn client_from(
    genesis_path: &std::path::Path,
    checkpoint: Option<&str>,
    source: &mut dyn Source,
) -> Result<LightClient, Failure> {
    let text = std::fs::read_to_string(genesis_path)
        .with_context(|| format!("reading the trusted genesis {}", genesis_path.display()))?;
    let genesis = Genesis::from_json(&text)
        .map_err(|e| anyhow!("{} is not a valid genesis: {e}", genesis_path.display()))?;
    let Some(checkpoint) = checkpoint else {
        return Ok(LightClient::from_genesis(&genesis));
    };
    let (height, hash) = parse_checkpoint(checkpoint)?;
    LightClient::from_checkpoint(genesis.chain_id(), height, hash, source)
        .map_err(|e| refused(genesis.chain_id(), e))
}

fn parse_checkpoint(text: &str) -> Result<(u64, Hash32), Failure> {
    let bad = || anyhow!("--checkpoint {text}: expected HEIGHT:COMMITTEE_HASH (64 hex digits)");
    let (height, hash) = text.split_once(':').ok_or_else(bad)?;
    let height = height.parse().map_err(|_| bad())?;
    let hash = Hash32::from_hex(hash).map_err(|_| bad())?;
    Ok((height, hash))
}

/// A refusal as the CLI reports it: not verified (exit code 5), with the reason.
pub fn refused(chain_id: ChainId, error: LightError) -> Failure {
    match error {
        LightError::Source(message) => Failure::Unreachable(message),
        other => {
            eprintln!("REFUSED (chain {chain_id}): {other}");
            Failure::NotVerified
        }
    }
}
