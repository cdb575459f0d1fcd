//! Hashed word n-grams of a conversation text for the complexity router (pure: no I/O, no Python).
//!
//! Layout version `NGRAM_VERSION` (1):
//! - Text: the conversation text (`fastroute.prompt.conversation_text`), bounded like the structural features
//!   but on half their window (topic words need no more, and the n-grams cost about as much per byte): the whole
//!   text up to `WINDOW_BYTES` (4 KiB), else its first and last `WINDOW_BYTES / 2` bytes (cut on UTF-8
//!   boundaries; no bigram spans the cut). A segment marker (`<user> `, `<system> `, `<tools>`...) at a line
//!   start is skipped, so the words are the messages' own.
//! - Words: maximal runs of alphanumeric characters or `_`, lower-cased, of at least 2 characters (single
//!   letters and digits, e.g. answer labels, carry no topic).
//! - N-grams: every word and every pair of adjacent words, hashed (the word's lower-cased bytes eight at a time,
//!   rotate-xor-multiply; a bucket is the top bits of one more multiply, with different multipliers for
//!   unigrams and bigrams) into `NGRAM_BUCKETS` buckets.
//! - Vector: 1 for each bucket hit at least once, L2-normalised (each hit bucket is `1 / sqrt(distinct)`).
//!
//! `NgramTable` scores a text against a weight per bucket without building the vector: one pass, a bitset
//! for distinct buckets, no allocation.

/// Layout version of the n-gram vector; models record it and refuse another.
pub const NGRAM_VERSION: u32 = 1;
/// log2 of the number of hash buckets.
pub const NGRAM_BITS: u32 = 14;
/// Length of the n-gram vector.
pub const NGRAM_BUCKETS: usize = 1 << NGRAM_BITS;
/// Bytes of text read at most (head and tail halves beyond it).
pub const WINDOW_BYTES: usize = 4 * 1024;

const WORD_SEED: u64 = 0xcbf2_9ce4_8422_2325;
// Odd multipliers with well-mixed high bits (FxHash's, the golden ratio, murmur3's): a bucket is the top
// `NGRAM_BITS` bits of one product, so one multiply per chunk and one per n-gram is all the hashing there is.
const WORD_MULTIPLIER: u64 = 0x517c_c1b7_2722_0a95;
const UNIGRAM_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
const BIGRAM_MULTIPLIER: u64 = 0xc2b2_ae3d_27d4_eb4f;
const BIGRAM_DOMAIN: u64 = 0x94d0_49bb_1331_11eb;
const WORDS_PER_BLOCK: usize = 64;

fn unigram_bucket(word: u64) -> u32 {
    (word.wrapping_mul(UNIGRAM_MULTIPLIER) >> (64 - NGRAM_BITS)) as u32
}

fn bigram_bucket(previous: u64, word: u64) -> u32 {
    ((previous.rotate_left(32) ^ word ^ BIGRAM_DOMAIN).wrapping_mul(BIGRAM_MULTIPLIER) >> (64 - NGRAM_BITS)) as u32
}

/// Segments scanned for `text`: the whole text, or a head and a tail of `WINDOW_BYTES / 2` each.
fn window(text: &str) -> (&str, &str) {
    crate::features::head_and_tail(text, WINDOW_BYTES)
}

/// Incremental hash of one word's lower-cased UTF-8 bytes, eight bytes per multiply.
struct WordHash {
    hash: u64,
    chunk: u64,
    shift: u32,
    chars: usize,
}

impl WordHash {
    fn new() -> Self {
        WordHash { hash: WORD_SEED, chunk: 0, shift: 0, chars: 0 }
    }

    #[inline(always)]
    fn push_byte(&mut self, byte: u8) {
        self.chunk |= u64::from(byte) << self.shift;
        self.shift += 8;
        if self.shift == 64 {
            self.flush();
        }
    }

    #[inline(always)]
    fn flush(&mut self) {
        self.hash = (self.hash.rotate_left(5) ^ self.chunk).wrapping_mul(WORD_MULTIPLIER);
        self.chunk = 0;
        self.shift = 0;
    }

    fn finish(mut self) -> u64 {
        if self.shift > 0 {
            self.flush();
        }
        self.hash
    }
}

