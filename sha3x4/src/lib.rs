//! SHA3-256 of many messages at once.
//!
//! The ledger hashes thousands of independent messages per block: the state tree's key
//! paths, leaves and inner nodes (each a single 136-byte block of the sponge) and the
//! transactions' ids (a few kilobytes each, mostly of one length). On a CPU with AVX-512
//! (F and VL), messages of the same length in blocks go four at a time through one
//! Keccak-f[1600] in the four 64-bit lanes of 256-bit registers, using the 32 vector
//! registers (the whole state stays in registers), one-instruction rotations and
//! three-input logic; elsewhere each message is hashed on its own by the `sha3` crate. The
//! choice is made at run time and changes only the speed: the digests are SHA3-256, byte
//! for byte, which the tests check against `sha3`.
//!
//! This crate holds the one `unsafe` call the choice needs (a function compiled for
//! AVX-512 may only be called once the CPU is known to have it), so that `agora-core`
//! keeps forbidding `unsafe` code.

#![deny(unsafe_code)]

use sha3::{Digest, Sha3_256};

/// The sponge's rate for SHA3-256, in bytes.
const RATE: usize = 136;

/// Messages laid end to end, hashed together by [`Messages::digests`].
#[derive(Clone, Debug, Default)]
pub struct Messages {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Messages {
    /// An empty list with room for `count` messages of about `each` bytes.
    pub fn with_capacity(count: usize, each: usize) -> Self {
        Messages {
            bytes: Vec::with_capacity(count.saturating_mul(each)),
            ends: Vec::with_capacity(count),
        }
    }

    /// Appends one message, the concatenation of `parts`.
    pub fn push<'a>(&mut self, parts: impl IntoIterator<Item = &'a [u8]>) {
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        self.ends.push(self.bytes.len());
    }

    /// How many messages the list holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th message.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// The SHA3-256 digest of every message, in order; four at a time where the CPU
    /// allows.
    pub fn digests(&self) -> Vec<[u8; 32]> {
        if x4::available() {
            self.digests_with(x4::sha3_256_x4)
        } else {
            self.digests_one_by_one()
        }
    }

    /// The same digests, each message hashed on its own by the `sha3` crate.
    pub fn digests_one_by_one(&self) -> Vec<[u8; 32]> {
        (0..self.len()).map(|i| one(self.get(i))).collect()
    }

    /// Hands `four` the messages four at a time, each four of one length in blocks (a
    /// short group is filled up with copies of its first message, whose digests are
    /// dropped).
    fn digests_with(&self, four: fn([&[u8]; 4]) -> [[u8; 32]; 4]) -> Vec<[u8; 32]> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| blocks(self.get(i).len()));
        let mut out = vec![[0u8; 32]; self.len()];
        let mut rest = order.as_slice();
        while let Some(&first) = rest.first() {
            let length = blocks(self.get(first).len());
            let take = rest
                .iter()
                .take(4)
                .take_while(|&&i| blocks(self.get(i).len()) == length)
                .count();
            let (group, after) = rest.split_at(take);
            let mut messages = [self.get(first); 4];
            for (slot, &i) in messages.iter_mut().zip(group) {
                *slot = self.get(i);
            }
            for (&i, digest) in group.iter().zip(four(messages)) {
                out[i] = digest;
            }
            rest = after;
        }
        out
    }
}

/// SHA3-256 of one message.
pub fn one(message: &[u8]) -> [u8; 32] {
    Sha3_256::digest(message).into()
}

/// A message alone of at least this many sponge blocks goes through the four-lane
/// permutation anyway, three lanes idle: one four-lane pass over a 3,409-byte transaction
/// cost less than `sha3`'s scalar Keccak on this project's AVX-512 machine, and far less
/// in a build for x86-64-v4, where the compiler's code for the scalar Keccak is slower
/// (BENCHMARKS.md, "alone"). Shorter messages stay scalar (a copy and four lanes to fill
/// are not worth it for a block or two).
pub const ALONE_MIN_BLOCKS: usize = 8;

