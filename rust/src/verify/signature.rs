//! What the verifier compares: a text's `Signature`, whole or lazily (`LazySignature`), and its numbers' digest.
//!
//! The lazy form computes the numbers first (most neighbours fail on them); the digest is what a cache keeps
//! with a stored prompt instead of its signature.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use rustc_hash::FxHashSet;

use super::code::split_code;
use super::numbers::numbers_in;
use super::scan::analyse_prose;
use super::words::fmix;
use super::MAX_VERIFIABLE_CHARS;

/// What the verifier compares, computed once per text. Word sets and the content-word sequence hold
/// 64-bit hashes of the words (`word_hash`), not the words: one allocation per set instead of one per
/// token; two different words would have to collide in 64 bits to be confused.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub(super) too_long: bool,
    pub(super) numbers: Vec<f64>,
    pub(super) polarity: BTreeMap<&'static str, u32>,
    pub(super) options: Vec<(char, String)>,
    pub(super) entities: Vec<String>,
    /// Hashes of the anchor words, in first-occurrence order.
    pub(super) anchors: Vec<u64>,
    pub(super) code: Vec<String>,
    pub(super) content: FxHashSet<u64>,
    /// Hashes of every token, in text order (looked up only when the entities differ).
    pub(super) words: Vec<u64>,
    pub(super) sequence: Vec<u64>,
}

fn too_long(text: &str) -> bool {
    text.chars().count() > MAX_VERIFIABLE_CHARS
}

/// A prompt's signature computed only as far as comparisons need: most neighbours that fail, fail on
/// their numbers (R1), which take about a third of the work of the whole signature. `verify_lazy` gives
/// the same verdict as `verify` on whole signatures.
#[derive(Debug)]
pub struct LazySignature {
    text: String,
    pub(super) too_long: bool,
    numbers: OnceLock<Vec<f64>>,
    pub(super) full: OnceLock<Signature>,
}

impl LazySignature {
    pub fn new(text: String) -> LazySignature {
        LazySignature {
            too_long: too_long(&text),
            text,
            numbers: OnceLock::new(),
            full: OnceLock::new(),
        }
    }

    pub(super) fn numbers(&self) -> &[f64] {
        match self.full.get() {
            Some(sig) => &sig.numbers,
            None => self
                .numbers
                .get_or_init(|| prose_numbers(&split_code(&self.text).0)),
        }
    }

    /// `digest_numbers` of the prompt's numbers (computed once), or 0 for a prompt too long to verify
    /// (R7 comes before R1). Two prompts whose digests are both non-zero and differ fail on R1.
    pub fn numbers_digest(&self) -> u64 {
        if self.too_long {
            0
        } else {
            digest_numbers(self.numbers())
        }
    }

    /// The whole signature (computed on first use; numbers already found are reused).
    pub fn full(&self) -> &Signature {
        self.full
            .get_or_init(|| analyse(&self.text, self.numbers.get().cloned()))
    }
}

/// A digest of a number sequence: equal sequences give equal digests (-0 counts as 0, as `==` says), so
/// two different digests mean different numbers (rule R1). Never 0 (which callers use for "unknown").
fn digest_numbers(numbers: &[f64]) -> u64 {
    let mut h = numbers.len() as u64;
    for &x in numbers {
        let bits = if x == 0.0 { 0 } else { x.to_bits() };
        h = fmix(h.rotate_left(23) ^ bits).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
    fmix(h).max(1)
}

/// The digest of `text`'s numbers (`LazySignature::numbers_digest`), for a cache to keep with a stored
/// prompt instead of its signature: a lookup then rules out most neighbours (R1) without reading them.
pub fn numbers_digest(text: &str) -> u64 {
    LazySignature::new(text.to_string()).numbers_digest()
}

/// Analyses `text` once for `verify`.
pub fn signature(text: &str) -> Signature {
    analyse(text, None)
}

/// `signature`, with the prose's numbers when they were already found (`numbers_in` of the same text).
fn analyse(text: &str, numbers: Option<Vec<f64>>) -> Signature {
    if too_long(text) {
        return Signature {
            too_long: true,
            numbers: vec![],
            polarity: BTreeMap::new(),
            options: vec![],
            entities: vec![],
            anchors: vec![],
            code: vec![],
            content: FxHashSet::default(),
            words: vec![],
            sequence: vec![],
        };
    }
    let (prose, code) = split_code(text);
    if prose.is_ascii() {
        analyse_prose(&prose, prose.as_bytes(), code, numbers)
    } else {
        analyse_prose(&prose, &prose.chars().collect::<Vec<char>>(), code, numbers)
    }
}

/// `numbers_in` of the prose, on its bytes when it is ASCII.
fn prose_numbers(prose: &str) -> Vec<f64> {
    if prose.is_ascii() {
        numbers_in(prose.as_bytes())
    } else {
        numbers_in(&prose.chars().collect::<Vec<char>>())
    }
}
