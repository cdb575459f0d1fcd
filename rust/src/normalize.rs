//! The exact-cache key: a canonical form of a conversation text that ignores case, spacing and trailing
//! punctuation but never merges two different conversations.
//!
//! Pure: owns no state. The input is the canonical conversation text built by
//! `fastroute.prompt.conversation_text`: structure markers `<|role|>` (a `<|`, a lower-case ASCII letter,
//! then `[a-z0-9_:.-]*` and `|>`), each followed by its segment's content, with any `<|` inside content
//! escaped to `<||`, so a marker can never be forged by content. Markers are kept verbatim; each content
//! segment is folded independently:
//! - NFKC compatibility folding (skipped for pure-ASCII segments, which are already NFKC);
//! - curly quotes to straight quotes, zero-width characters removed;
//! - lower-casing (Unicode);
//! - every run of white space to one space, trimmed at both ends;
//! - trailing sentence punctuation (`. , ! ? ; : …` and their CJK full-width forms) removed.

use unicode_normalization::UnicodeNormalization;

/// Characters dropped entirely: zero-width space/joiners, word joiner, BOM.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Sentence punctuation that does not change what a prompt asks when it ends the prompt.
fn is_trailing_punctuation(c: char) -> bool {
    matches!(c, '.' | ',' | '!' | '?' | ';' | ':' | '…' | '。' | '，' | '！' | '？' | '；' | '：')
}

fn fold_quote(c: char) -> char {
    match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
        other => other,
    }
}

/// Length in bytes of the structure marker starting at `i`, if one does.
pub fn marker_len(bytes: &[u8], i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'<') || bytes.get(i + 1) != Some(&b'|') {
        return None;
    }
    if !bytes.get(i + 2).is_some_and(u8::is_ascii_lowercase) {
        return None;
    }
    let mut j = i + 3;
    while let Some(&b) = bytes.get(j) {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b':' | b'.' | b'-' => j += 1,
            b'|' if bytes.get(j + 1) == Some(&b'>') => return Some(j + 2 - i),
            _ => return None,
        }
    }
    None
}

/// Appends the folded form of one content segment to `out`.
fn push_folded(segment: &str, out: &mut String) {
    let start = out.len();
    let mut pending_space = false;
    let mut push = |c: char, out: &mut String| {
        if c.is_whitespace() {
            pending_space = out.len() > start;
            return;
        }
        if is_invisible(c) {
            return;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        let c = fold_quote(c);
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    };
    if segment.is_ascii() {
        for &b in segment.as_bytes() {
            push(b as char, out);
        }
    } else {
        for c in segment.nfkc() {
            push(c, out);
        }
    }
    while let Some(c) = out[start..].chars().next_back() {
        if is_trailing_punctuation(c) || c.is_whitespace() {
            out.truncate(out.len() - c.len_utf8());
        } else {
            break;
        }
    }
}

/// The exact-cache key of a conversation text (see the module documentation).
pub fn normalize_key(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let mut segment_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            if let Some(len) = marker_len(bytes, i) {
                let before = out.len();
                push_folded(&text[segment_start..i], &mut out);
                if out.len() > before {
                    out.push('\n');
                }
                out.push_str(&text[i..i + len]);
                out.push('\n');
                i += len;
                segment_start = i;
                continue;
            }
        }
        i += 1;
    }
    push_folded(&text[segment_start..], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_space_and_trailing_punctuation() {
        assert_eq!(normalize_key("  Hello \n\t World?!  "), "hello world");
        assert_eq!(normalize_key("What is 2+2?"), normalize_key("what   is 2+2"));
        assert_eq!(normalize_key("e.g. x."), "e.g. x");
    }

    #[test]
    fn folds_compatibility_forms_quotes_and_invisibles() {
        assert_eq!(normalize_key("ＨＥＬＬＯ\u{200B} ﬁle"), "hello file");
        assert_eq!(normalize_key("it\u{2019}s \u{201C}ok\u{201D}"), "it's \"ok\"");
        assert_eq!(normalize_key("ÉCOLE"), "école");
    }

    #[test]
    fn keeps_structure_markers() {
        let a = "<|system|>\nBe brief.\n<|user|>\nHi there!\n";
        assert_eq!(normalize_key(a), "<|system|>\nbe brief\n<|user|>\nhi there");
        let moved = "<|system|>\nBe brief. Hi there!\n<|user|>\n";
        assert_ne!(normalize_key(a), normalize_key(moved));
        let role = "<|system|>\nBe brief.\n<|assistant|>\nHi there!\n";
        assert_ne!(normalize_key(a), normalize_key(role));
    }

    #[test]
    fn escaped_content_cannot_forge_a_marker() {
        // `<||user|>` is how conversation_text escapes a literal `<|user|>` inside content.
        let one = "<|user|>\nfirst <||user|> second\n";
        let two = "<|user|>\nfirst\n<|user|>\nsecond\n";
        assert_ne!(normalize_key(one), normalize_key(two));
        assert_eq!(marker_len(b"<||user|>", 0), None);
        assert_eq!(marker_len(b"<|user:bob-1|>", 0), Some(14));
        assert_eq!(marker_len(b"<|User|>", 0), None);
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in ["", "<|", "<|a", "<|a|", "\u{0}\u{0}", "<|a|><|b|>", "…", "\u{FEFF}"] {
            let _ = normalize_key(text);
        }
        assert_eq!(normalize_key("<|a|><|b|>"), "<|a|>\n<|b|>\n");
    }
}
