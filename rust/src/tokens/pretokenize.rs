//! The pre-tokenizers of cl100k_base and o200k_base: hand-written scanners equivalent to tiktoken's regexes.
//!
//! Pure. tiktoken splits text with a `fancy-regex` pattern before byte-pair merging; running that regex
//! costs more than everything else `analyze` does, so each pattern is written out here as a scanner that
//! returns the end of the next piece, reproducing the regex's leftmost-first backtracking exactly
//! (including o200k's overlapping upper/lower letter classes and combining marks taken as a prefix).
//! Unicode classes come from `regex-syntax` (the tables the `regex` crate, and so tiktoken, uses);
//! `\s` is the White_Space property, which is what `char::is_whitespace` tests.
//!
//! cl100k_base: `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|
//!               \s++$|\s*[\r\n]|\s+(?!\S)|\s`
//! o200k_base:  `[^\r\n\p{L}\p{N}]?[UP]*[LO]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//!               [^\r\n\p{L}\p{N}]?[UP]+[LO]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|
//!               \s*[\r\n]+|\s+(?!\S)|\s+`  with UP = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], LO = [\p{Ll}\p{Lm}\p{Lo}\p{M}].

use std::sync::OnceLock;
use super::loaded_key;

/// \p{L}
pub(crate) const LETTER: u8 = 1;
/// \p{N}
pub(crate) const NUMBER: u8 = 2;
/// \s (White_Space)
pub(crate) const SPACE: u8 = 4;
/// o200k's "upper" class [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
pub(crate) const UPPER: u8 = 8;
/// o200k's "lower" class [\p{Ll}\p{Lm}\p{Lo}\p{M}]
pub(crate) const LOWER: u8 = 16;

const BLOCK: usize = 128;

static ASCII: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = if c.is_ascii_lowercase() {
            LETTER | LOWER
        } else if c.is_ascii_uppercase() {
            LETTER | UPPER
        } else if c.is_ascii_digit() {
            NUMBER
        } else if matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ') {
            SPACE
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Class bits of every code point, as a two-level table of deduplicated 128-code-point blocks (~40 KB).
pub(crate) struct CharClasses {
    index: Vec<u16>,
    blocks: Vec<u8>,
}

impl CharClasses {
    /// The table, built once from regex-syntax's Unicode data on first use and immutable afterwards.
    pub(crate) fn get() -> &'static CharClasses {
        static TABLE: OnceLock<CharClasses> = OnceLock::new();
        TABLE.get_or_init(CharClasses::build)
    }

    fn build() -> CharClasses {
        let mut flat = vec![0u8; 0x11_0000];
        let classes: [(&str, u8); 4] = [
            (r"\p{L}", LETTER),
            (r"\p{N}", NUMBER),
            (r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", UPPER),
            (r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]", LOWER),
        ];
        for (pattern, bit) in classes {
            for (start, end) in unicode_ranges(pattern) {
                for slot in &mut flat[start as usize..=end as usize] {
                    *slot |= bit;
                }
            }
        }
        for (cp, slot) in flat.iter_mut().enumerate() {
            if char::from_u32(cp as u32).is_some_and(char::is_whitespace) {
                *slot |= SPACE;
            }
        }
        let mut index = Vec::with_capacity(flat.len() / BLOCK);
        let mut blocks: Vec<u8> = Vec::new();
        let mut seen: rustc_hash::FxHashMap<&[u8], u16> = rustc_hash::FxHashMap::default();
        for chunk in flat.chunks_exact(BLOCK) {
            let next = seen.len() as u16;
            let id = *seen.entry(chunk).or_insert_with(|| {
                blocks.extend_from_slice(chunk);
                next
            });
            index.push(id);
        }
        CharClasses { index, blocks }
    }

    #[inline]
    pub(crate) fn of(&self, c: char) -> u8 {
        let cp = c as usize;
        if cp < 128 {
            return ASCII[cp];
        }
        let block = self.index[cp / BLOCK] as usize;
        self.blocks[block * BLOCK + cp % BLOCK]
    }
}

/// Code-point ranges of a Unicode class expression, straight from regex-syntax.
fn unicode_ranges(pattern: &str) -> Vec<(u32, u32)> {
    use regex_syntax::hir::{Class, HirKind};
    let hir = regex_syntax::Parser::new()
        .parse(pattern)
        .expect("constant class pattern parses");
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        _ => unreachable!("constant pattern is a Unicode class"),
    }
}

/// Which encoding's pre-tokenizer to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    Cl100k,
    O200k,
}

/// Iterator over the pre-token pieces of a text, in order, covering every byte.
pub(crate) struct Pieces<'a> {
    text: &'a str,
    bytes: &'a [u8],
    classes: &'static CharClasses,
    pattern: Pattern,
    pos: usize,
}

