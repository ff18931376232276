#!/usr/bin/env python3
"""An independent reading of vectors/README.md, written from the spec alone in another
language (Python, hashlib only). For every vector it computes and compares with the file:
- the chain id and the genesis state root (§2 canonical bytes, §3 tags and ids, §4 the state
  tree, §6 genesis);
- for every block: the header's chain id and height, the chain of block hashes (each
  block's parent is the last block's hash, the chain id before the first), the
  transaction ids in the receipts, and the transaction root (§2 Block, §3);
- for every block's certificates (§7): the header's certificates hash, heights strictly
  increasing above the last certified height and below the block, signers in strictly
  increasing order, and one `certified` event per certificate with its signer count.
It does not apply transactions or verify signatures: that needs ML-DSA, which Python's
standard library lacks.

Usage: python3 vectors/independent/check.py vectors
"""
import hashlib, json, struct, sys, glob

def H(tag, data):
    t = tag.encode()
    return hashlib.sha3_256(bytes([len(t)]) + t + data).digest()

u8 = lambda v: struct.pack('<B', v)
u32 = lambda v: struct.pack('<I', v)
u64 = lambda v: struct.pack('<Q', v)
u128 = lambda v: (v).to_bytes(16, 'little')
def vec(b): return u32(len(b)) + b
def string(s): return vec(s.encode())
def ratio(r): return u64(r['numerator']) + u64(r['denominator'])

def params(p):
    return (u128(int(p['fee'])) + u128(int(p['proposer_reward'])) + u128(int(p['min_deposit']))
            + u64(p['unbonding_blocks']) + u64(p['voting_period_blocks']) + u64(p['epoch_blocks'])
            + ratio(p['quorum']) + ratio(p['threshold']) + ratio(p['veto_threshold'])
            + u64(p['reputation_per_block']) + ratio(p['reputation_decay']) + u32(p['max_block_txs'])
            + u64(p['reputation_per_signature']))

def genesis(g):
    accounts = sorted(g['accounts'], key=lambda a: bytes.fromhex(a['account']))
    vals = sorted(g['validators'], key=lambda v: H('agora/account/v1', bytes.fromhex(v['public_key'])))
    out = string(g['chain_name']) + params(g['params'])
    out += u32(len(accounts)) + b''.join(bytes.fromhex(a['account']) + u128(int(a['balance'])) + u128(int(a.get('staked', '0'))) for a in accounts)
    out += u32(len(vals)) + b''.join(bytes.fromhex(v['public_key']) + vec(bytes.fromhex(v['peer'])) + u64(v['base_reputation']) for v in vals)
    out += u128(int(g['treasury']))
    return out

def leaves(g, chain_id):
    p = g['params']
    total_staked = sum(int(a.get('staked', '0')) for a in g['accounts'])
    supply = int(g['treasury']) + sum(int(a['balance']) + int(a.get('staked', '0')) for a in g['accounts'])
    # StateKey variants: Globals 0, Params 1, Account 2, AccountKey 3, Validator 4, ...,
    # Committee 8.
    kv = [(u8(0), u64(0) + chain_id + u128(supply) + u128(total_staked) + u128(int(g['treasury'])) + u64(0) + u64(0)),
          (u8(1), params(p))]
    for a in g['accounts']:
        kv.append((u8(2) + bytes.fromhex(a['account']),
                   u128(int(a['balance'])) + u128(int(a.get('staked', '0'))) + u128(0) + u64(0)))
    for v in g['validators']:
        key = bytes.fromhex(v['public_key'])
        base = v['base_reputation']
        kv.append((u8(4) + H('agora/account/v1', key),
                   key + vec(bytes.fromhex(v['peer'])) + u64(base) + u128(0) + u64(0) + u64(min(base, 1 << 32)) + u64(0)))
    kv.append((u8(8), committee(g['validators'])))
    return [(H('agora/key/v1', k), H('agora/leaf/v1', H('agora/key/v1', k) + H('agora/value/v1', v))) for k, v in kv]

def consensus_weights(weights):
    """§5: with three or more voters, one whose weight is at least the others' sum gets
    that sum minus one."""
    weights = list(weights)
    total = sum(weights)
    if sum(1 for w in weights if w > 0) >= 3:
        for i, w in enumerate(weights):
            if w >= total - w:
                weights[i] = total - w - 1
                break
    return weights


def committee(validators):
    """The genesis Committee leaf (§7): since 0, every validator in id order with its
    consensus weight, key and peer; previous since 0, empty."""
    vals = sorted(validators, key=lambda v: H('agora/account/v1', bytes.fromhex(v['public_key'])))
    weights = consensus_weights(min(v['base_reputation'], 1 << 32) for v in vals)
    members = b''.join(H('agora/account/v1', bytes.fromhex(v['public_key'])) + u64(w)
                       + bytes.fromhex(v['public_key']) + vec(bytes.fromhex(v['peer']))
                       for v, w in zip(vals, weights))
    return u64(0) + u32(len(vals)) + members + u64(0) + u32(0)