/// Lower-cased ASCII word byte, or 0 for an ASCII byte that is not part of a word.
const fn ascii_word_table() -> [u8; 128] {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = if c.is_ascii_uppercase() {
            c.to_ascii_lowercase()
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            c
        } else {
            0
        };
        b += 1;
    }
    table
}

const ASCII_WORD: [u8; 128] = ascii_word_table();

/// Length of the segment marker (`<role> `, `<tools>`...) that starts at `bytes[0]`, or 0 if there is none.
fn marker_len(bytes: &[u8]) -> usize {
    if bytes.first() != Some(&b'<') || bytes.get(1) == Some(&b'<') {
        return 0;
    }
    match bytes.iter().position(|&c| c == b'>' || c == b'\n') {
        Some(end) if bytes[end] == b'>' => end + 1 + usize::from(bytes.get(end + 1) == Some(&b' ')),
        _ => 0,
    }
}

/// Calls `hit(bucket)` for every word unigram and bigram of one segment (buckets may repeat).
fn segment_buckets(segment: &str, hit: &mut impl FnMut(u32)) {
    let bytes = segment.as_bytes();
    let mut i = marker_len(bytes);
    let mut previous: Option<u64> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 && ASCII_WORD[usize::from(b)] == 0 {
            i += 1;
            if b == b'\n' {
                i += marker_len(&bytes[i..]);
            }
            continue;
        }
        // A word may start here: take word characters until the first non-word one.
        let mut word = WordHash::new();
        while i < bytes.len() {
            let b = bytes[i];
            if b < 0x80 {
                let lower = ASCII_WORD[usize::from(b)];
                if lower == 0 {
                    break;
                }
                word.push_byte(lower);
                word.chars += 1;
                i += 1;
                continue;
            }
            let c = segment[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
            if !c.is_alphanumeric() {
                if word.chars == 0 {
                    i += c.len_utf8(); // a non-word character outside a word: skip it
                }
                break;
            }
            let mut buf = [0u8; 4];
            for lower in c.to_lowercase() {
                for &byte in lower.encode_utf8(&mut buf).as_bytes() {
                    word.push_byte(byte);
                }
            }
            word.chars += 1;
            i += c.len_utf8();
        }
        if word.chars >= 2 {
            let hash = word.finish();
            hit(unigram_bucket(hash));
            if let Some(p) = previous {
                hit(bigram_bucket(p, hash));
            }
            previous = Some(hash);
        }
    }
}

/// Calls `hit(bucket)` for every n-gram of `text`'s window (buckets may repeat).
pub fn for_each_bucket(text: &str, mut hit: impl FnMut(u32)) {
    let (head, tail) = window(text);
    segment_buckets(head, &mut hit);
    if !tail.is_empty() {
        segment_buckets(tail, &mut hit);
    }
}

/// Bitset over the buckets: distinct-bucket bookkeeping without allocation per call.
struct Seen([u64; NGRAM_BUCKETS / WORDS_PER_BLOCK]);

impl Seen {
    fn new() -> Self {
        Seen([0; NGRAM_BUCKETS / WORDS_PER_BLOCK])
    }

    /// True the first time `bucket` is inserted.
    fn insert(&mut self, bucket: u32) -> bool {
        let (word, bit) = ((bucket >> 6) as usize, 1u64 << (bucket & 63));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }
}

/// Distinct buckets of `text`, sorted ascending; each has value `1 / sqrt(len)` in the n-gram vector.
pub fn distinct_buckets(text: &str) -> Vec<u32> {
    let mut seen = Seen::new();
    let mut out = Vec::new();
    for_each_bucket(text, |b| {
        if seen.insert(b) {
            out.push(b);
        }
    });
    out.sort_unstable();
    out
}

/// The dense n-gram vector of `text` (length `NGRAM_BUCKETS`) written into `out`.
pub fn vector(text: &str, out: &mut [f32]) {
    out.iter_mut().for_each(|v| *v = 0.0);
    let buckets = distinct_buckets(text);
    if buckets.is_empty() {
        return;
    }
    let value = (1.0 / (buckets.len() as f64).sqrt()) as f32;
    for b in buckets {
        out[b as usize] = value;
    }
}

