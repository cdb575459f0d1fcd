//! The complexity classifier's feature vector (versioned): cheap structure and cue statistics of a prompt.
//!
//! Pure: no I/O, no allocation per call. The router model card records `FEATURE_VERSION`; the scorer refuses a
//! model trained on another version, so bump it whenever the meaning of any slot changes.
//!
//! # Version 2 (`FEATURE_DIM` = 40), slot by slot (names in `FEATURE_NAMES`)
//! (Version 1 had the same slots over a 16 KiB window: too slow for the 50 µs budget at 16,000 tokens.)
//! Sizes and counts are measured on a bounded *window*: the whole text up to `WINDOW_BYTES`, else its
//! first and last `WINDOW_BYTES / 2` bytes (cut on UTF-8 boundaries). Counts seen in the window are scaled by
//! `total / window` so they estimate the whole text; fractions are window fractions. This keeps the cost
//! O(1) in the prompt length (a 16,000-token prompt costs the same as a 2,000-token one).
//! - 0 `ln_bytes`: ln(1 + UTF-8 bytes of the whole text).
//! - 1 `ln_words`, 2 `ln_lines`, 3 `ln_numbers`: ln(1 + estimated count) of words (ASCII-letter runs),
//!   line breaks, and numbers (digit runs, `3.5` counts once).
//! - 4 `digit_frac`, 5 `math_frac` (`+-*/=^<>`), 6 `bracket_frac` (`{}[]();`), 7 `upper_frac`,
//!   8 `punct_frac` (`.,:;!?`): share of window bytes.
//! - 9 `mean_word_len`: mean word length in letters; 10 `long_word_frac`: share of words over 8 letters.
//! - 11 `has_options`: 1 if at least two lines start like multiple-choice options (`A.`/`A)` .. `E.`);
//!   12 `ln_option_len`: ln(1 + mean option line length); 13 `option_digit_frac`: share of option lines
//!   holding a digit.
//! - 14 `ln_stem_bytes`: ln(1 + bytes before the first option line (the whole text if none));
//!   15 `ln_sentence_words`: ln(1 + stem words per sentence); 16 `ln_sentences`: ln(1 + stem sentences
//!   (`.?!` followed by space or end)).
//! - 17 `has_dollar`, 18 `has_percent`, 19 `has_code_fence` (```` ``` ````): 0/1.
//! - 20..=39 cue groups: ln(1 + number of whole-word (lower-cased ASCII) hits) for each group listed in
//!   `CUE_GROUPS` (quantity questions, arithmetic, math terms, code, logic, negation, statement/scenario
//!   formats, explanation, creative writing, role play, extraction/format, multi-step, comparison,
//!   truth values, "of the following" (bigrams only), `|` characters (counted as symbols), conditionals,
//!   business/money, choice questions, time). Topic words (science, law, history...) were tried and
//!   dropped: they memorise MMLU subjects and lowered subject-grouped cross-validation.

use crate::tokens::{ascii_range_mask, loaded_key, lowercase_key, short_key, FlatMap, SHORT_MAX};
use std::sync::OnceLock;

/// Bumped whenever the meaning of any feature slot changes; the model card records it.
pub const FEATURE_VERSION: u32 = 2;
/// Number of f32 slots `extract` writes.
pub const FEATURE_DIM: usize = 40;
/// Longest stretch of text scanned (half from the head, half from the tail beyond it).
pub const WINDOW_BYTES: usize = 8 * 1024;

const N_STRUCT: usize = 20;
const N_CUES: usize = FEATURE_DIM - N_STRUCT;
/// Cue group fed only by the bigrams "of the" / "the following" (MCQ boilerplate).
const OF_THE_FOLLOWING: usize = 14;
/// Cue group counting `|` characters ("Statement 1 | ..." formats); fed by `symbol`, not by words.
const PIPES: usize = 15;

/// Name of every slot, in order (for model cards and debugging).
pub const FEATURE_NAMES: [&str; FEATURE_DIM] = [
    "ln_bytes", "ln_words", "ln_lines", "ln_numbers", "digit_frac", "math_frac", "bracket_frac", "upper_frac",
    "punct_frac", "mean_word_len", "long_word_frac", "has_options", "ln_option_len", "option_digit_frac",
    "ln_stem_bytes", "ln_sentence_words", "ln_sentences", "has_dollar", "has_percent", "has_code_fence",
    "cue_quantity", "cue_arithmetic", "cue_math", "cue_code", "cue_logic", "cue_negation", "cue_statement",
    "cue_explain", "cue_creative", "cue_roleplay", "cue_extract", "cue_steps", "cue_compare", "cue_truth",
    "cue_of_the_following", "cue_pipes", "cue_conditional", "cue_business", "cue_choice", "cue_time",
];