def bit(path, depth): return (path[depth // 8] >> (7 - depth % 8)) & 1

def root(items, depth=0):
    if not items: return bytes(32)
    if len(items) == 1: return items[0][1]
    left = [i for i in items if bit(i[0], depth) == 0]
    right = [i for i in items if bit(i[0], depth) == 1]
    return H('agora/node/v1', root(left, depth + 1) + root(right, depth + 1))

SIGNATURE_BYTES = {0: 2420, 1: 3309, 2: 4627}
HEADER_BYTES = 32 + 8 + 32 + 32 + 32 + 8 + 32 + 32


def tx_root(ids):
    level = [H('agora/txleaf/v1', i) for i in ids]
    while len(level) > 1:
        up = [H('agora/txnode/v1', level[k] + level[k + 1]) for k in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])  # an unpaired last node is carried up unchanged
        level = up
    return H('agora/txroot/v1', u64(len(ids)) + (level[0] if level else bytes(32)))


def check_blocks(f, chain_id):
    """Problems with the vector's blocks, as strings; none if all hold."""
    problems = []
    last_hash = chain_id
    blocks = 0
    certified = 0
    for entry in f['entries']:
        payload = entry['entry']['payload']
        if not isinstance(payload, dict) or 'block' not in payload:
            continue
        blocks += 1
        b = bytes.fromhex(payload['block'])
        header = b[:HEADER_BYTES]
        height = struct.unpack_from('<Q', header, 32)[0]
        parent, root_in_header = header[72:104], header[104:136]
        at = HEADER_BYTES
        at += 1 + SIGNATURE_BYTES[b[at]]
        count = struct.unpack_from('<I', b, at)[0]
        at += 4
        txs = []
        for _ in range(count):
            n = struct.unpack_from('<I', b, at)[0]
            txs.append(b[at + 4:at + 4 + n])
            at += 4 + n
        index = entry['entry']['index']
        certs_at, heights = at, []
        count = struct.unpack_from('<I', b, at)[0]
        at += 4
        for _ in range(count):
            height_c, n = struct.unpack_from('<QI', b, at)
            at += 12
            signers = []
            for _ in range(n):
                signers.append(b[at:at + 32])
                at += 32 + 1 + SIGNATURE_BYTES[b[at + 32]]
            if signers != sorted(set(signers)):
                problems.append(f'{index}: certificate signers not in strictly increasing order')
            heights.append((height_c, len(signers)))
        if H('agora/certs/v1', b[certs_at:at]) != header[HEADER_BYTES - 32:]:
            problems.append(f'{index}: certificates hash')
        if [h for h, _ in heights] != sorted(set(h for h, _ in heights)) or any(h >= index or h <= certified for h, _ in heights):
            problems.append(f'{index}: certificate heights out of order')
        certified = heights[-1][0] if heights else certified
        shown = [(e['height'], e['signers']) for e in entry['expected']['events'] if e['event'] == 'certified']
        if shown != heights:
            problems.append(f'{index}: certified events differ from the certificates')
        ids = [H('agora/tx/v1', t) for t in txs]
        if at != len(b):
            problems.append(f'{index}: trailing bytes')
        if header[:32] != chain_id or height != index:
            problems.append(f'{index}: chain id or height')
        if parent != last_hash:
            problems.append(f'{index}: parent hash')
        if tx_root(ids) != root_in_header:
            problems.append(f'{index}: tx root')
        if [r['tx_hash'] for r in entry['expected']['receipts']] != [i.hex() for i in ids]:
            problems.append(f'{index}: receipt tx ids')
        last_hash = H('agora/block/v1', header)
    return blocks, problems


bad = 0
for path in sorted(glob.glob(sys.argv[1] + '/*.json')):
    f = json.load(open(path))
    chain_id = H('agora/genesis/v1', genesis(f['genesis']))
    r = root(leaves(f['genesis'], chain_id))
    problems = []
    if chain_id.hex() != f['chain_id'] or r.hex() != f['genesis_state_root']:
        problems.append('chain id or genesis root')
    blocks, block_problems = check_blocks(f, chain_id)
    problems += block_problems
    bad += bool(problems)
    print(('ok  ' if not problems else 'BAD ') + f"{f['name']}: genesis, {blocks} blocks"
          + ('' if not problems else ': ' + '; '.join(problems)))
sys.exit(1 if bad else 0)
