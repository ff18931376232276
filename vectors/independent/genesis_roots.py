#!/usr/bin/env python3
"""An independent reading of vectors/README.md (§2 canonical bytes, §3 tags and ids, §4 the
state tree, §6 genesis), written from the spec alone in another language: it computes every
vector's chain id and genesis state root and compares them with the file.

Usage: python3 vectors/independent/genesis_roots.py vectors
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
            + u64(p['reputation_per_block']) + ratio(p['reputation_decay']) + u32(p['max_block_txs']))

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
    # StateKey variants: Globals 0, Params 1, Account 2, AccountKey 3, Validator 4, ...
    kv = [(u8(0), u64(0) + chain_id + u128(supply) + u128(total_staked) + u128(int(g['treasury'])) + u64(0)),
          (u8(1), params(p))]
    for a in g['accounts']:
        kv.append((u8(2) + bytes.fromhex(a['account']),
                   u128(int(a['balance'])) + u128(int(a.get('staked', '0'))) + u128(0) + u64(0)))
    for v in g['validators']:
        key = bytes.fromhex(v['public_key'])
        base = v['base_reputation']
        kv.append((u8(4) + H('agora/account/v1', key),
                   key + vec(bytes.fromhex(v['peer'])) + u64(base) + u128(0) + u64(0) + u64(min(base, 1 << 32))))
    return [(H('agora/key/v1', k), H('agora/leaf/v1', H('agora/key/v1', k) + H('agora/value/v1', v))) for k, v in kv]

def bit(path, depth): return (path[depth // 8] >> (7 - depth % 8)) & 1

def root(items, depth=0):
    if not items: return bytes(32)
    if len(items) == 1: return items[0][1]
    left = [i for i in items if bit(i[0], depth) == 0]
    right = [i for i in items if bit(i[0], depth) == 1]
    return H('agora/node/v1', root(left, depth + 1) + root(right, depth + 1))

bad = 0
for path in sorted(glob.glob(sys.argv[1] + '/*.json')):
    f = json.load(open(path))
    chain_id = H('agora/genesis/v1', genesis(f['genesis']))
    r = root(leaves(f['genesis'], chain_id))
    ok = chain_id.hex() == f['chain_id'] and r.hex() == f['genesis_state_root']
    bad += not ok
    print(('ok  ' if ok else 'BAD ') + f['name'])
sys.exit(1 if bad else 0)
