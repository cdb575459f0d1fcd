//! The running counts of the feature scan: what each word, symbol and line of the window adds to them.

use super::cue_table::{BIGRAM_GROUP, NO_WORD_INFO};
use super::{N_CUES, PIPES};
use crate::tokens::{ascii_range_mask, loaded_key, lowercase_key, short_key, FlatMap, SHORT_MAX};

/// Running counts over the scanned window.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) bytes: usize,
    pub(super) words: usize,
    pub(super) word_letters: usize,
    pub(super) long_words: usize,
    pub(super) lines: usize,
    pub(super) numbers: usize,
    pub(super) digits: usize,
    pub(super) math: usize,
    pub(super) brackets: usize,
    pub(super) upper: usize,
    pub(super) punct: usize,
    pub(super) options: usize,
    pub(super) option_bytes: usize,
    pub(super) option_digit_lines: usize,
    pub(super) stem_bytes: Option<usize>,
    pub(super) stem_words: usize,
    pub(super) stem_sentences: usize,
    pub(super) dollar: bool,
    pub(super) percent: bool,
    pub(super) code_fence: bool,
    /// Hits per cue group, plus a last slot that takes the misses (so counting needs no branch).
    pub(super) cues: [u32; N_CUES + 1],
}

const MAX_WORD: usize = 24;

pub(super) const HIGH: u64 = 0x8080_8080_8080_8080;
const HIGH128: u128 = (HIGH as u128) << 64 | HIGH as u128;
pub(super) const ONES: u64 = 0x0101_0101_0101_0101;

/// Number of lanes of a lane mask (only each byte's high bit may be set) that are set: one multiply (the
/// baseline x86-64 target has no popcount instruction, and `count_ones` is a dozen operations without it).
#[inline(always)]
pub(super) fn lanes_set(mask: u64) -> usize {
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

impl Counts {
    /// The word (run of ASCII letters) starting at `start`: length and case statistics, cue and bigram hits;
    /// returns its end. A word of up to 15 letters with 16 bytes readable is measured, counted and keyed from
    /// one load, without a loop or a branch on its length (those mispredicted on every other word).
    #[inline(always)]
    pub(super) fn word(
        &mut self,
        bytes: &[u8],
        start: usize,
        table: &FlatMap<u128, u32>,
        prev_first: &mut usize,
    ) -> usize {
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
    pub(super) fn word_stats(&mut self, n: usize) {
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
    pub(super) fn count_info(&mut self, info: u32, prev_first: &mut usize) {
        self.cues[(info & 0xff) as usize] += 1;
        let completes = (info >> 16) >> *prev_first & 1 == 1;
        self.cues[if completes { BIGRAM_GROUP[*prev_first] } else { N_CUES }] += 1;
        *prev_first = ((info >> 8) & 0xff) as usize;
    }

    #[inline]
    pub(super) fn symbol(&mut self, b: u8) {
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
    #[inline]
    pub(super) fn line_begins(&mut self, bytes: &[u8], i: usize, offset: usize) {
        if option_line(&bytes[i..]) && self.stem_bytes.is_none() && offset == 0 {
            // Options are only looked for in the head part: MCQ prompts are short.
            self.stem_bytes = Some(i);
        }
    }

    #[inline]
    pub(super) fn end_line(&mut self, bytes: &[u8], start: usize, end: usize) {
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

#[inline]
pub(super) fn option_line(line: &[u8]) -> bool {
    match line {
        [b'(', l, b')', ..] | [l, b'.' | b')', b' ' | b'\t', ..] => (b'A'..=b'E').contains(l),
        _ => false,
    }
}
