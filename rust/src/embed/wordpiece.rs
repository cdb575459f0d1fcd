//! BERT uncased WordPiece as `all-MiniLM-L6-v2`'s `tokenizer.json` declares it, writing ids into a caller's buffer.
//!
//! Pure, and allocation-free per token: the pipeline of the `tokenizers` crate (BertNormalizer with clean_text,
//! Chinese-character isolation, accent stripping and lowercasing; BertPreTokenizer splitting on white space
//! and punctuation; greedy longest-match WordPiece with `##` continuations) written out as one pass over the
//! bytes. ASCII, most of every prompt, goes through a 128-entry class table; other chars take the full
//! Unicode path. Vocabulary pieces of up to 15 bytes are looked up by an integer key (no string hashing
//! or memcmp; pieces of up to 7 bytes, most of the vocabulary, in a smaller u64-keyed map). Parity: `reference`
//! (the first implementation) in the Rust tests, the `tokenizers` package in tests/native/test_embed.py.
//!
//! Here: the vocabulary and its keys. The pass over a text is in `scan`, the greedy longest match over one
//! word in `longest_match`, BERT's character classes in `classes`.

use rustc_hash::FxHashMap;

use crate::tokens::{short_key, FlatMap, SHORT_MAX};

mod classes;
mod longest_match;
mod scan;

// BERT's character predicates, for the reference tokenizer's parity tests (`embed::reference`).
#[cfg(test)]
pub(super) use classes::{is_chinese_char, is_control, is_punctuation};
pub use scan::WordPieceScan;

/// Longest piece kept in the u64-keyed map.
const TINY_MAX: usize = 7;

/// The bytes (at most 7) zero-padded little-endian with the length in the top byte: the low half of
/// `short_key` plus the length, one u64 per distinct byte string; the top bit stays clear.
#[inline(always)]
fn tiny_key(b: &[u8]) -> u64 {
    debug_assert!(b.len() <= TINY_MAX);
    short_key(b) as u64 | (b.len() as u64) << 56
}

/// Bit set in a short key for a continuation (`##`) piece; `short_key` leaves it clear (lengths <= 15).
const CONTINUATION: u128 = 1 << 127;
/// The same flag for `tiny_key`s (lengths <= 7).
const TINY_CONTINUATION: u64 = 1 << 63;

/// BERT-style WordPiece tokenizer (uncased) built from a `tokenizer.json`.
pub struct WordPiece {
    /// Pieces of at most `TINY_MAX` bytes by `tiny_key`, `TINY_CONTINUATION` set for `##` pieces (stored
    /// bare): 16-byte entries, half the cache footprint of the u128 map, for most of the vocabulary. Dense
    /// (load <= 4/5): 512 KB rather than 1 MB, so more of it is still cached when the next prompt arrives.
    tiny: FlatMap<u64, u32>,
    /// Pieces of `TINY_MAX + 1 ..= SHORT_MAX` bytes by `short_key`, `CONTINUATION` set for `##` pieces. Dense
    /// too: 9,417 such pieces in 16,384 32-byte slots (512 KB) rather than 32,768 (1 MB).
    short: FlatMap<u128, u32>,
    /// Longer word-initial pieces.
    long_start: FxHashMap<Box<[u8]>, u32>,
    /// Longer continuation pieces, without their `##` prefix.
    long_cont: FxHashMap<Box<[u8]>, u32>,
    /// Id of each ASCII punctuation char as a one-char word (`unk_id` when not in the vocabulary).
    ascii_single: [u32; 128],
    unk_id: u32,
    max_chars_per_word: usize,
    /// Longest piece in bytes (bounds the greedy search).
    max_piece_bytes: usize,
    vocab_size: usize,
}

/// How many vocabulary pieces, `prefix` stripped from continuations, have a byte length `fits`.
fn count_bare<'a>(pieces: impl Iterator<Item = &'a String>, prefix: &str, fits: impl Fn(usize) -> bool) -> usize {
    pieces
        .filter(|p| {
            let bare = match p.strip_prefix(prefix) {
                Some(rest) if !rest.is_empty() => rest,
                _ => p.as_str(),
            };
            fits(bare.len())
        })
        .count()
}

/// The word being collected: its normalised bytes (capped) and its length in chars.
struct Word {
    bytes: Vec<u8>,
    chars: usize,
}

