//! The general pre-token scanner: each pattern's alternatives tried in the regex's order, with its backtracking.

use super::classes::{ascii_range_mask, fold, ASCII, HIGH_BITS, LETTER, LOWER, NUMBER, SPACE, UPPER};
use super::Pieces;

impl Pieces<'_> {
    /// (char, class bits, UTF-8 length) of the char starting at byte `i`.
    #[inline(always)]
    pub(super) fn at(&self, i: usize) -> Option<(char, u8, usize)> {
        let b = *self.bytes.get(i)?;
        if b < 0x80 {
            return Some((b as char, ASCII[b as usize], 1));
        }
        let c = self.text.get(i..)?.chars().next()?;
        Some((c, self.classes.of(c), c.len_utf8()))
    }

    /// UTF-8 length of the char that ends at byte `i` (`i` > 0 and a char boundary).
    #[inline]
    fn len_before(&self, i: usize) -> usize {
        self.text
            .get(..i)
            .and_then(|s| s.chars().next_back())
            .map_or(1, char::len_utf8)
    }

    /// End of the run, starting at `i`, of chars whose class has any of `bits`.
    #[inline(always)]
    fn run(&self, mut i: usize, bits: u8) -> usize {
        let bytes = self.bytes;
        // Eight ASCII bytes at a time for the letter classes (words are most of real text).
        let range = match bits {
            LETTER => Some((b'a', b'z', 0x20)),
            LOWER => Some((b'a', b'z', 0)),
            UPPER => Some((b'A', b'Z', 0)),
            _ => None,
        };
        if let Some((lo, hi, fold)) = range {
            while let Some(chunk) = bytes.get(i..i + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let hits = ascii_range_mask(u64::from_le_bytes(word), lo, hi, fold);
                if hits == HIGH_BITS {
                    i += 8;
                    continue;
                }
                let n = ((!hits & HIGH_BITS).trailing_zeros() / 8) as usize;
                i += n;
                if bytes[i] < 0x80 {
                    return i;
                }
                break;
            }
        }
        while i < bytes.len() {
            let b = bytes[i];
            if b < 0x80 {
                if ASCII[b as usize] & bits == 0 {
                    break;
                }
                i += 1;
            } else {
                match self.at(i) {
                    Some((_, f, l)) if f & bits != 0 => i += l,
                    _ => break,
                }
            }
        }
        i
    }

    /// End of the run, starting at `i`, of chars whose class has none of `bits`.
    #[inline(always)]
    fn run_without(&self, mut i: usize, bits: u8) -> usize {
        let bytes = self.bytes;
        while i < bytes.len() {
            let b = bytes[i];
            if b < 0x80 {
                if ASCII[b as usize] & bits != 0 {
                    break;
                }
                i += 1;
            } else {
                match self.at(i) {
                    Some((_, f, l)) if f & bits == 0 => i += l,
                    _ => break,
                }
            }
        }
        i
    }

    /// End of up to three \p{N} from `i`.
    #[inline]
    fn digits(&self, mut i: usize) -> usize {
        for _ in 0..3 {
            match self.at(i) {
                Some((_, f, l)) if f & NUMBER != 0 => i += l,
                _ => break,
            }
        }
        i
    }

    /// End of the run of ASCII bytes in `set` from `i`.
    #[inline]
    fn run_bytes(&self, mut i: usize, set: &[u8]) -> usize {
        while self.bytes.get(i).is_some_and(|b| set.contains(b)) {
            i += 1;
        }
        i
    }

    /// After an apostrophe at `i - 1`: end of `(?i:[sdmt]|ll|ve|re)` starting at `i`, if it matches.
    #[inline]
    fn contraction_tail(&self, i: usize) -> Option<usize> {
        let (c1, _, l1) = self.at(i)?;
        let f1 = fold(c1)?;
        if matches!(f1, b's' | b'd' | b'm' | b't') {
            return Some(i + l1);
        }
        let (c2, _, l2) = self.at(i + l1)?;
        let f2 = fold(c2)?;
        matches!((f1, f2), (b'l', b'l') | (b'v', b'e') | (b'r', b'e')).then_some(i + l1 + l2)
    }

    /// Whitespace alternatives shared by both patterns, for a run of \s starting at `i`.
    /// `end_anchor` is cl100k's `\s++$`.
    #[inline]
    fn whitespace(&self, i: usize, first_len: usize, end_anchor: bool) -> usize {
        let e = self.run(i, SPACE);
        if end_anchor && e == self.bytes.len() {
            return e;
        }
        // \s*[\r\n] (cl100k) / \s*[\r\n]+ (o200k): backtracking lands on the run's last line break.
        if let Some(j) = self.bytes[i..e].iter().rposition(|&b| b == b'\n' || b == b'\r') {
            return i + j + 1;
        }
        // \s+(?!\S): the whole run at the end of the text, else all but its last char.
        if e == self.bytes.len() {
            return e;
        }
        if e > i + first_len {
            return e - self.len_before(e);
        }
        i + first_len
    }

    /// The alternatives both patterns end with, for the char `c0` (flags `f0`, `l0` bytes) at `i`: `\p{N}{1,3}`,
    /// then ` ?[^\s\p{L}\p{N}]+` followed by any of `symbol_tail` (cl100k `[\r\n]*`, o200k `[\r\n/]*`), then
    /// white space (`end_anchor`: see `whitespace`).
    #[inline]
    fn numbers_symbols_or_space(
        &self,
        i: usize,
        c0: char,
        f0: u8,
        l0: usize,
        symbol_tail: &[u8],
        end_anchor: bool,
    ) -> usize {
        if f0 & NUMBER != 0 {
            return self.digits(i);
        }
        let q = if c0 == ' ' { i + 1 } else { i };
        if let Some((_, fq, _)) = self.at(q) {
            if fq & (SPACE | LETTER | NUMBER) == 0 {
                let e = self.run_without(q, SPACE | LETTER | NUMBER);
                return self.run_bytes(e, symbol_tail);
            }
        }
        self.whitespace(i, l0, end_anchor)
    }

    pub(super) fn next_cl100k(&self, i: usize) -> usize {
        let Some((c0, f0, l0)) = self.at(i) else { return i };
        if c0 == '\'' {
            if let Some(e) = self.contraction_tail(i + 1) {
                return e;
            }
        }
        if f0 & LETTER != 0 {
            return self.run(i + l0, LETTER);
        }
        if f0 & NUMBER == 0 && c0 != '\r' && c0 != '\n' {
            if let Some((_, f1, l1)) = self.at(i + l0) {
                if f1 & LETTER != 0 {
                    return self.run(i + l0 + l1, LETTER);
                }
            }
        }
        self.numbers_symbols_or_space(i, c0, f0, l0, b"\r\n", true)
    }

    /// `[UP]*[LO]+` from `s` with the regex's backtracking: the longest UP run, then back off one char
    /// at a time until a LO char starts the LO run.
    fn upper_star_lower_plus(&self, s: usize) -> Option<usize> {
        let up_end = self.run(s, UPPER);
        let mut u = up_end;
        loop {
            if let Some((_, f, l)) = self.at(u) {
                if f & LOWER != 0 {
                    return Some(self.run(u + l, LOWER));
                }
            }
            if u == s {
                return None;
            }
            u -= self.len_before(u);
        }
    }

    /// `[UP]+[LO]*` from `s`.
    fn upper_plus_lower_star(&self, s: usize) -> Option<usize> {
        let up_end = self.run(s, UPPER);
        (up_end > s).then(|| self.run(up_end, LOWER))
    }

    /// Optional `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `e`.
    #[inline]
    fn optional_contraction(&self, e: usize) -> usize {
        if self.bytes.get(e) == Some(&b'\'') {
            if let Some(end) = self.contraction_tail(e + 1) {
                return end;
            }
        }
        e
    }

    pub(super) fn next_o200k(&self, i: usize) -> usize {
        let Some((c0, f0, l0)) = self.at(i) else { return i };
        let prefix = f0 & (LETTER | NUMBER) == 0 && c0 != '\r' && c0 != '\n';
        let f1 = if prefix {
            self.at(i + l0).map_or(0, |(_, f, _)| f)
        } else {
            0
        };
        // The letter alternatives need an UP or LO char at one of their possible starts.
        if (f0 | f1) & (UPPER | LOWER) != 0 {
            let starts = [prefix.then_some(i + l0), Some(i)];
            for s in starts.into_iter().flatten() {
                if let Some(e) = self.upper_star_lower_plus(s) {
                    return self.optional_contraction(e);
                }
            }
            for s in starts.into_iter().flatten() {
                if let Some(e) = self.upper_plus_lower_star(s) {
                    return self.optional_contraction(e);
                }
            }
        }
        self.numbers_symbols_or_space(i, c0, f0, l0, b"\r\n/", false)
    }
}
