//! Hashed word n-grams of a conversation text for the complexity router (pure: no I/O, no Python).
//!
//! Layout version `NGRAM_VERSION` (1):
//! - Text: the conversation text (`fastroute.prompt.conversation_text`), bounded like the structural features:
//!   the whole text up to `WINDOW_BYTES`, else its first and last `WINDOW_BYTES / 2` bytes (cut on UTF-8
//!   boundaries; no bigram spans the cut). A segment marker (`<user> `, `<system> `, `<tools>`...) at a line
//!   start is skipped, so the words are the messages' own.
//! - Words: maximal runs of alphanumeric characters or `_`, lower-cased, of at least 2 characters (single
//!   letters and digits, e.g. answer labels, carry no topic).
//! - N-grams: every word and every pair of adjacent words, hashed (FNV-1a, then a splitmix64 finaliser, with
//!   unigrams and bigrams in different hash domains) into `NGRAM_BUCKETS` buckets.
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
pub const WINDOW_BYTES: usize = 8 * 1024;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const UNIGRAM_DOMAIN: u64 = 0x9e37_79b9_7f4a_7c15;
const BIGRAM_DOMAIN: u64 = 0xc2b2_ae3d_27d4_eb4f;
const WORDS_PER_BLOCK: usize = 64;

fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn bucket_of(hash: u64) -> u32 {
    (splitmix64(hash) >> (64 - NGRAM_BITS)) as u32
}

/// Segments scanned for `text`: the whole text, or a head and a tail of `WINDOW_BYTES / 2` each.
fn window(text: &str) -> (&str, &str) {
    if text.len() <= WINDOW_BYTES {
        return (text, "");
    }
    let half = WINDOW_BYTES / 2;
    let mut head_end = half;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - half;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    (&text[..head_end], &text[tail_start..])
}

/// Calls `hit(bucket)` for every word unigram and bigram of one segment (buckets may repeat).
fn segment_buckets(segment: &str, hit: &mut impl FnMut(u32)) {
    let bytes = segment.as_bytes();
    let mut i = 0;
    let mut line_start = true;
    let mut previous: Option<u64> = None;
    let mut word_hash = FNV_OFFSET;
    let mut word_chars = 0usize;
    let mut finish = |word_hash: u64, word_chars: usize, previous: &mut Option<u64>| {
        if word_chars >= 2 {
            hit(bucket_of(word_hash ^ UNIGRAM_DOMAIN));
            if let Some(p) = *previous {
                hit(bucket_of(splitmix64(p ^ BIGRAM_DOMAIN) ^ word_hash));
            }
            *previous = Some(word_hash);
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        if line_start && b == b'<' && bytes.get(i + 1) != Some(&b'<') {
            // A segment marker: skip through its `>` (and one space), if the line has one.
            if let Some(end) = bytes[i..].iter().position(|&c| c == b'>' || c == b'\n') {
                if bytes[i + end] == b'>' {
                    i += end + 1;
                    if bytes.get(i) == Some(&b' ') {
                        i += 1;
                    }
                    line_start = false;
                    continue;
                }
            }
        }
        line_start = b == b'\n';
        if b < 0x80 {
            if b.is_ascii_alphanumeric() || b == b'_' {
                word_hash = (word_hash ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(FNV_PRIME);
                word_chars += 1;
            } else if word_chars > 0 {
                finish(word_hash, word_chars, &mut previous);
                word_hash = FNV_OFFSET;
                word_chars = 0;
            }
            i += 1;
            continue;
        }
        let c = segment[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
        if c.is_alphanumeric() {
            let mut buf = [0u8; 4];
            for lower in c.to_lowercase() {
                for &byte in lower.encode_utf8(&mut buf).as_bytes() {
                    word_hash = (word_hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
                }
            }
            word_chars += 1;
        } else if word_chars > 0 {
            finish(word_hash, word_chars, &mut previous);
            word_hash = FNV_OFFSET;
            word_chars = 0;
        }
        i += c.len_utf8();
    }
    finish(word_hash, word_chars, &mut previous);
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
        assert!(with_end.contains(&bucket_of(
            {
                let mut h = FNV_OFFSET;
                for &b in b"omega" {
                    h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
                }
                h
            } ^ UNIGRAM_DOMAIN
        )));
        let multi = "é".repeat(WINDOW_BYTES);
        let (head, tail) = window(&multi);
        assert!(head.len() <= WINDOW_BYTES / 2 && tail.len() <= WINDOW_BYTES / 2);
    }

    #[test]
    fn table_size_is_checked() {
        assert_eq!(NgramTable::new(vec![0.0; 3]).err(), Some(TableSizeError(3)));
    }
}
