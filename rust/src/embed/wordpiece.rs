//! BERT uncased WordPiece as `all-MiniLM-L6-v2`'s `tokenizer.json` declares it, writing ids into a caller's buffer.
//!
//! Pure, and allocation-free per token: the pipeline of the `tokenizers` crate (BertNormalizer with clean_text,
//! Chinese-character isolation, accent stripping and lowercasing; BertPreTokenizer splitting on white space
//! and punctuation; greedy longest-match WordPiece with `##` continuations) written out as one pass over the
//! bytes. ASCII, most of every prompt, goes through a 128-entry class table; other chars take the full
//! Unicode path. Vocabulary pieces of up to 15 bytes are looked up by an integer key (no string hashing
//! or memcmp; pieces of up to 7 bytes, most of the vocabulary, in a smaller u64-keyed map). Parity: `reference` (the first implementation) in the Rust tests, the `tokenizers` package
//! in tests/native/test_embed.py.

use rustc_hash::FxHashMap;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

use crate::tokens::{ascii_range_mask, loaded_key, lowercase_key, short_key, short_key_at, FlatMap, SHORT_MAX};

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

/// ASCII byte classes after BERT's clean_text: dropped control, word char, white space, punctuation.
const DROP: u8 = 0;
const WORD: u8 = 1;
const SPACE: u8 = 2;
const PUNCT: u8 = 3;

static ASCII_CLASS: [u8; 128] = {
    let mut t = [DROP; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphanumeric() {
            WORD
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            SPACE
        } else if b.is_ascii_punctuation() {
            PUNCT
        } else {
            // The other ASCII controls (incl. \x0b, \x0c, DEL) are Cc: clean_text removes them.
            DROP
        };
        i += 1;
    }
    t
};

/// BERT-style WordPiece tokenizer (uncased) built from a `tokenizer.json`.
pub struct WordPiece {
    /// Pieces of at most `TINY_MAX` bytes by `tiny_key`, `TINY_CONTINUATION` set for `##` pieces (stored
    /// bare): 16-byte entries, half the cache footprint of the u128 map, for most of the vocabulary.
    tiny: FlatMap<u64, u32>,
    /// Pieces of `TINY_MAX + 1 ..= SHORT_MAX` bytes by `short_key`, `CONTINUATION` set for `##` pieces.
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

/// WordPiece over one text in stages, for a caller that finds most of its words itself
/// (`Analyzer::analyze` takes them from the token count's scan): `spaced_word` takes such a word, `finish`
/// tokenises whatever the caller did not hand over. The ids equal `WordPiece::ids_into`'s.
pub struct WordPieceScan<'a> {
    wp: &'a WordPiece,
    text: &'a str,
    /// Bytes before `at` are tokenised (their ids pushed, or the word under way in `word`).
    at: usize,
    word: Word,
}

