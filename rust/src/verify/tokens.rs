//! The prose's word tokens: the per-token parts a signature keeps (`TokenParts`) and the reference tokenizer.
//!
//! `TokenParts` holds each token's classes and hash, the polarity counts and the stemmed content sequence;
//! `tokens` (tests only) is what the one walk in `scan` is tested against.

use super::lexicon::{packed, LEXICON, NEGATION_OR_POLARITY, NUMBER_WORD, POLARITY_SLOTS, STOPWORD};
#[cfg(test)]
use super::unit::Unit;
use super::words::{fnv_hash, hash_packed, stem, stem_packed, word_hash_bytes};

pub(super) fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// Lower-cased word tokens (ASCII letters, one inner apostrophe), with "n't" / "cannot" split into "not".
///
/// Tokens are ASCII, so all of them are written into one buffer; returns the buffer and each token's span.
/// (`analyse_prose` finds the same tokens in its one walk; this is what the tests compare it with.)
#[cfg(test)]
pub(super) fn tokens<U: Unit>(chars: &[U]) -> (String, Vec<(usize, usize)>) {
    let mut buf: Vec<u8> = Vec::with_capacity(chars.len() + 16);
    let mut spans = Vec::new();
    let push = |buf: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>, w: &[u8]| {
        let a = buf.len();
        buf.extend_from_slice(w);
        spans.push((a, buf.len()));
    };
    let mut i = 0;
    while i < chars.len() {
        if chars[i].ch().is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].ch().is_ascii_alphabetic() {
                i += 1;
            }
            let mut apostrophe = None;
            if i + 1 < chars.len()
                && is_apostrophe(chars[i].ch())
                && chars[i + 1].ch().is_ascii_alphabetic()
            {
                apostrophe = Some(i - start);
                i += 1;
                while i < chars.len() && chars[i].ch().is_ascii_alphabetic() {
                    i += 1;
                }
            }
            let a = buf.len();
            // ASCII letters and apostrophes only: one byte each.
            if apostrophe.is_none() {
                buf.extend(
                    chars[start..i]
                        .iter()
                        .map(|c| c.ch().to_ascii_lowercase() as u8),
                );
            } else {
                buf.extend(chars[start..i].iter().map(|c| {
                    let c = c.ch();
                    if is_apostrophe(c) {
                        b'\''
                    } else {
                        c.to_ascii_lowercase() as u8
                    }
                }));
            }
            let w = &buf[a..];
            if w.ends_with(b"n't") {
                let stem_end = buf.len() - 3;
                if stem_end == a {
                    buf.truncate(a);
                    push(&mut buf, &mut spans, b"not");
                } else {
                    spans.push((a, stem_end));
                }
                push(&mut buf, &mut spans, b"not");
            } else if w == b"cannot" {
                buf.truncate(a);
                push(&mut buf, &mut spans, b"can");
                push(&mut buf, &mut spans, b"not");
            } else if let Some(head) = apostrophe {
                spans.push((a, a + head));
            } else {
                spans.push((a, buf.len()));
            }
        } else if chars[i].ch().is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].ch().is_ascii_digit()
                    || ((chars[i].ch() == '.' || chars[i].ch() == ',')
                        && i + 1 < chars.len()
                        && chars[i + 1].ch().is_ascii_digit()))
            {
                i += 1;
            }
            let a = buf.len();
            buf.extend(chars[start..i].iter().map(|&c| c.ch() as u8));
            spans.push((a, buf.len()));
        } else {
            i += 1;
        }
    }
    // Every byte written is ASCII (letters, digits, '.', ',', '\'').
    (String::from_utf8(buf).unwrap_or_default(), spans)
}

/// A token's class bit beside the `Lexicon` ones: the token is a digit run.
pub(super) const DIGITS: u8 = 128;

/// The per-token parts of a signature, filled token by token in text order.
pub(super) struct TokenParts {
    /// The lower-cased tokens, one after another (every byte is ASCII).
    pub(super) buf: Vec<u8>,
    /// Per token: its `Lexicon` classes (and `DIGITS`), and its `word_hash`.
    pub(super) classes: Vec<u8>,
    pub(super) hashes: Vec<u64>,
    /// How often each negation or polarity word occurs (by its `Lexicon` index).
    pub(super) polarity: [u16; POLARITY_SLOTS],
    pub(super) sequence: Vec<u64>,
}

impl TokenParts {
    pub(super) fn with_capacity(chars: usize) -> TokenParts {
        // About one token in four characters of prose.
        let tokens = chars / 4 + 4;
        TokenParts {
            buf: Vec::with_capacity(chars + 16),
            classes: Vec::with_capacity(tokens),
            hashes: Vec::with_capacity(tokens),
            polarity: [0; POLARITY_SLOTS],
            sequence: Vec::with_capacity(tokens),
        }
    }

    /// Adds the token `buf[a..b]`; returns its `Lexicon::classify` (`("", 0)` for a digit run).
    pub(super) fn push(&mut self, a: usize, b: usize, digits: bool) -> (&'static str, u8) {
        let t = &self.buf[a..b];
        if let Some(p) = packed(t) {
            return self.push_packed(p, t.len(), digits);
        }
        // Longer than any table word.
        let h = fnv_hash(t);
        if !digits {
            let s = stem(t);
            self.sequence.push(if s.len() == t.len() { h } else { word_hash_bytes(s) });
        }
        self.classes.push(if digits { DIGITS } else { 0 });
        self.hashes.push(h);
        ("", 0)
    }

    /// `push` of a token of `len` <= 16 bytes given `packed`.
    #[inline(always)]
    pub(super) fn push_packed(&mut self, p: u128, len: usize, digits: bool) -> (&'static str, u8) {
        let h = hash_packed(p);
        if digits {
            // No table word holds a digit.
            self.classes.push(DIGITS);
            self.hashes.push(h);
            return ("", 0);
        }
        let (word, class, polarity) = LEXICON.classify_hashed(p, h);
        if class & NEGATION_OR_POLARITY != 0 {
            // At most MAX_VERIFIABLE_CHARS / 2 tokens: no count overflows.
            self.polarity[polarity as usize] += 1;
        }
        if class & (STOPWORD | NUMBER_WORD) == 0 {
            let s = stem_packed(p, len);
            self.sequence.push(if s == p { h } else { hash_packed(s) });
        }
        self.classes.push(class);
        self.hashes.push(h);
        (word, class)
    }

    /// Appends the word `w` and adds it as a token.
    pub(super) fn push_word(&mut self, w: &[u8]) -> (&'static str, u8) {
        let a = self.buf.len();
        self.buf.extend_from_slice(w);
        self.push(a, self.buf.len(), false)
    }
}
