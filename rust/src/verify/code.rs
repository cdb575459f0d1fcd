//! Code spans (```fenced``` and `inline`) split from the prose (rule R5), and the text normalisation.
//!
//! `norm` (one space between words, lower case) is what code, options and quoted strings are compared by.

use std::borrow::Cow;

/// Words separated by one space, lower-cased (`to_lowercase` of the joined words, in one pass: a word
/// lower-cases the same alone as between spaces, final sigma included).
pub(super) fn norm(s: &str) -> String {
    if s.is_ascii() {
        // Whitespace at either end is dropped, and most texts are single-spaced words in between: then
        // only the case changes. (Folds without early exits, which the compiler vectorises.)
        let t = s.trim_matches(|c| matches!(c, '\t'..='\r' | ' '));
        let b = t.as_bytes();
        let controls = b.iter().fold(false, |acc, &c| acc | matches!(c, 9..=13));
        let doubles = (b.iter().zip(&b[b.len().min(1)..]))
            .fold(false, |acc, (&x, &y)| acc | (x == b' ' && y == b' '));
        if !(controls || doubles) {
            return t.to_ascii_lowercase();
        }
        // ASCII whitespace by `char::is_whitespace`: tab, LF, VT, FF, CR and space.
        let mut out: Vec<u8> = Vec::with_capacity(s.len());
        let mut space = false; // a space is owed before the next word
        for &b in s.as_bytes() {
            if matches!(b, 9..=13 | 32) {
                space = !out.is_empty();
            } else {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(b.to_ascii_lowercase());
            }
        }
        return String::from_utf8(out).unwrap_or_default();
    }
    let mut out = String::with_capacity(s.len());
    for (n, w) in s.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        if w.is_ascii() {
            let a = out.len();
            out.push_str(w);
            out[a..].make_ascii_lowercase();
        } else {
            out.push_str(&w.to_lowercase());
        }
    }
    out
}

/// Splits out code (```fenced``` and `inline`) and returns (prose, normalised code pieces); the prose is
/// the text itself when it holds no backtick.
pub(super) fn split_code(text: &str) -> (Cow<'_, str>, Vec<String>) {
    if !text.contains('`') {
        return (Cow::Borrowed(text), Vec::new());
    }
    let mut prose = String::with_capacity(text.len());
    let mut code = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('`') {
        prose.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(body) = after.strip_prefix("```") {
            if let Some(end) = body.find("```") {
                code.push(norm(body[..end].trim_matches('`')));
                prose.push(' ');
                rest = &body[end + 3..];
                continue;
            }
        } else if let Some(end) = after[1..].find(['`', '\n']) {
            if after.as_bytes()[1 + end] == b'`' && end > 0 {
                code.push(norm(&after[1..1 + end]));
                prose.push(' ');
                rest = &after[end + 2..];
                continue;
            }
        }
        prose.push('`');
        rest = &after[1..];
    }
    prose.push_str(rest);
    (Cow::Owned(prose), code)
}