/// Whole words (lower-cased) that count towards each cue group; bigram cues are handled in `bigram_cue`.
pub const CUE_GROUPS: [&[&str]; N_CUES] = [
    &["many", "much"],
    &["calculate", "compute", "total", "each", "per", "every", "remaining", "left", "twice", "half", "times",
      "percent", "average", "sum", "difference", "ratio", "rate", "cost", "costs", "price"],
    &["equation", "probability", "derivative", "integral", "matrix", "solve", "prove", "theorem", "polynomial",
      "function", "integer", "prime", "vector", "graph", "variable", "limit", "series", "root", "modulo"],
    &["code", "python", "program", "algorithm", "implement", "debug", "sql", "java", "javascript", "class",
      "return", "def", "array", "string", "compile", "bug", "api", "regex", "recursion", "complexity"],
    &["logic", "implies", "valid", "invalid", "argument", "premise", "premises", "conclusion", "therefore",
      "fallacy", "entails", "contradiction", "only", "necessarily", "sufficient"],
    &["not", "except", "least", "never", "neither", "nor", "cannot"],
    &["statement", "scenario", "scenarios", "statements"],
    &["explain", "why", "describe", "analyze", "analyse", "reason", "reasoning", "justify", "discuss"],
    &["write", "story", "poem", "essay", "email", "blog", "letter", "creative", "draft", "limerick", "song"],
    &["imagine", "pretend", "roleplay", "persona", "character", "act"],
    &["extract", "json", "format", "table", "csv", "list", "yaml", "summarize", "summarise", "rephrase"],
    &["step", "steps", "first", "second", "finally", "next", "after", "before", "then"],
    &["compare", "contrast", "versus", "better", "best", "worse", "most", "more", "less"],
    &["true", "false", "correct", "incorrect", "wrong", "right"],
    &[],
    &[],
    &["if", "unless", "suppose", "assume", "assuming", "given", "whenever", "provided"],
    &["company", "market", "business", "profit", "sales", "tax", "income", "accounting", "money", "dollars",
      "bank", "economy", "interest"],
    &["which", "following", "best", "likely", "correct", "true"],
    &["hours", "hour", "minutes", "days", "day", "weeks", "week", "years", "year", "months", "month"],
];

