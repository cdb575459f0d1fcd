//! What a token becomes in a signature: its 64-bit word hash and its stem (on bytes, or packed in a u128).

use super::lexicon::{packed, KEEP};

pub(super) fn word_hash(w: &str) -> u64 {
    word_hash_bytes(w.as_bytes())
}

/// A word of up to 16 bytes is hashed from its packed bytes (`hash_packed`; most words, and the tokens
/// are packed anyway for the tables), a longer one with FNV-1a over its bytes then murmur3's finaliser.
pub(super) fn word_hash_bytes(w: &[u8]) -> u64 {
    match packed(w) {
        Some(p) => hash_packed(p),
        None => fnv_hash(w),
    }
}

/// The two halves of a packed word mixed into one, then murmur3's finaliser.
#[inline]
pub(super) fn hash_packed(p: u128) -> u64 {
    let h = (p as u64) ^ ((p >> 64) as u64).rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    fmix(h.wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
}

pub(super) fn fnv_hash(w: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in w {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix(h)
}

/// murmur3's 64-bit finaliser (FNV alone clusters on short ASCII strings).
pub(super) fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// `stem` of a packed word of `len` bytes: the suffix's bytes cleared.
#[inline]
pub(super) fn stem_packed(p: u128, len: usize) -> u128 {
    if len < 4 {
        return p;
    }
    // `stem`'s suffixes in its order: each ends in its own letter but "es" and "s" (tried in that order).
    let b = p.to_le_bytes();
    let cut = match b[len - 1] {
        b'g' if len > 5 && b[len - 3] == b'i' && b[len - 2] == b'n' => 3,
        b'd' | b's' if len > 4 && b[len - 2] == b'e' => 2,
        b's' => 1,
        _ => return p,
    };
    p & KEEP[len - cut]
}

pub(super) fn stem(w: &[u8]) -> &[u8] {
    for suf in [&b"ing"[..], b"ed", b"es", b"s"] {
        if w.len() > suf.len() + 2 && w.ends_with(suf) {
            return &w[..w.len() - suf.len()];
        }
    }
    w
}
