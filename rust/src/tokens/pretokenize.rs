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
//!
//! Here: the `Pieces` iterator; the scanner itself is in `scanner`, the character classes in `classes`,
//! and the 16-byte fast path for cl100k's commonest pieces (used by `Encoding::count`) in `ascii_fast`.

mod ascii_fast;
mod classes;
mod scanner;

pub(crate) use ascii_fast::cl100k_ascii_word;
pub(crate) use classes::ascii_range_mask;
use classes::CharClasses;

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
    fn pieces_cover_the_text() {
        let text = "Mixed: ÄÖü 日本語 emoji 🎉🎉 \u{301}x \t\u{3000}\r\n9९٣ done";
        for p in [Pattern::Cl100k, Pattern::O200k] {
            assert_eq!(split(text, p).concat(), text);
        }
    }
}