/// Error for a weight table of the wrong length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSizeError(pub usize);

impl std::fmt::Display for TableSizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n-gram weight table must have {NGRAM_BUCKETS} entries, got {}", self.0)
    }
}

impl std::error::Error for TableSizeError {}

/// One weight per bucket: `dot(text)` is the n-gram vector of `text` times the weights.
pub struct NgramTable {
    weights: Vec<f32>,
}

impl NgramTable {
    pub fn new(weights: Vec<f32>) -> Result<Self, TableSizeError> {
        if weights.len() != NGRAM_BUCKETS {
            return Err(TableSizeError(weights.len()));
        }
        Ok(NgramTable { weights })
    }

    /// `vector(text) . weights`, summed in f64 over distinct buckets in one pass (0 for a text without words).
    pub fn dot(&self, text: &str) -> f64 {
        let mut seen = Seen::new();
        let mut sum = 0.0f64;
        let mut distinct = 0usize;
        for_each_bucket(text, |b| {
            if seen.insert(b) {
                sum += f64::from(self.weights[b as usize]);
                distinct += 1;
            }
        });
        if distinct == 0 {
            0.0
        } else {
            sum / (distinct as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets_of(text: &str) -> Vec<u32> {
        distinct_buckets(text)
    }

    #[test]
    fn words_are_case_insensitive_and_markers_are_skipped() {
        assert_eq!(buckets_of("<user> Solve THE equation"), buckets_of("solve the equation"));
        assert_eq!(buckets_of("<system> be brief\n<user> hi there"), buckets_of("be brief\nhi there"));
        // An escaped `<<user>` line is content, not a marker: its word counts.
        assert_ne!(buckets_of("<<user> hi there"), buckets_of("hi there"));
    }

    #[test]
    fn unigrams_and_bigrams_are_counted_once() {
        // "aa bb": aa, bb, aa_bb. Repeating the phrase adds the bigram bb_aa only.
        assert_eq!(buckets_of("aa bb").len(), 3);
        assert_eq!(buckets_of("aa bb aa bb").len(), 4);
        assert!(buckets_of("x 1 ? !").is_empty(), "single characters are not words");
    }

    #[test]
    fn word_order_changes_bigrams_only() {
        let ab = buckets_of("alpha beta");
        let ba = buckets_of("beta alpha");
        assert_eq!(ab.len(), 3);
        assert_eq!(ab.iter().filter(|b| ba.contains(b)).count(), 2);
    }

    #[test]
    fn unicode_words_lowercase() {
        assert_eq!(buckets_of("ÉCOLE Straße"), buckets_of("école straße"));
        assert_eq!(buckets_of("日本語 テキスト").len(), 3);
    }

    #[test]
    fn vector_is_unit_length_and_dot_matches_it() {
        let text = "<user> Write a Python function that sorts a list, then explain its complexity.";
        let mut v = vec![0.0f32; NGRAM_BUCKETS];
        vector(text, &mut v);
        let norm: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        let weights: Vec<f32> = (0..NGRAM_BUCKETS).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let expected: f64 = v.iter().zip(&weights).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
        let table = NgramTable::new(weights).unwrap();
        assert!((table.dot(text) - expected).abs() < 1e-5);
        assert_eq!(table.dot("? !"), 0.0);
    }

    #[test]
    fn long_texts_read_a_bounded_window() {
        let long = "alpha beta ".repeat(10_000) + "omega";
        let with_end = buckets_of(&long);
        let mut omega = WordHash::new();
        b"omega".iter().for_each(|&b| omega.push_byte(b));
        let omega = unigram_bucket(omega.finish());
        assert!(with_end.contains(&omega));
        assert!(!buckets_of(&"alpha beta ".repeat(10_000)).contains(&omega));
        let multi = "é".repeat(WINDOW_BYTES);
        let (head, tail) = window(&multi);
        assert!(head.len() <= WINDOW_BYTES / 2 && tail.len() <= WINDOW_BYTES / 2);
    }

    #[test]
    fn table_size_is_checked() {
        assert_eq!(NgramTable::new(vec![0.0; 3]).err(), Some(TableSizeError(3)));
    }
}
