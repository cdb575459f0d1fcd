//! The cue and bigram words of the feature scan: a table from a lower-cased word's key to what it counts.

use super::{CUE_GROUPS, N_CUES, OF_THE_FOLLOWING};
use crate::tokens::{short_key, FlatMap};
use std::sync::OnceLock;

/// Extra cue hits from a (previous word, word) pair: "how many/much", "which of", "statement 1".
#[cfg(test)]
pub(super) fn bigram_cue(prev: &[u8], word: &[u8]) -> Option<usize> {
    match (prev, word) {
        (b"how", b"many") | (b"how", b"much") | (b"how", b"long") => Some(0),
        (b"step", b"by") | (b"multi", b"step") => Some(11),
        (b"act", b"as") | (b"you", b"are") => Some(9),
        (b"of", b"the") | (b"the", b"following") => Some(OF_THE_FOLLOWING),
        _ => None,
    }
}

/// A first word, the second words that complete it, and the cue group the pair counts towards.
type Bigram = (&'static [u8], &'static [&'static [u8]], usize);

/// The (first word, second word) pairs `bigram_cue` counts, with their group; a pair's first word is known by
/// its 1-based position here (`WordInfo::first`).
const BIGRAMS: [Bigram; 7] = [
    (b"how", &[b"many", b"much", b"long"], 0),
    (b"step", &[b"by"], 11),
    (b"multi", &[b"step"], 11),
    (b"act", &[b"as"], 9),
    (b"you", &[b"are"], 9),
    (b"of", &[b"the"], OF_THE_FOLLOWING),
    (b"the", &[b"following"], OF_THE_FOLLOWING),
];

/// What a word contributes, packed in a u32 table value: its cue group (`N_CUES` for none) in bits 0..8,
/// the 1-based `BIGRAMS` entry it opens (0 for none) in bits 8..16, and in bits 16..24 the set of entries
/// (bit = 1-based position) it completes.
pub(super) const NO_WORD_INFO: u32 = N_CUES as u32;

/// Group counted when a word completes the bigram opened by entry `first` (index 0: none, the trash slot).
pub(super) const BIGRAM_GROUP: [usize; 8] = {
    let mut g = [N_CUES; 8];
    let mut k = 0;
    while k < BIGRAMS.len() {
        g[k + 1] = BIGRAMS[k].2;
        k += 1;
    }
    g
};

/// Lower-cased cue and bigram words -> packed `WordInfo` bits, keyed by `tokens::short_key` (all of these
/// words have at most 13 bytes), built once.
pub(super) fn word_table() -> &'static FlatMap<u128, u32> {
    static TABLE: OnceLock<FlatMap<u128, u32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut info: Vec<(&[u8], u32)> = Vec::new();
        let mut entry = |word: &'static [u8]| -> usize {
            if let Some(k) = info.iter().position(|(w, _)| *w == word) {
                return k;
            }
            info.push((word, NO_WORD_INFO));
            info.len() - 1
        };
        let mut slots = Vec::new();
        for (g, group) in CUE_GROUPS.iter().enumerate() {
            for w in group.iter() {
                let k = entry(w.as_bytes());
                slots.push((k, g));
            }
        }
        let mut opens = Vec::new();
        let mut completes = Vec::new();
        for (n, (first, seconds, _)) in BIGRAMS.iter().enumerate() {
            opens.push((entry(first), n + 1));
            for second in seconds.iter() {
                completes.push((entry(second), n + 1));
            }
        }
        for (k, g) in slots {
            // First group wins for a word listed twice.
            if info[k].1 & 0xff == NO_WORD_INFO {
                info[k].1 = (info[k].1 & !0xff) | g as u32;
            }
        }
        for (k, n) in opens {
            info[k].1 |= (n as u32) << 8;
        }
        for (k, n) in completes {
            info[k].1 |= 1 << (16 + n);
        }
        let mut table = FlatMap::with_capacity(info.len());
        for (w, bits) in info {
            table.insert(short_key(w), bits);
        }
        table
    })
}

/// What a lower-cased word (by `short_key`) contributes to the cue and bigram counts, for
/// `FeatureScan::spaced_word` (packed as in `word_table`).
#[inline(always)]
pub(crate) fn word_info(lower: u128) -> u32 {
    word_table().get(lower).unwrap_or(NO_WORD_INFO)
}