/// SHA3-256 of the concatenation of `parts`, as one message: four-lane where the CPU
/// allows and the message is long (see [`ALONE_MIN_BLOCKS`]), else by `sha3`.
pub fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]> + Clone) -> [u8; 32] {
    let len: usize = parts.clone().into_iter().map(|part| part.len()).sum();
    if blocks(len) >= ALONE_MIN_BLOCKS && x4::available() {
        let mut message = Vec::with_capacity(len);
        for part in parts {
            message.extend_from_slice(part);
        }
        let [digest, ..] = x4::sha3_256_x4([message.as_slice(); 4]);
        return digest;
    }
    let mut hasher = Sha3_256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// How many blocks the sponge absorbs for a message of `len` bytes (the padding takes at
/// least one byte).
fn blocks(len: usize) -> usize {
    len / RATE + 1
}

/// Block `index` of the padded message, as the sponge's first 17 lanes (read straight
/// from the message: no padded copy of it is made).
fn padded_block(message: &[u8], index: usize) -> [u64; RATE / 8] {
    let tail = &message[(index * RATE).min(message.len())..];
    let mut lanes = [0u64; RATE / 8];
    let whole = tail.len().min(RATE) / 8;
    for (lane, chunk) in lanes.iter_mut().zip(tail.chunks_exact(8).take(whole)) {
        *lane = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    if tail.len() < RATE {
        // The last block: the message's last bytes, SHA3's domain bits (01) and the first
        // bit of pad10*1 in one lane, the padding's last bit at the end of the block.
        let rest = &tail[8 * whole..];
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        last[rest.len()] = 0x06;
        lanes[whole] = u64::from_le_bytes(last);
        lanes[RATE / 8 - 1] ^= 0x80 << 56;
    }
    lanes
}

#[cfg(target_arch = "x86_64")]
mod x4 {
    use super::{blocks, padded_block, RATE};
    use std::arch::x86_64::*;

    /// Keccak's round constants (FIPS 202, ι).
    const ROUND_CONSTANTS: [u64; 24] = [
        0x0000_0000_0000_0001,
        0x0000_0000_0000_8082,
        0x8000_0000_0000_808a,
        0x8000_0000_8000_8000,
        0x0000_0000_0000_808b,
        0x0000_0000_8000_0001,
        0x8000_0000_8000_8081,
        0x8000_0000_0000_8009,
        0x0000_0000_0000_008a,
        0x0000_0000_0000_0088,
        0x0000_0000_8000_8009,
        0x0000_0000_8000_000a,
        0x0000_0000_8000_808b,
        0x8000_0000_0000_008b,
        0x8000_0000_0000_8089,
        0x8000_0000_0000_8003,
        0x8000_0000_0000_8002,
        0x8000_0000_0000_0080,
        0x0000_0000_0000_800a,
        0x8000_0000_8000_000a,
        0x8000_0000_8000_8081,
        0x8000_0000_0000_8080,
        0x0000_0000_8000_0001,
        0x8000_0000_8000_8008,
    ];

    /// `vpternlogq` truth tables over (a, b, c): a ^ b ^ c, and χ's a ^ (!b & c).
    const XOR3: i32 = 0x96;
    const CHI: i32 = 0xd2;

    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")
    }

    /// SHA3-256 of four messages of the same length in blocks.
    pub(super) fn sha3_256_x4(messages: [&[u8]; 4]) -> [[u8; 32]; 4] {
        assert!(available(), "the four-lane Keccak needs AVX-512 F and VL");
        let count = blocks(messages[0].len());
        assert!(
            messages.iter().all(|m| blocks(m.len()) == count),
            "four messages of one length in blocks"
        );
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX-512 F and VL (checked just above), the only target
        // features `sponge` is compiled for.
        unsafe {
            sponge(&messages, count)
        }
    }

    /// The sponge over four messages of `count` blocks each, one message per 64-bit lane
    /// of 25 vectors; returns each lane's first 32 bytes.
    #[target_feature(enable = "avx512f,avx512vl")]
    fn sponge(messages: &[&[u8]; 4], count: usize) -> [[u8; 32]; 4] {
        let mut a = [_mm256_setzero_si256(); 25];
        for index in 0..count {
            let block = messages.map(|m| padded_block(m, index));
            for (i, lane) in a.iter_mut().take(RATE / 8).enumerate() {
                let words = _mm256_set_epi64x(
                    block[3][i] as i64,
                    block[2][i] as i64,
                    block[1][i] as i64,
                    block[0][i] as i64,
                );
                *lane = _mm256_xor_si256(*lane, words);
            }
            permute(&mut a);
        }
        let mut out = [[0u8; 32]; 4];
        for (i, vector) in a.iter().take(4).enumerate() {
            let lanes = [
                _mm256_extract_epi64::<0>(*vector),
                _mm256_extract_epi64::<1>(*vector),
                _mm256_extract_epi64::<2>(*vector),
                _mm256_extract_epi64::<3>(*vector),
            ];
            for (digest, value) in out.iter_mut().zip(lanes) {
                digest[8 * i..8 * i + 8].copy_from_slice(&(value as u64).to_le_bytes());
            }
        }
        out
    }

    /// Keccak-f[1600] on the four states held lane-wise in `a`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn permute(a: &mut [__m256i; 25]) {
        for constant in ROUND_CONSTANTS {
            // θ: each column's parity, folded into its two neighbours.
            let c: [__m256i; 5] = std::array::from_fn(|x| {
                let three = _mm256_ternarylogic_epi64::<XOR3>(a[x], a[x + 5], a[x + 10]);
                _mm256_ternarylogic_epi64::<XOR3>(three, a[x + 15], a[x + 20])
            });
            for x in 0..5 {
                let right = _mm256_rol_epi64::<1>(c[(x + 1) % 5]);
                for y in 0..5 {
                    a[x + 5 * y] =
                        _mm256_ternarylogic_epi64::<XOR3>(a[x + 5 * y], c[(x + 4) % 5], right);
                }
            }
            // ρ and π: lane (x, y), rotated by its FIPS 202 offset, moves to (y, 2x + 3y);
            // listed in destination order with immediate rotations (amounts held in
            // registers took registers the state needs, and the spills doubled the time).
            let b = [
                a[0],
                _mm256_rol_epi64::<44>(a[6]),
                _mm256_rol_epi64::<43>(a[12]),
                _mm256_rol_epi64::<21>(a[18]),
                _mm256_rol_epi64::<14>(a[24]),
                _mm256_rol_epi64::<28>(a[3]),
                _mm256_rol_epi64::<20>(a[9]),
                _mm256_rol_epi64::<3>(a[10]),
                _mm256_rol_epi64::<45>(a[16]),
                _mm256_rol_epi64::<61>(a[22]),
                _mm256_rol_epi64::<1>(a[1]),
                _mm256_rol_epi64::<6>(a[7]),
                _mm256_rol_epi64::<25>(a[13]),
                _mm256_rol_epi64::<8>(a[19]),
                _mm256_rol_epi64::<18>(a[20]),
                _mm256_rol_epi64::<27>(a[4]),
                _mm256_rol_epi64::<36>(a[5]),
                _mm256_rol_epi64::<10>(a[11]),
                _mm256_rol_epi64::<15>(a[17]),
                _mm256_rol_epi64::<56>(a[23]),
                _mm256_rol_epi64::<62>(a[2]),
                _mm256_rol_epi64::<55>(a[8]),
                _mm256_rol_epi64::<39>(a[14]),
                _mm256_rol_epi64::<41>(a[15]),
                _mm256_rol_epi64::<2>(a[21]),
            ];
            // χ, row by row.
            for y in 0..5 {
                for x in 0..5 {
                    a[x + 5 * y] = _mm256_ternarylogic_epi64::<CHI>(
                        b[x + 5 * y],
                        b[(x + 1) % 5 + 5 * y],
                        b[(x + 2) % 5 + 5 * y],
                    );
                }
            }
            // ι.
            a[0] = _mm256_xor_si256(a[0], _mm256_set1_epi64x(constant as i64));
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x4 {
    pub(super) fn available() -> bool {
        false
    }

    pub(super) fn sha3_256_x4(messages: [&[u8]; 4]) -> [[u8; 32]; 4] {
        messages.map(super::one)
    }
}

/// Whether this CPU hashes four messages at once (AVX-512 F and VL).
pub fn four_lanes_available() -> bool {
    x4::available()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// A message alone, given in parts, either side of the four-lane threshold: the
    /// digest of its concatenation by `sha3`.
    #[test]
    fn one_message_in_parts_matches_sha3_either_side_of_the_threshold() {
        for len in [
            0,
            1,
            RATE,
            (ALONE_MIN_BLOCKS - 1) * RATE - 1,
            (ALONE_MIN_BLOCKS - 1) * RATE,
        ]
        .into_iter()
        .chain([ALONE_MIN_BLOCKS * RATE, 3_409, 10 * RATE + 7])
        {
            let m = message(len, 9);
            let (head, tail) = m.split_at(len / 3);
            let (middle, tail) = tail.split_at(tail.len() / 2);
            let want = one(&m);
            assert_eq!(digest([head, middle, tail]), want, "{len} bytes in parts");
            assert_eq!(digest([m.as_slice()]), want, "{len} bytes whole");
        }
        assert!(blocks((ALONE_MIN_BLOCKS - 1) * RATE) == ALONE_MIN_BLOCKS);
        assert!(blocks((ALONE_MIN_BLOCKS - 1) * RATE - 1) == ALONE_MIN_BLOCKS - 1);
    }

    /// Every length from empty to three blocks and some of a transaction's, in every lane
    /// position and in groups short of four, against `sha3`;
    /// with four lanes where the CPU has them, and always through the one-by-one path.
    #[test]
    fn every_length_matches_sha3_in_every_lane() {
        let mut messages = Messages::default();
        let mut expected = Vec::new();
        for len in (0..=3 * RATE + 1).chain([3_400, 3_401, 3_500]) {
            for seed in 0..5u8 {
                let m = message(len, seed);
                expected.push(one(&m));
                messages.push([m.as_slice()]);
            }
        }
        assert_eq!(messages.digests(), expected);
        assert_eq!(messages.digests_one_by_one(), expected);
        if four_lanes_available() {
            assert_eq!(messages.digests_with(x4::sha3_256_x4), expected);
        } else {
            eprintln!("this CPU lacks AVX-512 F/VL: only the one-by-one path was checked");
        }
    }

    #[test]
    fn known_answers() {
        // FIPS 202 example values.
        let mut messages = Messages::default();
        messages.push([]);
        messages.push([b"a".as_slice(), b"bc"]);
        let digests = messages.digests();
        assert_eq!(
            hex(&digests[0]),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
        assert_eq!(
            hex(&digests[1]),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any mix of short and long messages, any count (partial groups of four
        /// included), gives `sha3`'s digests in the original order.
        #[test]
        fn any_batch_matches_sha3(batch in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..700), 0..23)) {
            let mut messages = Messages::default();
            for m in &batch {
                messages.push([m.as_slice()]);
            }
            let expected: Vec<_> = batch.iter().map(|m| one(m)).collect();
            prop_assert_eq!(messages.digests(), expected);
        }
    }
}
