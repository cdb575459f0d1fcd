//! What the verifier compares: a text's `Signature`, whole or lazily (`LazySignature`), and its numbers' digest.
//!
//! The lazy form computes the numbers first (most neighbours fail on them); the digest is what a cache keeps
//! with a stored prompt instead of its signature.

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock};

use super::code::split_code;
use super::lexicon::POLARITY_SLOTS;
#[cfg(test)]
use super::lexicon::LEXICON;
use super::numbers::numbers_in;
use super::scan::{analyse_prose, prose_options};
use super::unit::{narrow, Narrow, Units};
use super::words::fmix;
use super::MAX_VERIFIABLE_CHARS;

/// What the verifier compares, computed once per text. Word sets and the content-word sequence hold
/// 64-bit hashes of the words (`word_hash`), not the words: one allocation per set instead of one per
/// token; two different words would have to collide in 64 bits to be confused.
#[derive(Debug, Clone)]
pub struct Signature {
    pub(super) too_long: bool,
    pub(super) numbers: Vec<f64>,
    /// Per negation or polarity word (by its `Lexicon` index), how often it occurs.
    pub(super) polarity: [u16; POLARITY_SLOTS],
    pub(super) options: Vec<(char, String)>,
    pub(super) entities: Vec<String>,
    /// Hashes of the anchor words, in first-occurrence order.
    pub(super) anchors: Vec<u64>,
    pub(super) code: Vec<String>,
    /// The distinct hashes of `sequence`, sorted (`content`: only rules R6 and R8 need them).
    pub(super) content: OnceLock<Vec<u64>>,
    /// Hashes of every token, in text order (looked up only when the entities differ).
    pub(super) words: Vec<u64>,
    pub(super) sequence: Vec<u64>,
}

/// Equal signatures hold the same parts (`content` follows from `sequence`, computed or not).
impl PartialEq for Signature {
    fn eq(&self, other: &Signature) -> bool {
        self.too_long == other.too_long
            && self.numbers == other.numbers
            && self.polarity == other.polarity
            && self.options == other.options
            && self.entities == other.entities
            && self.anchors == other.anchors
            && self.code == other.code
            && self.words == other.words
            && self.sequence == other.sequence
    }
}

impl Signature {
    /// The distinct hashes of the content words, sorted (computed on first use).
    pub(super) fn content(&self) -> &[u64] {
        self.content.get_or_init(|| {
            let mut content = self.sequence.clone();
            content.sort_unstable();
            content.dedup();
            content
        })
    }
}

#[cfg(test)]
impl Signature {
    /// The polarity and negation words with their counts, by word (whatever the stored form).
    pub(super) fn polarity_counts(&self) -> Vec<(&'static str, u32)> {
        let mut counts: Vec<(&'static str, u32)> = (self.polarity.iter().enumerate())
            .filter(|(_, &n)| n > 0)
            .map(|(k, &n)| (LEXICON.polarity_words[k], n as u32))
            .collect();
        counts.sort();
        counts
    }
}

fn too_long(text: &str) -> bool {
    // A text holds at least one byte a char: most need no counting.
    text.len() > MAX_VERIFIABLE_CHARS && text.chars().count() > MAX_VERIFIABLE_CHARS
}

/// A prompt's signature computed only as far as comparisons need: most neighbours that fail, fail on
/// their numbers (R1), which take about a third of the work of the whole signature. `verify_lazy` gives
/// the same verdict as `verify` on whole signatures.
#[derive(Debug)]
pub struct LazySignature {
    text: String,
    pub(super) too_long: bool,
    /// The text split for the passes while the numbers are known and the rest not yet.
    split: Mutex<Option<Split>>,
    numbers: OnceLock<Vec<f64>>,
    /// The options (R3), found without the walk when the numbers agree (see `verify_lazy`).
    options: OnceLock<Vec<(char, String)>>,
    pub(super) full: OnceLock<Signature>,
}

/// A text as the passes read it: its prose (when code was split out of it, else the text is), its code
/// pieces, and its `Narrow` units (when the prose is not ASCII).
#[derive(Debug)]
struct Split {
    prose: Option<String>,
    code: Vec<String>,
    units: Option<Units>,
}

impl Split {
    fn new(text: &str) -> Split {
        let (prose, code) = split_code(text);
        let units = narrow(&prose);
        let prose = match prose {
            Cow::Owned(prose) => Some(prose),
            Cow::Borrowed(_) => None,
        };
        Split { prose, code, units }
    }

    /// The prose's units (`text`: the text this was split from).
    fn narrow<'a>(&'a self, text: &'a str) -> Narrow<'a> {
        Narrow::new(self.prose.as_deref().unwrap_or(text), &self.units)
    }
}

impl LazySignature {
    pub fn new(text: String) -> LazySignature {
        LazySignature {
            too_long: too_long(&text),
            text,
            split: Mutex::new(None),
            numbers: OnceLock::new(),
            options: OnceLock::new(),
            full: OnceLock::new(),
        }
    }

    pub(super) fn numbers(&self) -> &[f64] {
        match self.full.get() {
            Some(sig) => &sig.numbers,
            None => self.numbers.get_or_init(|| self.on_prose(|prose| numbers_in(prose.units))),
        }
    }

    /// The multiple-choice options (rule R3), without the walk over the prose when it has not run.
    pub(super) fn options(&self) -> &[(char, String)] {
        match self.full.get() {
            Some(sig) => &sig.options,
            None => self.options.get_or_init(|| self.on_prose(prose_options)),
        }
    }

    /// `f` of the prose's units, the text split first if no pass has split it yet (the split is kept for
    /// `full`, which in a lookup mostly follows).
    fn on_prose<T>(&self, f: impl FnOnce(&Narrow) -> T) -> T {
        let mut split = self.split.lock().unwrap_or_else(|e| e.into_inner());
        let split = split.get_or_insert_with(|| Split::new(&self.text));
        f(&split.narrow(&self.text))
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
        self.full.get_or_init(|| {
            let split = self.split.lock().unwrap_or_else(|e| e.into_inner()).take();
            analyse(&self.text, split, self.numbers.get().cloned(), self.options.get().cloned())
        })
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
    analyse(text, None, None, None)
}

/// `signature`, with the text's `Split` and the prose's numbers when they were already found (`numbers_in`
/// of the same text).
fn analyse(
    text: &str,
    split: Option<Split>,
    numbers: Option<Vec<f64>>,
    options: Option<Vec<(char, String)>>,
) -> Signature {
    if too_long(text) {
        return Signature {
            too_long: true,
            numbers: vec![],
            polarity: [0; POLARITY_SLOTS],
            options: vec![],
            entities: vec![],
            anchors: vec![],
            code: vec![],
            content: OnceLock::new(),
            words: vec![],
            sequence: vec![],
        };
    }
    let mut split = split.unwrap_or_else(|| Split::new(text));
    let code = std::mem::take(&mut split.code);
    analyse_prose(&split.narrow(text), code, numbers, options)
}