/// Extra cue hits from a (previous word, word) pair: "how many/much", "which of", "statement 1".
#[cfg(test)]
fn bigram_cue(prev: &[u8], word: &[u8]) -> Option<usize> {
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
const NO_WORD_INFO: u32 = N_CUES as u32;

/// Group counted when a word completes the bigram opened by entry `first` (index 0: none, the trash slot).
const BIGRAM_GROUP: [usize; 8] = {
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
fn word_table() -> &'static FlatMap<u128, u32> {
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

/// Byte ranges scanned for `text`: the whole text, or a head and a tail of `WINDOW_BYTES / 2` each.
fn window(text: &str) -> (&str, &str) {
    head_and_tail(text, WINDOW_BYTES)
}

/// `text` whole when it has at most `max_bytes`, else its first and last `max_bytes / 2` (cut back to
/// character boundaries): what bounded scans (features, router n-grams) read of a long text.
pub(crate) fn head_and_tail(text: &str, max_bytes: usize) -> (&str, &str) {
    if text.len() <= max_bytes {
        return (text, "");
    }
    let half = max_bytes / 2;
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

/// Running counts over the scanned window.
#[derive(Default)]
struct Counts {
    bytes: usize,
    words: usize,
    word_letters: usize,
    long_words: usize,
    lines: usize,
    numbers: usize,
    digits: usize,
    math: usize,
    brackets: usize,
    upper: usize,
    punct: usize,
    options: usize,
    option_bytes: usize,
    option_digit_lines: usize,
    stem_bytes: Option<usize>,
    stem_words: usize,
    stem_sentences: usize,
    dollar: bool,
    percent: bool,
    code_fence: bool,
    /// Hits per cue group, plus a last slot that takes the misses (so counting needs no branch).
    cues: [u32; N_CUES + 1],
}

const MAX_WORD: usize = 24;

const HIGH: u64 = 0x8080_8080_8080_8080;
const HIGH128: u128 = (HIGH as u128) << 64 | HIGH as u128;
const ONES: u64 = 0x0101_0101_0101_0101;


/// Number of lanes of a lane mask (only each byte's high bit may be set) that are set: one multiply (the
/// baseline x86-64 target has no popcount instruction, and `count_ones` is a dozen operations without it).
#[inline(always)]
fn lanes_set(mask: u64) -> usize {
    ((mask >> 7).wrapping_mul(ONES) >> 56) as usize
}

/// End of the run of ASCII letters starting at `start`, and how many of them are upper-case; eight bytes
/// at a time (most of a prompt is words).
#[inline(always)]
fn letter_run(bytes: &[u8], start: usize) -> (usize, usize) {
    let mut i = start;
    let mut upper = 0usize;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let letters = ascii_range_mask(w, b'a', b'z', 0x20);
        let caps = ascii_range_mask(w, b'A', b'Z', 0);
        if letters == HIGH {
            upper += lanes_set(caps);
            i += 8;
            continue;
        }
        let n = (!letters & HIGH).trailing_zeros() / 8;
        // Lanes before the first non-letter (n < 8 here).
        let lanes = (1u64 << (8 * n)) - 1;
        upper += lanes_set(caps & lanes);
        return (i + n as usize, upper);
    }
    while let Some(&b) = bytes.get(i) {
        if !b.is_ascii_alphabetic() {
            break;
        }
        upper += usize::from(b.is_ascii_uppercase());
        i += 1;
    }
    (i, upper)
}

/// The feature scan of one text, in stages: `Analyzer::analyze` hands it the words the token count's scan
/// found (`spaced_word`) and it reads only the bytes between them; `extract` runs it alone. Same counts either
/// way (checked in `analyze`'s tests).
pub(crate) struct FeatureScan<'t> {
    text: &'t str,
    counts: Counts,
    /// The part being scanned: the whole text, or the window's head, then its tail.
    part: &'t [u8],
    /// Where `part` starts in the text.
    base: usize,
    /// The window's tail while the head is scanned (empty otherwise).
    tail: &'t str,
    /// Bytes of `part` before `at` are counted.
    at: usize,
    /// The `BIGRAMS` entry the previous word opens (0: none).
    prev_first: usize,
    in_number: bool,
    line_start: usize,
    backticks: usize,
}

impl<'t> FeatureScan<'t> {
    /// A scan of `text`'s window (`window`): its head, then its tail if it has one.
    pub(crate) fn new(text: &'t str) -> FeatureScan<'t> {
        let (head, tail) = window(text);
        let mut scan = FeatureScan {
            text,
            counts: Counts::default(),
            part: &[],
            base: 0,
            tail,
            at: 0,
            prev_first: 0,
            in_number: false,
            line_start: 0,
            backticks: 0,
        };
        scan.open_part(head, 0);
        scan
    }

    /// Starts the scan of `part`, which starts at `base` in the text.
    fn open_part(&mut self, part: &'t str, base: usize) {
        self.part = part.as_bytes();
        self.base = base;
        (self.at, self.prev_first, self.in_number, self.line_start, self.backticks) = (0, 0, false, 0, 0);
        if !part.is_empty() {
            // Options are only looked for in the head (offset 0): MCQ prompts are short.
            self.counts.line_begins(self.part, 0, base);
        }
    }

    /// Counts the rest of the part and closes it.
    fn close_part(&mut self) {
        let len = self.part.len();
        self.until(len);
        if self.line_start < len {
            self.counts.end_line(self.part, self.line_start, len);
        }
        self.counts.bytes += len;
    }

    /// Closes the head and moves on to the window's tail (not yet scanned, not empty).
    #[inline(never)]
    fn open_tail(&mut self) {
        debug_assert!(!self.tail.is_empty());
        self.close_part();
        let tail = std::mem::take(&mut self.tail);
        self.open_part(tail, self.text.len() - tail.len());
    }

    /// The `len` ASCII letters at `start` (a space before them, a non-letter ASCII byte after them), `key` their
    /// bytes and `info` their `word_info`: counts the bytes up to them, then the word.
    #[inline(always)]
    pub(crate) fn spaced_word(&mut self, start: usize, len: usize, key: u128, info: u32) {
        // The word, the space before it and the byte after it must lie in the part (a word cut by the
        // window's edge is the part's own to count; one outside the window is not counted).
        let inside = |base: usize, part_len: usize| start > base && start + len < base + part_len;
        if !inside(self.base, self.part.len()) {
            let tail_start = self.text.len() - self.tail.len();
            if self.tail.is_empty() || !inside(tail_start, self.tail.len()) {
                return;
            }
            self.open_tail();
        }
        let start = start - self.base;
        debug_assert!(self.part[start - 1] == b' ' && start >= self.at);
        // Only the space since the last word (most words): it resets nothing the word does not reset.
        if self.at + 1 != start {
            self.until(start);
        }
        // Upper-case letters have their 0x20 bit clear; shifted up to the lane's high bit, for `lanes_set`.
        let caps = (!key & 0x2020_2020_2020_2020_2020_2020_2020_2020 & ((1u128 << (8 * len)) - 1)) << 2;
        let c = &mut self.counts;
        c.upper += lanes_set(caps as u64) + lanes_set((caps >> 64) as u64);
        c.word_stats(len);
        c.count_info(info, &mut self.prev_first);
        self.in_number = false;
        self.backticks = 0;
        self.at = start + len;
    }

    /// Counts the part's bytes up to `to` (its end, or a byte after a space: no word runs across it). Letter
    /// runs are taken whole (`Counts::word`), every other byte one at a time. Same counts as
    /// `reference::extract`'s byte-at-a-time scan (checked in the tests).
    #[inline(always)]
    fn until(&mut self, to: usize) {
        let bytes = self.part;
        let table = word_table();
        let offset = self.base;
        let (mut prev_first, mut in_number, mut line_start, mut backticks) =
            (self.prev_first, self.in_number, self.line_start, self.backticks);
        let c = &mut self.counts;
        let mut i = self.at;
        while i < to {
            let b = bytes[i];
            if b.is_ascii_alphabetic() {
                // Words separated by single spaces (most of prose) one after the other, without a trip
                // round the byte loop for each space: a space after a word is never a line start, and
                // resets nothing a word has not reset already.
                loop {
                    i = c.word(bytes, i, table, &mut prev_first);
                    if i + 1 < to && bytes[i] == b' ' && bytes[i + 1].is_ascii_alphabetic() {
                        i += 1;
                    } else {
                        break;
                    }
                }
                in_number = false;
                backticks = 0;
                continue;
            }
            if b == b' ' {
                in_number = false;
                backticks = 0;
                i += 1;
                continue;
            }
            c.symbol(b);
            if b.is_ascii_digit() {
                c.digits += 1;
                if !in_number {
                    c.numbers += 1;
                    in_number = true;
                }
            } else if !(in_number && b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
                in_number = false;
            }
            if b == b'`' {
                backticks += 1;
                if backticks >= 3 {
                    c.code_fence = true;
                }
            } else {
                backticks = 0;
            }
            if matches!(b, b'.' | b'?' | b'!')
                && c.stem_bytes.is_none()
                && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace())
            {
                c.stem_sentences += 1;
            }
            if b == b'\n' {
                c.lines += 1;
                c.end_line(bytes, line_start, i);
                line_start = i + 1;
                if line_start < bytes.len() {
                    c.line_begins(bytes, line_start, offset);
                }
            }
            i += 1;
        }
        self.at = i;
        (self.prev_first, self.in_number, self.line_start, self.backticks) =
            (prev_first, in_number, line_start, backticks);
    }

    /// Counts the rest of the window and writes the feature vector into `out` (see `extract`).
    pub(crate) fn finish(mut self, out: &mut [f32]) {
        if !self.tail.is_empty() {
            self.open_tail();
        }
        self.close_part();
        self.counts.write(self.text, out);
    }
}

impl Counts {
    /// The word (run of ASCII letters) starting at `start`: length and case statistics, cue and bigram hits;
    /// returns its end. A word of up to 15 letters with 16 bytes readable is measured, counted and keyed from
    /// one load, without a loop or a branch on its length (those mispredicted on every other word).
    #[inline(always)]
    fn word(&mut self, bytes: &[u8], start: usize, table: &FlatMap<u128, u32>, prev_first: &mut usize) -> usize {
        if let Some(chunk) = bytes.get(start..start + 16) {
            let mut w = [0u8; 16];
            w.copy_from_slice(chunk);
            let w = u128::from_le_bytes(w);
            let both = |lo: u64, hi: u64| u128::from(lo) | u128::from(hi) << 64;
            let (lo, hi) = (w as u64, (w >> 64) as u64);
            let letters = both(ascii_range_mask(lo, b'a', b'z', 0x20), ascii_range_mask(hi, b'a', b'z', 0x20));
            let others = !letters & HIGH128;
            if others != 0 {
                let n = (others.trailing_zeros() / 8) as usize;
                let lanes = (1u128 << (8 * n)) - 1;
                // A letter is upper-case when its 0x20 bit is clear; setting that bit lower-cases it (the
                // letter lanes' high bits, shifted down to 0x20, are that bit). Only letter lanes are used.
                let caps = letters & !(w << 2) & lanes;
                self.upper += lanes_set(caps as u64) + lanes_set((caps >> 64) as u64);
                self.word_stats(n);
                let lower = w | (letters >> 2);
                self.word_cues(table, loaded_key(lower, n), prev_first);
                return start + n;
            }
        }
        let (end, upper) = letter_run(bytes, start);
        self.upper += upper;
        let n = end - start;
        self.word_stats(n);
        if n <= SHORT_MAX {
            self.word_cues(table, lowercase_key(short_key(&bytes[start..end])), prev_first);
        } else {
            // No cue or bigram word has more than 15 letters.
            *prev_first = 0;
        }
        end
    }

    #[inline(always)]
    fn word_stats(&mut self, n: usize) {
        self.words += 1;
        // Words over MAX_WORD letters count as MAX_WORD + 1 (the first scan stopped collecting there).
        let letters = n.min(MAX_WORD + 1);
        self.word_letters += letters;
        self.long_words += usize::from(letters > 8);
        self.stem_words += usize::from(self.stem_bytes.is_none());
    }

    /// Cue and bigram hits of one lower-cased word (by key); misses go to the trash slot `cues[N_CUES]`.
    #[inline(always)]
    fn word_cues(&mut self, table: &FlatMap<u128, u32>, key: u128, prev_first: &mut usize) {
        self.count_info(table.get(key).unwrap_or(NO_WORD_INFO), prev_first);
    }

    /// `word_cues` of a word whose `word_info` is `info`.
    #[inline(always)]
    fn count_info(&mut self, info: u32, prev_first: &mut usize) {
        self.cues[(info & 0xff) as usize] += 1;
        let completes = (info >> 16) >> *prev_first & 1 == 1;
        self.cues[if completes { BIGRAM_GROUP[*prev_first] } else { N_CUES }] += 1;
        *prev_first = ((info >> 8) & 0xff) as usize;
    }

    fn symbol(&mut self, b: u8) {
        match b {
            b'+' | b'-' | b'*' | b'/' | b'=' | b'^' | b'<' | b'>' => self.math += 1,
            b'{' | b'}' | b'[' | b']' | b'(' | b')' | b';' => self.brackets += 1,
            b'.' | b',' | b':' | b'!' | b'?' => self.punct += 1,
            b'$' => self.dollar = true,
            b'%' => self.percent = true,
            b'|' => self.cues[PIPES] += 1,
            _ => {}
        }
        if b == b';' {
            self.punct += 1;
        }
    }

    /// Marks the stem end at the first option line (`A.`, `A)`, `(A)` .. `E`).
    fn line_begins(&mut self, bytes: &[u8], i: usize, offset: usize) {
        if option_line(&bytes[i..]) && self.stem_bytes.is_none() && offset == 0 {
            // Options are only looked for in the head part: MCQ prompts are short.
            self.stem_bytes = Some(i);
        }
    }

    fn end_line(&mut self, bytes: &[u8], start: usize, end: usize) {
        let line = &bytes[start..end];
        if option_line(line) {
            self.options += 1;
            self.option_bytes += line.len();
            if line[2..].iter().any(u8::is_ascii_digit) {
                self.option_digit_lines += 1;
            }
        }
    }
}

fn option_line(line: &[u8]) -> bool {
    match line {
        [b'(', l, b')', ..] | [l, b'.' | b')', b' ' | b'\t', ..] => (b'A'..=b'E').contains(l),
        _ => false,
    }
}

/// Counts below this take their logarithm from a table (`ln1p_count`).
const SMALL_COUNTS: usize = 512;

/// `ln1p(n)` of every count below `SMALL_COUNTS`, computed once with `ln1p` itself, so a lookup gives the
/// same bits: a prompt's two dozen logarithms cost about as much as scanning 500 bytes of it.
fn small_count_logs() -> &'static [f32; SMALL_COUNTS] {
    static TABLE: OnceLock<[f32; SMALL_COUNTS]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|n| ln1p(n as f64)))
}