impl<'a> Pieces<'a> {
    pub(crate) fn new(text: &'a str, pattern: Pattern) -> Pieces<'a> {
        Pieces {
            text,
            bytes: text.as_bytes(),
            classes: CharClasses::get(),
            pattern,
            pos: 0,
        }
    }

    /// (char, class bits, UTF-8 length) of the char starting at byte `i`.
    #[inline(always)]
    fn at(&self, i: usize) -> Option<(char, u8, usize)> {
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

    fn next_cl100k(&self, i: usize) -> usize {
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
        if f0 & NUMBER != 0 {
            return self.digits(i);
        }
        let q = if c0 == ' ' { i + 1 } else { i };
        if let Some((_, fq, _)) = self.at(q) {
            if fq & (SPACE | LETTER | NUMBER) == 0 {
                let e = self.run_without(q, SPACE | LETTER | NUMBER);
                return self.run_bytes(e, b"\r\n");
            }
        }
        self.whitespace(i, l0, true)
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

    fn next_o200k(&self, i: usize) -> usize {
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
        if f0 & NUMBER != 0 {
            return self.digits(i);
        }
        let q = if c0 == ' ' { i + 1 } else { i };
        if let Some((_, fq, _)) = self.at(q) {
            if fq & (SPACE | LETTER | NUMBER) == 0 {
                let e = self.run_without(q, SPACE | LETTER | NUMBER);
                return self.run_bytes(e, b"\r\n/");
            }
        }
        self.whitespace(i, l0, false)
    }
}

impl Pieces<'_> {
    /// Which encoding's pattern the pieces follow.
    pub(crate) fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// Where the next piece starts.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Skips a piece the caller split itself: the next piece starts at `pos` (a piece boundary).
    pub(crate) fn resume_at(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// Byte range of the next piece.
    #[inline]
    pub(crate) fn next_range(&mut self) -> Option<(usize, usize)> {
        let start = self.pos;
        if start >= self.bytes.len() {
            return None;
        }
        let mut end = match self.pattern {
            Pattern::Cl100k => self.next_cl100k(start),
            Pattern::O200k => self.next_o200k(start),
        };
        if end <= start {
            // Unreachable by construction (every char starts some alternative); never loop forever.
            end = start + self.at(start).map_or(1, |(_, _, l)| l);
        }
        self.pos = end;
        Some((start, end))
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (start, end) = self.next_range()?;
        self.text.get(start..end)
    }
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS_128: u128 = (HIGH_BITS as u128) << 64 | HIGH_BITS as u128;

/// ASCII bytes that may open a cl100k letter piece as its one prefix char (`[^\r\n\p{L}\p{N}]`), the
/// apostrophe excepted (a contraction alternative is tried before the letter one).
static LETTER_PREFIX: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = !c.is_ascii_alphanumeric() && c != b'\r' && c != b'\n' && c != b'\'';
        i += 1;
    }
    t
};

/// cl100k's commonest piece from one 16-byte load: a run of ASCII letters, with at most one prefix char
/// before it (`[^\r\n\p{L}\p{N}]?+\p{L}++`), ending inside the 16 bytes at an ASCII byte (a non-ASCII byte
/// could be a letter that continues the run), or else one of the pieces around an ASCII number
/// (`cl100k_ascii_number`). Returns the piece's length and its `short_key`; `None` for any other piece,
/// which the general scanner then splits. Used by `Encoding::count`, which looks the key
/// up without reading the piece again.
#[inline(always)]
pub(crate) fn cl100k_ascii_word(bytes: &[u8], i: usize) -> Option<(usize, u128)> {
    let chunk = bytes.get(i..i + 16)?;
    let mut w = [0u8; 16];
    w.copy_from_slice(chunk);
    let w = u128::from_le_bytes(w);
    let letters = u128::from(ascii_range_mask(w as u64, b'a', b'z', 0x20))
        | u128::from(ascii_range_mask((w >> 64) as u64, b'a', b'z', 0x20)) << 64;
    let prefix = usize::from(LETTER_PREFIX[usize::from(chunk[0])]);
    // The first byte that ends the piece: not a letter, and not the prefix char in lane 0.
    let ends = !letters & HIGH_BITS_128 & !((prefix as u128) << 7);
    let n = (ends.trailing_zeros() / 8) as usize;
    if n <= prefix || n >= 16 || chunk[n] >= 0x80 {
        return cl100k_ascii_number(chunk, w);
    }
    Some((n, loaded_key(w, n)))
}

/// ASCII bytes of `[^\s\p{L}\p{N}]`: punctuation, symbols and controls other than white space.
static SYMBOL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 128 {
        t[i] = ASCII[i] == 0;
        i += 1;
    }
    t
};

/// Length of a run of ASCII symbols with at most one space before it and any line breaks after it
/// (` ?[^\s\p{L}\p{N}]++[\r\n]*+`) that starts and ends inside `chunk`, when no earlier alternative takes the
/// text instead: not an apostrophe first (contractions), not one symbol followed by a letter (a letter piece
/// with its prefix char), and the run not ended by a non-ASCII byte (which could be a symbol too).
#[inline(always)]
fn cl100k_ascii_symbols(chunk: &[u8]) -> Option<usize> {
    let spaced = usize::from(chunk[0] == b' ');
    if !SYMBOL[usize::from(chunk[spaced])] || chunk[0] == b'\'' {
        return None;
    }
    if spaced == 0 && (chunk[1] >= 0x80 || chunk[1].is_ascii_alphabetic()) {
        return None;
    }
    let mut end = spaced + 1;
    while end < chunk.len() && SYMBOL[usize::from(chunk[end])] {
        end += 1;
    }
    if chunk.get(end).is_none_or(|&b| b >= 0x80) {
        return None;
    }
    while end < chunk.len() && matches!(chunk[end], b'\r' | b'\n') {
        end += 1;
    }
    // The last byte must be seen to end the piece (and the key holds at most 15 bytes).
    (end < chunk.len()).then_some(end)
}

/// The pieces around ASCII numbers, from the same load: up to three digits (`\p{N}{1,3}+`; fewer only when an
/// ASCII byte ends them, since a non-ASCII one could be a digit too), and a space before a digit, which is a
/// piece of its own (`\s` is the only alternative that matches it).
#[inline(always)]
fn cl100k_ascii_number(chunk: &[u8], w: u128) -> Option<(usize, u128)> {
    if chunk[0] == b' ' && chunk[1].is_ascii_digit() {
        return Some((1, loaded_key(w, 1)));
    }
    if !chunk[0].is_ascii_digit() {
        return cl100k_ascii_symbols(chunk).map(|n| (n, loaded_key(w, n)));
    }
    let digits = ascii_range_mask(w as u64, b'0', b'9', 0);
    let run = ((!digits & HIGH_BITS).trailing_zeros() / 8) as usize;
    if run < 3 && chunk[run] >= 0x80 {
        return None;
    }
    let n = run.min(3);
    Some((n, loaded_key(w, n)))
}

/// High bit set in each byte of `w` that is ASCII and, after OR-ing `fold` (0x20 folds A-Z onto a-z), lies
/// in `lo..=hi` (both within 0x20..0x7F). No carry or borrow crosses bytes: each lane is <= 0x7F first.
#[inline(always)]
pub(crate) fn ascii_range_mask(w: u64, lo: u8, hi: u8, fold: u8) -> u64 {
    let ascii = !w & HIGH_BITS;
    let x = (w & !HIGH_BITS) | (fold as u64 * ONES);
    let at_least_lo = x + (0x80 - lo as u64) * ONES;
    let at_most_hi = (0x80 + hi as u64) * ONES - x;
    at_least_lo & at_most_hi & ascii
}

/// Simple case folding of the letters the contraction alternatives use: ASCII, plus U+017F LONG S
/// (folds to `s`) and U+212A KELVIN SIGN (folds to `k`), as `(?i)` does in the regex crate.
#[inline]
fn fold(c: char) -> Option<u8> {
    match c {
        'a'..='z' => Some(c as u8),
        'A'..='Z' => Some(c.to_ascii_lowercase() as u8),
        '\u{17F}' => Some(b's'),
        '\u{212A}' => Some(b'k'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, p: Pattern) -> Vec<&str> {
        Pieces::new(text, p).collect()
    }

    #[test]
    fn cl100k_splits_like_tiktoken() {
        let p = Pattern::Cl100k;
        assert_eq!(split("Hello world", p), ["Hello", " world"]);
        assert_eq!(split("I'm don't 'LL", p), ["I", "'m", " don", "'t", " '", "LL"]);
        assert_eq!(split("12345 x", p), ["123", "45", " x"]);
        assert_eq!(split("a  \n\n  b", p), ["a", "  \n\n", " ", " b"]);
        assert_eq!(split("x   ", p), ["x", "   "]);
        assert_eq!(split("x   y", p), ["x", "  ", " y"]);
        assert_eq!(split("f(x) = {y};\n", p), ["f", "(x", ")", " =", " {", "y", "};\n"]);
        assert_eq!(split("\u{17F}'\u{17F}", p), ["\u{17F}", "'\u{17F}"]);
    }

    #[test]
    fn o200k_splits_like_tiktoken() {
        let p = Pattern::O200k;
        assert_eq!(split("HelloWorld FOOBar", p), ["Hello", "World", " FOOBar"]);
        assert_eq!(split("they're", p), ["they're"]);
        assert_eq!(split("a/b\n/", p), ["a", "/b", "\n", "/"]);
        assert_eq!(split("x  \n  ", p), ["x", "  \n", "  "]);
        assert_eq!(split("1234", p), ["123", "4"]);
    }

    #[test]
    fn word_fast_path_splits_like_the_general_path() {
        let p = Pattern::Cl100k;
        let long = "abcdefghijklmnopqrstuvwxyz";
        let text = format!(" Hello world's  x {long} caf\u{e9}s naïve 12abc abc12 'twas a\u{301}b\r\n done. end");
        let pieces = split(&text, p);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.contains(&" Hello") && pieces.contains(&" world") && pieces.contains(&"'s"));
        assert!(pieces.contains(&" caf\u{e9}s") && pieces.contains(&" naïve"));
        assert!(pieces.contains(&format!(" {long}").as_str()));
    }

    #[test]
    fn fast_pieces_equal_the_general_scanner() {
        let parts: [&str; 37] = [
            " ", "Hello", "world", "x", "abcdefghijklmnop", "'s", "'", "(", "\t", "\n", "\r\n", "12", "é", "ü",
            "日本", "🎉", "\u{301}", "_", "-", ".", "\"", "A", "zz", "\u{17F}", "12345", "7", "\u{663}", "\u{96F}", " 8",
            "?!", ".\n", "\r", "\u{2014}", "  ", "\x00", "\x1f", "{}[]();+-*/=^<>,:|~`@#$%&",
        ];
        let mut rng = crate::xorshift::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut hits = 0;
        for round in 0..4_000 {
            let len = 1 + (round % 40);
            let text: String = (0..len)
                .map(|_| parts[(rng.next() % parts.len() as u64) as usize])
                .collect();
            let bytes = text.as_bytes();
            let mut pieces = Pieces::new(&text, Pattern::Cl100k);
            while let Some((start, end)) = pieces.next_range() {
                if let Some((n, key)) = cl100k_ascii_word(bytes, start) {
                    assert_eq!(start + n, end, "{text:?} at {start}");
                    assert_eq!(key, crate::tokens::short_key(&bytes[start..end]), "{text:?} at {start}");
                    hits += 1;
                }
            }
        }
        assert!(hits > 1_000, "{hits}");
    }

    #[test]
    fn pieces_cover_the_text() {
        let text = "Mixed: ÄÖü 日本語 emoji 🎉🎉 \u{301}x \t\u{3000}\r\n9९٣ done";
        for p in [Pattern::Cl100k, Pattern::O200k] {
            assert_eq!(split(text, p).concat(), text);
        }
    }

    #[test]
    fn swar_mask_matches_byte_classes() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b'x', b, b'A', 0x80, b, b'z', b'0', b]);
            let cases = [
                (b'a', b'z', 0x20, LETTER),
                (b'a', b'z', 0, LOWER),
                (b'A', b'Z', 0, UPPER),
            ];
            for (lo, hi, fold, bits) in cases {
                let mask = ascii_range_mask(w, lo, hi, fold);
                let expect = b < 0x80 && ASCII[b as usize] & bits != 0;
                for lane in [1, 4, 7] {
                    assert_eq!(mask >> (lane * 8 + 7) & 1 == 1, expect, "byte {b:#x} bits {bits}");
                }
                assert_eq!(mask >> (3 * 8 + 7) & 1, 0, "non-ASCII lane");
            }
        }
    }

    #[test]
    fn classes_agree_with_regex_syntax_case_folding() {
        use regex_syntax::hir::{Class, HirKind};
        for letter in ['s', 't', 'm', 'd', 'l', 'v', 'r', 'e'] {
            let hir = regex_syntax::Parser::new().parse(&format!("(?i){letter}")).unwrap();
            let HirKind::Class(Class::Unicode(class)) = hir.kind() else {
                panic!("class expected")
            };
            for r in class.ranges() {
                for c in r.start()..=r.end() {
                    assert_eq!(fold(c), Some(letter as u8), "{c:?} folds to {letter}");
                }
            }
        }
        let table = CharClasses::get();
        assert_eq!(table.of('é'), LETTER | LOWER);
        assert_eq!(table.of('\u{3000}'), SPACE);
        assert_eq!(table.of('٣'), NUMBER);
        assert_eq!(table.of('\u{301}'), UPPER | LOWER);
        assert_eq!(table.of('日'), LETTER | UPPER | LOWER);
    }
}
