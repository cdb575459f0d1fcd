//! The staged feature scan of one text's window: which bytes are counted, in what order, head then tail.

use super::counts::{Counts, ONES};
use super::cue_table::word_table;
use super::window;

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
    /// bytes (little-endian, zero-padded), `lower` the same lower-cased (any bits above the letters' lanes but
    /// 0x20s) and `info` their `word_info`: counts the bytes up to them, then the word.
    #[inline(always)]
    pub(crate) fn spaced_word(&mut self, start: usize, len: usize, key: u128, lower: u128, info: u32) {
        // The word, the space before it and the byte after it must lie in the part (a word cut by the
        // window's edge is the part's own to count; one outside the window is not counted).
        // `start > base && start + len < base + part_len` in one compare: `start - base - 1` wraps past any
        // bound when `start <= base`.
        let inside =
            |base: usize, part_len: usize| start.wrapping_sub(base + 1) < part_len.saturating_sub(len + 1);
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
            // One punctuation mark and the space (`word, word`, `word. Word`): what `until` counts for them,
            // without its way in and out (it copies the counters; a mark before a space ends no number and
            // starts no line, and the word resets the rest).
            // So is a number, after a space or not (`word 1234 word`): one number and its digits.
            let mark = self.part[self.at];
            let gap = &self.part[self.at..start - 1];
            let digits = gap.strip_prefix(b" ").unwrap_or(gap);
            if self.at + 2 == start && matches!(mark, b',' | b'.' | b'?' | b'!' | b':') {
                let c = &mut self.counts;
                c.punct += 1;
                c.stem_sentences += usize::from(matches!(mark, b'.' | b'?' | b'!') && c.stem_bytes.is_none());
            } else if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                self.counts.numbers += 1;
                self.counts.digits += digits.len();
            } else {
                self.until(start);
            }
        }
        // Upper-case letters have their 0x20 bit clear, which lower-casing sets: one bit 0x20 per capital.
        let caps = ((key ^ lower) & 0x2020_2020_2020_2020_2020_2020_2020_2020) >> 5;
        let c = &mut self.counts;
        // Each lane of the two halves' sum is 0, 1 or 2, so the multiply adds the lanes without a carry.
        c.upper += ((caps as u64 + (caps >> 64) as u64).wrapping_mul(ONES) >> 56) as usize;
        c.word_stats(len);
        c.count_info(info, &mut self.prev_first);
        self.in_number = false;
        self.backticks = 0;
        self.at = start + len;
    }

    /// Counts the part's bytes up to `to` (its end, or a byte after a space: no word runs across it). Letter
    /// runs are taken whole (`Counts::word`), every other byte one at a time. Same counts as
    /// `reference::extract`'s byte-at-a-time scan (checked in the tests).
    // Not inlined: inlined into the count's loop, each call copied the twenty-odd counters between stack
    // slots on the way in and out (about 45 instructions, 56 calls per 500-token prompt).
    #[inline(never)]
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