/// `ln1p(n * scale)`, from `small_count_logs` when that is `ln1p(n)` of a small count.
#[inline(always)]
fn ln1p_count(n: usize, scale: f64, logs: &[f32; SMALL_COUNTS]) -> f32 {
    if scale == 1.0 && n < SMALL_COUNTS {
        logs[n]
    } else {
        ln1p(n as f64 * scale)
    }
}

fn ln1p(x: f64) -> f32 {
    x.ln_1p() as f32
}

/// Writes the feature vector of `text` into `out` (length `FEATURE_DIM`); see the module doc for slots.
///
/// # Panics
/// If `out.len() != FEATURE_DIM`.
pub fn extract(text: &str, out: &mut [f32]) {
    assert_eq!(out.len(), FEATURE_DIM, "feature buffer has the wrong length");
    FeatureScan::new(text).finish(out);
}

impl Counts {
    /// The feature vector of `text` from the counts of its window.
    fn write(self, text: &str, out: &mut [f32]) {
        assert_eq!(out.len(), FEATURE_DIM, "feature buffer has the wrong length");
        let c = self;
        let total = text.len() as f64;
        let window = c.bytes.max(1) as f64;
        let scale = if c.bytes == 0 { 1.0 } else { total / window };
        let frac = |n: usize| (n as f64 / window) as f32;
        let has_options = c.options >= 2;
        let stem_bytes = if has_options { c.stem_bytes.unwrap_or(c.bytes) } else { text.len() };
        let stem_words = if has_options { c.stem_words as f64 } else { c.words as f64 * scale };
        let sentences = if has_options { c.stem_sentences as f64 } else { c.stem_sentences as f64 * scale };
        out[0] = ln1p(total);
        let logs = small_count_logs();
        out[1] = ln1p_count(c.words, scale, logs);
        out[2] = ln1p_count(c.lines, scale, logs);
        out[3] = ln1p_count(c.numbers, scale, logs);
        out[4] = frac(c.digits);
        out[5] = frac(c.math);
        out[6] = frac(c.brackets);
        out[7] = frac(c.upper);
        out[8] = frac(c.punct);
        out[9] = if c.words > 0 { (c.word_letters as f64 / c.words as f64) as f32 } else { 0.0 };
        out[10] = if c.words > 0 { (c.long_words as f64 / c.words as f64) as f32 } else { 0.0 };
        out[11] = if has_options { 1.0 } else { 0.0 };
        out[12] = if has_options { ln1p(c.option_bytes as f64 / c.options as f64) } else { 0.0 };
        out[13] = if has_options { (c.option_digit_lines as f64 / c.options as f64) as f32 } else { 0.0 };
        out[14] = ln1p_count(stem_bytes, 1.0, logs);
        out[15] = ln1p(stem_words / sentences.max(1.0));
        out[16] = ln1p(sentences);
        out[17] = f32::from(u8::from(c.dollar));
        out[18] = f32::from(u8::from(c.percent));
        out[19] = f32::from(u8::from(c.code_fence));
        for (slot, &hits) in out[N_STRUCT..].iter_mut().zip(c.cues.iter()) {
            *slot = ln1p_count(hits as usize, scale, logs);
        }
    }
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod timing {
    /// `cargo test --release --lib features::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn time_extract() {
        let text = "A train leaves the station at 3:15 pm travelling at 80 km/h; a second train leaves 40 minutes \
                    later. Explain step by step when and where. "
            .repeat(15);
        let mut out = vec![0.0f32; super::FEATURE_DIM];
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            super::extract(std::hint::black_box(&text), &mut out);
        }
        println!("{} bytes: {:?} per call", text.len(), start.elapsed() / n);
    }
}