impl<'a> WordPieceScan<'a> {
    /// Tokenises `text[start..]` (`start` a char boundary).
    pub fn new(wp: &'a WordPiece, text: &'a str, start: usize) -> WordPieceScan<'a> {
        WordPieceScan {
            wp,
            text,
            at: start,
            word: Word {
                bytes: Vec::with_capacity(64),
                chars: 0,
            },
        }
    }

    /// The `len` ASCII letters at `start`, just after a space, whose lower-cased `short_key` is `key`: tokenises
    /// the text up to them, then the word when it ends there (white space or punctuation follows): `whole` if
    /// the caller knows it (`WordPiece::whole_word`), else looked up or split from `key`. Starts before the
    /// scan's own start are ignored; calls come in text order.
    #[inline(always)]
    pub fn spaced_word(&mut self, start: usize, len: usize, key: u128, whole: Option<u32>, ids: &mut Vec<u32>) {
        let bytes = self.text.as_bytes();
        debug_assert!(start > 0 && bytes[start - 1] == b' ' && len <= SHORT_MAX);
        let Some(&next) = bytes.get(start + len) else { return };
        if start < self.at || next >= 0x80 || !matches!(ASCII_CLASS[usize::from(next)], SPACE | PUNCT) {
            return;
        }
        let wp = self.wp;
        // The space before `start` ends any word under way, so the word starts with an empty buffer, as in
        // `ascii_word`. When that space is all that is left (most words), the last word was flushed already.
        if self.at + 1 != start || self.word.chars != 0 {
            wp.ids_until(self.text, &mut self.at, start, &mut self.word, ids);
        }
        debug_assert!(self.word.chars == 0);
        self.at = start;
        if len > wp.max_chars_per_word {
            return;
        }
        match whole.or_else(|| wp.whole_word(key, len)) {
            Some(id) => ids.push(id),
            None => wp.short_ascii_word_ids(key, len, ids),
        }
        self.at = start + len;
    }

    /// Tokenises the rest of the text.
    pub fn finish(mut self, ids: &mut Vec<u32>) {
        let end = self.text.len();
        self.wp.ids_until(self.text, &mut self.at, end, &mut self.word, ids);
        self.wp.flush(&mut self.word, ids);
    }
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
            tiny: FlatMap::with_capacity(count_bare(vocab.keys(), prefix, |n| n <= TINY_MAX)),
            short: FlatMap::with_capacity(count_bare(vocab.keys(), prefix, |n| n > TINY_MAX && n <= SHORT_MAX)),
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
        WordPieceScan::new(self, text, 0).finish(ids);
    }

    /// Tokenises `text[*at..to]` into `ids`, `word` holding the word under way; `*at` ends at `to`. `to` is the
    /// text's end or follows a space (no word runs across it).
    #[inline(always)]
    fn ids_until(&self, text: &str, at: &mut usize, to: usize, word: &mut Word, ids: &mut Vec<u32>) {
        let bytes = text.as_bytes();
        debug_assert!(to == bytes.len() || bytes[to - 1] == b' ');
        let mut i = *at;
        while i < to {
            let b = bytes[i];
            if b < 0x80 {
                let class = ASCII_CLASS[usize::from(b)];
                if class == WORD && word.chars == 0 {
                    i = self.ascii_word(bytes, i, word, ids);
                    // Words separated by single spaces, one after the other (a space between whole words
                    // only ends a word that is already flushed).
                    while word.chars == 0
                        && i + 1 < to
                        && bytes[i] == b' '
                        && bytes[i + 1] < 0x80
                        && ASCII_CLASS[usize::from(bytes[i + 1])] == WORD
                    {
                        i = self.ascii_word(bytes, i + 1, word, ids);
                    }
                    continue;
                }
                match class {
                    WORD => self.push(word, b.to_ascii_lowercase()),
                    SPACE => self.flush(word, ids),
                    PUNCT => {
                        self.flush(word, ids);
                        ids.push(self.ascii_single[usize::from(b)]);
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            let Some(c) = text[i..].chars().next() else { break };
            i += c.len_utf8();
            self.non_ascii(c, word, ids);
        }
        *at = i;
    }

    /// The fast path for a word that starts with an ASCII letter or digit at `start`: when the whole word is
    /// an ASCII run that is a vocabulary piece, its id is looked up straight from the text (lower-cased
    /// inside the integer key, nothing copied). Otherwise the run goes into `word` for the general path.
    /// Returns where scanning resumes.
    #[inline(always)]
    fn ascii_word(&self, bytes: &[u8], start: usize, word: &mut Word, ids: &mut Vec<u32>) -> usize {
        // A run shorter than 16 bytes with 16 readable: its end, its key and what follows it from one load,
        // without a loop or a branch on its length.
        if let Some(chunk) = bytes.get(start..start + 16) {
            let mut w = [0u8; 16];
            w.copy_from_slice(chunk);
            let w = u128::from_le_bytes(w);
            let (alnum_lo, letters_lo) = alnum_and_letter_masks(w as u64);
            let (alnum_hi, letters_hi) = alnum_and_letter_masks((w >> 64) as u64);
            let alnum = u128::from(alnum_lo) | u128::from(alnum_hi) << 64;
            // Setting a letter's 0x20 bit lower-cases it (the letter lanes' high bits, shifted down to 0x20).
            let lower = w | (u128::from(letters_lo) | u128::from(letters_hi) << 64) >> 2;
            let others = !alnum & (u128::from(HIGH) << 64 | u128::from(HIGH));
            if others != 0 {
                let n = (others.trailing_zeros() / 8) as usize;
                let next = chunk[n];
                if next < 0x80 && matches!(ASCII_CLASS[usize::from(next)], SPACE | PUNCT) && n <= self.max_chars_per_word
                {
                    let key = loaded_key(lower, n);
                    let found = if n <= TINY_MAX {
                        self.tiny.get(key as u64 | (n as u64) << 56)
                    } else {
                        self.short.get(key)
                    };
                    match found {
                        Some(id) => ids.push(id),
                        None => self.short_ascii_word_ids(key, n, ids),
                    }
                    return start + n;
                }
                for &b in &chunk[..n] {
                    self.push(word, b.to_ascii_lowercase());
                }
                return start + n;
            }
        }
        let mut end = start + 1;
        // Eight bytes at a time while they are all ASCII letters or digits, then byte by byte.
        while let Some(chunk) = bytes.get(end..end + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let hits = alnum_mask(u64::from_le_bytes(w));
            if hits != HIGH {
                end += ((!hits & HIGH).trailing_zeros() / 8) as usize;
                break;
            }
            end += 8;
        }
        while end < bytes.len() && bytes[end] < 0x80 && ASCII_CLASS[usize::from(bytes[end])] == WORD {
            end += 1;
        }
        let run = &bytes[start..end];
        // The word ends here only if white space, punctuation or the text's end follows (a dropped control
        // char or a non-ASCII char may continue it).
        let ends = bytes
            .get(end)
            .is_none_or(|&n| n < 0x80 && matches!(ASCII_CLASS[usize::from(n)], SPACE | PUNCT));
        if ends && run.len() <= SHORT_MAX && run.len() <= self.max_chars_per_word {
            let key = lowercase_key(short_key_at(bytes, start, run.len()));
            let found = if run.len() <= TINY_MAX {
                self.tiny.get(key as u64 | (run.len() as u64) << 56)
            } else {
                self.short.get(key)
            };
            if let Some(id) = found {
                ids.push(id);
                return end;
            }
        }
        for &b in run {
            self.push(word, b.to_ascii_lowercase());
        }
        end
    }

    /// `word_ids` for a whole ASCII word of `n` < 16 bytes that is not itself a vocabulary piece, given as the
    /// `short_key` of its lower-cased bytes: every candidate piece's key is cut from that one integer (no copy
    /// of the word, no key built byte by byte). The same greedy longest-match as `word_ids`.
    fn short_ascii_word_ids(&self, word: u128, n: usize, ids: &mut Vec<u32>) {
        debug_assert!(n <= SHORT_MAX && n <= self.max_chars_per_word);
        let mark = ids.len();
        let mut start = 0;
        while start < n {
            let rest = word >> (8 * start);
            let mut len = (n - start).min(self.max_piece_bytes);
            if start == 0 && len == n {
                // The caller looked the whole word up already.
                len -= 1;
            }
            loop {
                if len == 0 {
                    ids.truncate(mark);
                    ids.push(self.unk_id);
                    return;
                }
                // Bytes above `len` (later letters, the length byte) are masked off.
                let bytes = rest & ((1u128 << (8 * len)) - 1);
                let found = if len <= TINY_MAX {
                    let flag = if start > 0 { TINY_CONTINUATION } else { 0 };
                    self.tiny.get(bytes as u64 | (len as u64) << 56 | flag)
                } else {
                    let flag = if start > 0 { CONTINUATION } else { 0 };
                    self.short.get(bytes | (len as u128) << 120 | flag)
                };
                if let Some(id) = found {
                    ids.push(id);
                    start += len;
                    break;
                }
                len -= 1;
            }
        }
    }

    /// Token ids of `text` as a vector (tests and debugging; the hot path uses `ids_into`).
    pub fn ids(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        self.ids_into(text, &mut out);
        out
    }

    /// One non-ASCII char through clean_text, Chinese isolation, accent stripping, lowercasing and splitting.
    fn non_ascii(&self, c: char, word: &mut Word, ids: &mut Vec<u32>) {
        // clean_text: drop U+FFFD and control/format characters; white space ends the word.
        if c == '\u{fffd}' || is_control(c) {
            return;
        }
        if c.is_whitespace() {
            self.flush(word, ids);
            return;
        }
        if is_chinese_char(c) {
            self.flush(word, ids);
            self.push_char(word, c);
            self.flush(word, ids);
            return;
        }
        // strip_accents (NFD, drop non-spacing marks) then lowercase, as the normalizer does.
        for d in std::iter::once(c).nfd() {
            if d.is_mark_nonspacing() {
                continue;
            }
            for l in d.to_lowercase() {
                if l.is_whitespace() {
                    self.flush(word, ids);
                } else if is_punctuation(l) {
                    self.flush(word, ids);
                    self.push_char(word, l);
                    self.flush(word, ids);
                } else {
                    self.push_char(word, l);
                }
            }
        }
    }

    /// Adds one ASCII byte to the word; bytes past the char limit are only counted (the word is [UNK]).
    #[inline(always)]
    fn push(&self, word: &mut Word, b: u8) {
        word.chars += 1;
        if word.chars <= self.max_chars_per_word {
            word.bytes.push(b);
        }
    }

    fn push_char(&self, word: &mut Word, c: char) {
        word.chars += 1;
        if word.chars <= self.max_chars_per_word {
            let mut buf = [0u8; 4];
            word.bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }

    #[inline(always)]
    fn flush(&self, word: &mut Word, ids: &mut Vec<u32>) {
        if word.chars > 0 {
            self.word_ids(word, ids);
            word.bytes.clear();
            word.chars = 0;
        }
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

    /// Greedy longest-match-first WordPiece over one normalised word; an unmatched remainder makes the whole
    /// word one [UNK], as in `tokenizers`.
    fn word_ids(&self, word: &Word, ids: &mut Vec<u32>) {
        if word.chars > self.max_chars_per_word {
            ids.push(self.unk_id);
            return;
        }
        let w = word.bytes.as_slice();
        // The commonest case: the whole word is a vocabulary piece.
        if let Some(id) = self.lookup(w, false) {
            ids.push(id);
            return;
        }
        let mark = ids.len();
        let mut start = 0usize;
        while start < w.len() {
            let mut end = w.len().min(start + self.max_piece_bytes);
            loop {
                if end == start {
                    ids.truncate(mark);
                    ids.push(self.unk_id);
                    return;
                }
                // A char boundary: the end of the word or a byte that is not a UTF-8 continuation byte.
                if end == w.len() || (w[end] as i8) >= -0x40 {
                    if let Some(id) = self.lookup(&w[start..end], start > 0) {
                        ids.push(id);
                        start = end;
                        break;
                    }
                }
                end -= 1;
            }
        }
    }
}

const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is an ASCII letter or digit. Lanes are masked to 7 bits first, so
/// no addition or subtraction carries or borrows across bytes.
#[inline(always)]
fn alnum_mask(w: u64) -> u64 {
    alnum_and_letter_masks(w).0
}

/// `alnum_mask(w)`, and the high bit of each byte that is an ASCII letter.
#[inline(always)]
fn alnum_and_letter_masks(w: u64) -> (u64, u64) {
    let letters = ascii_range_mask(w, b'a', b'z', 0x20);
    (letters | ascii_range_mask(w, b'0', b'9', 0), letters)
}

/// BERT's `_is_control`: other-category characters except tab, newline and carriage return.
pub(super) fn is_control(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => false,
        '\0' => true,
        _ => c.is_other(),
    }
}

/// BERT's punctuation: every ASCII non-alphanumeric printable character plus Unicode P* categories.
pub(super) fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK ideograph blocks that BERT isolates as single-character words.
pub(super) fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn alnum_mask_matches_the_byte_classes() {
        for b in 0..=255u8 {
            for lane in 0..8 {
                let mut w = [b'.'; 8];
                w[lane] = b;
                w[(lane + 3) % 8] = 0xff;
                let mask = alnum_mask(u64::from_le_bytes(w));
                let expect = b < 0x80 && ASCII_CLASS[usize::from(b)] == WORD;
                assert_eq!(mask >> (lane * 8 + 7) & 1 == 1, expect, "byte {b:#x} lane {lane}");
                assert_eq!(mask & !HIGH, 0);
                if expect {
                    let letters = alnum_and_letter_masks(u64::from_le_bytes(w)).1;
                    let lower = (u64::from_le_bytes(w) | letters >> 2).to_le_bytes()[lane];
                    assert_eq!(lower, b.to_ascii_lowercase(), "byte {b:#x} lane {lane}");
                }
            }
        }
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
