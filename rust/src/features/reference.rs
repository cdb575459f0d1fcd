//! The first, byte-at-a-time feature scan, kept only as a reference for `features`' parity tests.
//!
//! Test-only. It produced the feature vectors the shipped router (feature version 2) was trained on.

use super::counts::option_line;
use super::cue_table::bigram_cue;
use super::{window, CUE_GROUPS, FEATURE_DIM, N_CUES, N_STRUCT, PIPES};

/// The cue group of a lower-cased word: the first group listing it.
fn cue_group_linear(word: &[u8]) -> Option<usize> {
    CUE_GROUPS.iter().position(|g| g.iter().any(|w| w.as_bytes() == word))
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
    cues: [u32; N_CUES],
}

const MAX_WORD: usize = 24;

impl Counts {
    fn scan(&mut self, part: &str, offset: usize) {
        let bytes = part.as_bytes();
        let mut word = [0u8; MAX_WORD];
        let mut word_len = 0usize;
        let mut word_overflow = false;
        let mut prev = [0u8; MAX_WORD];
        let mut prev_len = 0usize;
        let mut in_number = false;
        let mut line_start = 0usize;
        let mut backticks = 0usize;
        for (i, &b) in bytes.iter().enumerate() {
            if i == line_start {
                self.line_begins(bytes, i, offset);
            }
            // Fast paths for the two commonest bytes; they touch no other counter.
            if b.is_ascii_lowercase() {
                if word_len < MAX_WORD {
                    word[word_len] = b;
                    word_len += 1;
                } else {
                    word_overflow = true;
                }
                in_number = false;
                backticks = 0;
                continue;
            }
            if b == b' ' {
                if word_len > 0 || word_overflow {
                    self.end_word(&word[..word_len], word_overflow, &mut prev, &mut prev_len);
                    word_len = 0;
                    word_overflow = false;
                }
                in_number = false;
                backticks = 0;
                continue;
            }
            if b.is_ascii_alphabetic() {
                if word_len < MAX_WORD {
                    word[word_len] = b.to_ascii_lowercase();
                    word_len += 1;
                } else {
                    word_overflow = true;
                }
                if b.is_ascii_uppercase() {
                    self.upper += 1;
                }
            } else {
                if word_len > 0 || word_overflow {
                    self.end_word(&word[..word_len], word_overflow, &mut prev, &mut prev_len);
                    word_len = 0;
                    word_overflow = false;
                }
                self.symbol(b);
            }
            if b.is_ascii_digit() {
                self.digits += 1;
                if !in_number {
                    self.numbers += 1;
                    in_number = true;
                }
            } else if !(in_number && b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
                in_number = false;
            }
            if b == b'`' {
                backticks += 1;
                if backticks >= 3 {
                    self.code_fence = true;
                }
            } else {
                backticks = 0;
            }
            if matches!(b, b'.' | b'?' | b'!')
                && self.stem_bytes.is_none()
                && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace())
            {
                self.stem_sentences += 1;
            }
            if b == b'\n' {
                self.lines += 1;
                self.end_line(bytes, line_start, i);
                line_start = i + 1;
            }
        }
        if word_len > 0 || word_overflow {
            self.end_word(&word[..word_len], word_overflow, &mut prev, &mut prev_len);
        }
        if line_start < bytes.len() {
            self.end_line(bytes, line_start, bytes.len());
        }
        self.bytes += bytes.len();
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

    fn end_word(&mut self, word: &[u8], overflow: bool, prev: &mut [u8; MAX_WORD], prev_len: &mut usize) {
        self.words += 1;
        let letters = if overflow { MAX_WORD + 1 } else { word.len() };
        self.word_letters += letters;
        if letters > 8 {
            self.long_words += 1;
        }
        if self.stem_bytes.is_none() {
            self.stem_words += 1;
        }
        if overflow {
            *prev_len = 0;
            return;
        }
        if let Some(g) = cue_group_linear(word) {
            self.cues[g] += 1;
        }
        if let Some(g) = bigram_cue(&prev[..*prev_len], word) {
            self.cues[g] += 1;
        }
        prev[..word.len()].copy_from_slice(word);
        *prev_len = word.len();
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


fn ln1p(x: f64) -> f32 {
    x.ln_1p() as f32
}

/// Writes the feature vector of `text` into `out` (length `FEATURE_DIM`); see the module doc for slots.
///
/// # Panics
/// If `out.len() != FEATURE_DIM`.
pub(super) fn extract(text: &str, out: &mut [f32]) {
    assert_eq!(out.len(), FEATURE_DIM, "feature buffer has the wrong length");
    let (head, tail) = window(text);
    let mut c = Counts::default();
    c.scan(head, 0);
    if !tail.is_empty() {
        c.scan(tail, head.len());
    }
    let total = text.len() as f64;
    let window = c.bytes.max(1) as f64;
    let scale = if c.bytes == 0 { 1.0 } else { total / window };
    let frac = |n: usize| (n as f64 / window) as f32;
    let has_options = c.options >= 2;
    let stem_bytes = if has_options { c.stem_bytes.unwrap_or(c.bytes) } else { text.len() };
    let stem_words = if has_options { c.stem_words as f64 } else { c.words as f64 * scale };
    let sentences = if has_options { c.stem_sentences as f64 } else { c.stem_sentences as f64 * scale };
    out[0] = ln1p(total);
    out[1] = ln1p(c.words as f64 * scale);
    out[2] = ln1p(c.lines as f64 * scale);
    out[3] = ln1p(c.numbers as f64 * scale);
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
    out[14] = ln1p(stem_bytes as f64);
    out[15] = ln1p(stem_words / sentences.max(1.0));
    out[16] = ln1p(sentences);
    out[17] = f32::from(u8::from(c.dollar));
    out[18] = f32::from(u8::from(c.percent));
    out[19] = f32::from(u8::from(c.code_fence));
    for (slot, &hits) in out[N_STRUCT..].iter_mut().zip(c.cues.iter()) {
        *slot = ln1p(f64::from(hits) * scale);
    }
}

