//! Keys that all collide under the unseeded Fx hash natrium used before
//! issue 15 (`git show e289bac:src/sublist.rs`), made of printable ASCII
//! without `.`, so each is a valid subject token and a valid sid.
//!
//! The old hasher: `add(w) = (rotl(h, 5) ^ w) * K` for each 8-byte
//! little-endian word, then a fold of the final state. A trie edge was
//! hashed as `add(parent)` then the token's words; a `HashMap` key of bytes
//! (sids, match-cache subjects) as `add(len)` then the words. For a 16-byte
//! key after a prefix state `pre`, the state after the first word is
//! `P = (rotl(pre, 5) ^ w0) * K`, and choosing `w1 = rotl(P, 5) ^ X` makes
//! the state after the second word `X * K` whatever `w0` was: every such
//! key has the same hash. The search picks `w0` byte by byte so that each
//! byte of `w1` fixed so far is printable too (byte `j >= 1` of `w1`
//! depends only on bytes `0..=j` of `w0`, and the top bits of byte 0 on
//! byte 0), so it costs a few tries per key.

/// The old hasher's multiplier.
const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Any constant: the shared final state is `X * K`.
const X: u64 = 0x6e61_7472_6975_6d21;

/// The old `add` step.
fn add(h: u64, w: u64) -> u64 {
    (h.rotate_left(5) ^ w).wrapping_mul(K)
}

/// The old hash of a trie edge below `parent` (state before the token).
pub fn edge_prefix(parent: u32) -> u64 {
    add(0, u64::from(parent))
}

/// The old hash state of a byte-string `HashMap` key of `len` bytes before
/// its bytes (std hashes a slice's length first).
pub fn map_key_prefix(len: usize) -> u64 {
    add(0, len as u64)
}

/// The old Fx state after hashing the 16 bytes of `key` from state `pre`
/// (the fold at the end is the same for every equal state).
pub fn old_state(pre: u64, key: &[u8; 16]) -> u64 {
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    add(add(pre, word(&key[..8])), word(&key[8..]))
}

fn allowed(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'.'
}

/// `n` distinct 16-byte keys whose old hash state after `pre` is the same.
pub fn colliding_keys(pre: u64, n: usize) -> Vec<[u8; 16]> {
    let mut out = Vec::with_capacity(n);
    search(pre.rotate_left(5), 0, 0, n, &mut out);
    out
}

/// Chooses byte `j` of the first word (bytes below `j` fixed in `w0`).
fn search(c: u64, j: u32, w0: u64, n: usize, out: &mut Vec<[u8; 16]>) {
    for b in (0u8..=255).filter(|&b| allowed(b)) {
        if out.len() >= n {
            return;
        }
        let w0 = w0 | (u64::from(b) << (8 * j));
        // The low 8(j+1) bits of the product are final once bytes 0..=j are.
        let p = (c ^ w0).wrapping_mul(K);
        if j == 0 {
            // The top three bits of byte 0 of rotl(p, 5) are bits 0..=2 of
            // p: known now, and printable needs them 001, 010 or 011. (Its
            // low five bits, the top of p, are known only at the end.)
            let top = ((p as u8) << 5 ^ X as u8) & 0xe0;
            if !matches!(top, 0x20 | 0x40 | 0x60) {
                continue;
            }
        } else {
            // Byte j of rotl(p, 5) is bits 8j-5 ..= 8j+2 of p.
            let byte = ((p >> (8 * j - 5)) as u8) ^ (X >> (8 * j)) as u8;
            if !allowed(byte) {
                continue;
            }
        }
        if j < 7 {
            search(c, j + 1, w0, n, out);
            continue;
        }
        let w1 = p.rotate_left(5) ^ X;
        if w1.to_le_bytes().iter().all(|&b| allowed(b)) {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&w0.to_le_bytes());
            key[8..].copy_from_slice(&w1.to_le_bytes());
            out.push(key);
        }
    }
}