impl WordPiece {
    /// Parses the `model` section of a Hugging Face `tokenizer.json` (WordPiece only).
    pub fn from_tokenizer_json(bytes: &[u8]) -> Result<WordPiece, String> {
        let root: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("tokenizer.json is not valid JSON: {e}"))?;
        let model = root.get("model").ok_or("tokenizer.json has no `model`")?;
        if model.get("type").and_then(|t| t.as_str()) != Some("WordPiece") {
            return Err("tokenizer.json model is not WordPiece".into());
        }
        let prefix = model
            .get("continuing_subword_prefix")
            .and_then(|p| p.as_str())
            .unwrap_or("##");
        let unk = model.get("unk_token").and_then(|p| p.as_str()).unwrap_or("[UNK]");
        let max_chars_per_word = model
            .get("max_input_chars_per_word")
            .and_then(|m| m.as_u64())
            .unwrap_or(100) as usize;
        let vocab = model
            .get("vocab")
            .and_then(|v| v.as_object())
            .ok_or("tokenizer.json has no vocab")?;
        let mut wp = WordPiece {
            tiny: FlatMap::dense(count_bare(vocab.keys(), prefix, |n| n <= TINY_MAX)),
            short: FlatMap::dense(count_bare(vocab.keys(), prefix, |n| n > TINY_MAX && n <= SHORT_MAX)),
            long_start: FxHashMap::default(),
            long_cont: FxHashMap::default(),
            ascii_single: [0; 128],
            unk_id: 0,
            max_chars_per_word,
            max_piece_bytes: 1,
            vocab_size: 0,
        };
        let mut unk_id = None;
        for (piece, id) in vocab {
            let id = id.as_u64().ok_or("vocab id is not an integer")? as u32;
            wp.vocab_size = wp.vocab_size.max(id as usize + 1);
            if piece == unk {
                unk_id = Some(id);
            }
            let (bare, cont) = match piece.strip_prefix(prefix) {
                Some(rest) if !rest.is_empty() => (rest.as_bytes(), true),
                _ => (piece.as_bytes(), false),
            };
            wp.max_piece_bytes = wp.max_piece_bytes.max(bare.len());
            if bare.len() <= TINY_MAX {
                wp.tiny
                    .insert(tiny_key(bare) | if cont { TINY_CONTINUATION } else { 0 }, id);
            } else if bare.len() <= SHORT_MAX {
                wp.short
                    .insert(short_key(bare) | if cont { CONTINUATION } else { 0 }, id);
            } else if cont {
                wp.long_cont.insert(bare.into(), id);
            } else {
                wp.long_start.insert(bare.into(), id);
            }
        }
        wp.unk_id = unk_id.ok_or("vocab has no unknown token")?;
        for b in 0..128u8 {
            wp.ascii_single[usize::from(b)] = wp.lookup(&[b], false).unwrap_or(wp.unk_id);
        }
        Ok(wp)
    }

    /// The id of the word-initial piece whose `short_key` is `key` (`len` bytes, at most `SHORT_MAX`), if any.
    #[inline(always)]
    pub(crate) fn whole_word(&self, key: u128, len: usize) -> Option<u32> {
        if len <= TINY_MAX {
            self.tiny.get(key as u64 | (len as u64) << 56)
        } else {
            self.short.get(key)
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    /// Appends the token ids of `text` to `ids` (no `[CLS]`/`[SEP]`).
    pub fn ids_into(&self, text: &str, ids: &mut Vec<u32>) {
        WordPieceScan::new(self, text, 0, usize::MAX).finish(ids);
    }

    /// Token ids of `text` as a vector (tests and debugging; the hot path uses `ids_into`).
    pub fn ids(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        self.ids_into(text, &mut out);
        out
    }

    #[inline]
    fn lookup(&self, piece: &[u8], cont: bool) -> Option<u32> {
        if piece.len() <= TINY_MAX {
            let flag = if cont { TINY_CONTINUATION } else { 0 };
            self.tiny.get(tiny_key(piece) | flag)
        } else if piece.len() <= SHORT_MAX {
            let flag = if cont { CONTINUATION } else { 0 };
            self.short.get(short_key(piece) | flag)
        } else if cont {
            self.long_cont.get(piece).copied()
        } else {
            self.long_start.get(piece).copied()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::lowercase_key;

    #[test]
    fn tiny_keys_are_distinct_per_byte_string() {
        let samples: Vec<Vec<u8>> = (0..=TINY_MAX)
            .flat_map(|n| [vec![0u8; n], vec![0x7fu8; n], (1..=n as u8).collect()])
            .collect();
        let keys: std::collections::HashSet<u64> = samples.iter().map(|s| tiny_key(s)).collect();
        assert_eq!(keys.len(), 1 + TINY_MAX * 3);
        assert!(keys.iter().all(|k| k & TINY_CONTINUATION == 0));
    }

    #[test]
    fn lowercase_key_equals_the_key_of_lowercased_bytes() {
        let samples: [&[u8]; 7] = [
            b"",
            b"A",
            b"Hello",
            b"ZzAa09@[`{",
            b"ABCDEFGHIJKLMNO",
            b"abcdefgh",
            b"XYZ123",
        ];
        for s in samples {
            assert_eq!(lowercase_key(short_key(s)), short_key(&s.to_ascii_lowercase()), "{s:?}");
        }
        for b in 0..0x80u8 {
            let s = [b; 15];
            assert_eq!(
                lowercase_key(short_key(&s)),
                short_key(&s.to_ascii_lowercase()),
                "{b:#x}"
            );
        }
    }
}
