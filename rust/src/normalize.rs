//! The exact-cache key: a canonical form of a conversation text that ignores case, spacing and trailing
//! punctuation but never merges two different conversations.
//!
//! Pure: owns no state. The input is the canonical conversation text of `fastroute.prompt.conversation_text`:
//! lines that start with a structure marker (`<` + a lower-case ASCII letter + `[a-z0-9_:.-]*` + `>`, then
//! a space, a line break or the end) open a segment; content lines that start with `<` are escaped with
//! one more `<`, so content can never forge a marker. Markers are kept verbatim, one segment per key line;
//! each segment's content (escape removed) is folded on its own:
//! - NFKC compatibility folding (skipped for pure-ASCII lines, which are already NFKC);
//! - curly quotes to straight quotes, zero-width characters removed;
//! - lower-casing (Unicode);
//! - every run of white space (line breaks included) to one space, trimmed at both ends;
//! - trailing sentence punctuation (`. , ! ? ; : …` and their full-width forms) removed.
//!
//! Because folded content holds no line break, every line of the key is exactly one segment, so two
//! conversations with different structure never share a key.

use crate::tokens::{ascii_lowercase_lanes, ascii_range_mask};
use unicode_normalization::UnicodeNormalization;

/// Characters dropped entirely: zero-width space/joiners, word joiner, BOM.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Sentence punctuation that does not change what a prompt asks when it ends the prompt.
fn is_trailing_punctuation(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | '!' | '?' | ';' | ':' | '…' | '。' | '，' | '！' | '？' | '；' | '：'
    )
}

fn fold_quote(c: char) -> char {
    match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
        other => other,
    }
}

/// Length in bytes of the structure marker that opens `line`, if one does (without the following space).
pub fn marker_len(line: &[u8]) -> Option<usize> {
    if line.first() != Some(&b'<') || !line.get(1).is_some_and(u8::is_ascii_lowercase) {
        return None;
    }
    let mut j = 2;
    while let Some(&b) = line.get(j) {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b':' | b'.' | b'-' => j += 1,
            b'>' => return matches!(line.get(j + 1), None | Some(b' ') | Some(b'\n') | Some(b'\r')).then_some(j + 1),
            _ => return None,
        }
    }
    None
}

/// Folds one segment's content into `out` (UTF-8 bytes; only whole chars are ever pushed).
struct Segment {
    /// Where the content starts in `out` (trailing punctuation is never stripped before it).
    content_start: usize,
    /// A space is owed before the next visible char (white space seen, or the marker's separator).
    pending_space: bool,
}

impl Segment {
    fn open(out: &[u8], after_marker: bool) -> Segment {
        Segment {
            content_start: out.len(),
            pending_space: after_marker,
        }
    }

    /// Pushes the owed space, if any, before a visible char.
    #[inline]
    fn settle_space(&mut self, out: &mut Vec<u8>) {
        if self.pending_space {
            if out.len() > self.content_start || self.content_start > 0 {
                out.push(b' ');
            }
            self.pending_space = false;
        }
    }

    #[inline]
    fn push(&mut self, c: char, out: &mut Vec<u8>) {
        if c.is_whitespace() {
            self.pending_space = out.len() > self.content_start || self.pending_space;
            return;
        }
        if is_invisible(c) {
            return;
        }
        self.settle_space(out);
        let c = fold_quote(c);
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase() as u8);
        } else {
            let mut buf = [0u8; 4];
            for lower in c.to_lowercase() {
                out.extend_from_slice(lower.encode_utf8(&mut buf).as_bytes());
            }
        }
    }

    fn push_str(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_ascii() {
            self.push_ascii(text.as_bytes(), out);
        } else {
            for c in text.nfkc() {
                self.push(c, out);
            }
        }
    }

    /// The ASCII fast path of `push_str` (same result as pushing each char), writing into a pre-sized
    /// buffer through a local length: `Vec::push` re-checked the capacity and re-stored the length per byte.
    /// Inside a segment's content, sixteen bytes at a time on x86_64 (SSE2): the lanes up to the first two
    /// white-space bytes in a row are written at once, each white-space byte among them followed by a visible
    /// one (the usual single space between words) as one space, and a run of white space after one already owed
    /// is skipped whole. Elsewhere, and for the last 8-15 bytes, eight bytes at a time when each white-space byte
    /// among them is followed by a visible one; other stretches go a byte at a time.
    fn push_ascii(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut len = out.len();
        // Each written space needs a white-space byte of `bytes` or the one already pending, so the output
        // grows by at most `bytes.len() + 1`.
        out.resize(len + bytes.len() + 1, 0);
        let (content_start, mut pending) = (self.content_start, self.pending_space);
        let mut i = 0;
        while i < bytes.len() {
            if len > content_start {
                #[cfg(target_arch = "x86_64")]
                if let Some(chunk) = bytes.get(i..i + 16) {
                    let (folded, space) = fold16(chunk);
                    if pending {
                        // White space after white space already owed: nothing more is owed.
                        let lead = (!space).trailing_zeros() as usize;
                        if lead > 0 {
                            i += lead;
                            continue;
                        }
                        out[len] = b' ';
                        len += 1;
                    }
                    // The lanes before the second byte of the first white-space pair (all 16 without one): each
                    // white-space byte among them but the last is followed by a visible one and becomes one
                    // space; white space last is owed, as in the eight-byte path below.
                    let lanes = (space & (space << 1) | 1 << 16).trailing_zeros() as usize;
                    let last = (space >> (lanes - 1)) & 1 == 1;
                    // In bounds: at most `i + 1` bytes were written for the first `i` input bytes.
                    out[len..len + 16].copy_from_slice(&folded);
                    pending = last;
                    len += lanes - usize::from(last);
                    i += lanes;
                    continue;
                }
                if let Some(chunk) = bytes.get(i..i + 8) {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(chunk);
                    let w = u64::from_le_bytes(w);
                    let space = white_space_mask(w);
                    // No two white-space bytes in a row, none first after white space already owed.
                    let first = if pending { 0x80 } else { 0 };
                    if space & (space << 8 | first) == 0 {
                        if pending {
                            out[len] = b' ';
                            len += 1;
                        }
                        let spread = (space >> 7) * 0xff;
                        let folded = (ascii_lowercase_lanes(w) & !spread) | (spread & (u64::from(b' ') * ONES));
                        // In bounds: at most `i + 1` bytes were written for the first `i` input bytes.
                        out[len..len + 8].copy_from_slice(&folded.to_le_bytes());
                        // White space last is owed rather than written (its successor is unknown): the space
                        // written for it is overwritten or cut off.
                        pending = space >> 63 == 1;
                        len += 8 - usize::from(pending);
                        i += 8;
                        continue;
                    }
                }
            }
            let b = bytes[i];
            i += 1;
            // ASCII White_Space: \t \n \x0B \x0C \r and space (what `char::is_whitespace` accepts).
            if b == b' ' || (b'\t'..=b'\r').contains(&b) {
                pending = len > content_start || pending;
            } else {
                if pending {
                    if len > content_start || content_start > 0 {
                        out[len] = b' ';
                        len += 1;
                    }
                    pending = false;
                }
                out[len] = b.to_ascii_lowercase();
                len += 1;
            }
        }
        out.truncate(len);
        self.pending_space = pending;
    }

    /// Strips trailing punctuation/space; the marker's separator goes too when no content is left.
    fn close(self, out: &mut Vec<u8>) {
        while out.len() > self.content_start {
            let tail = &out[self.content_start..];
            let mut start = tail.len() - 1;
            while start > 0 && tail[start] & 0xC0 == 0x80 {
                start -= 1;
            }
            let last = std::str::from_utf8(&tail[start..]).ok().and_then(|s| s.chars().next());
            match last {
                Some(c) if is_trailing_punctuation(c) || c.is_whitespace() => {
                    out.truncate(self.content_start + start);
                }
                _ => break,
            }
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` (ASCII) that is ASCII white space: space or \t \n \x0B \x0C \r.
#[inline(always)]
fn white_space_mask(w: u64) -> u64 {
    let x = w ^ (u64::from(b' ') * ONES);
    // Zero lanes of x (spaces) get no high bit from the addition; lanes are < 0x80, so nothing carries.
    let spaces = !(((x & !HIGH) + !HIGH) | x) & HIGH;
    spaces | ascii_range_mask(w, b'\t', b'\r', 0)
}

/// Sixteen ASCII bytes lower-cased with each white-space byte (space or \t \n \x0B \x0C \r) made a space, and
/// the mask of those white-space lanes (bit k for byte k): the sixteen-byte step of `Segment::push_ascii`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn fold16(chunk: &[u8]) -> ([u8; 16], u32) {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8, _mm_storeu_si128, _mm_sub_epi8,
    };
    assert!(chunk.len() >= 16);
    // SAFETY: SSE2 is part of the x86_64 baseline; the load reads 16 bytes of `chunk` (checked above) and the
    // store writes the 16 bytes of `folded`, both unaligned operations.
    unsafe {
        let x = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        // `x - lo <= hi - lo` as unsigned bytes: lanes in `lo..=hi`.
        let within = |lo: u8, hi: u8| {
            let t = _mm_sub_epi8(x, _mm_set1_epi8(lo as i8));
            _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8((hi - lo) as i8)), t)
        };
        let space = _mm_set1_epi8(b' ' as i8);
        let white = _mm_or_si128(_mm_cmpeq_epi8(x, space), within(b'\t', b'\r'));
        let lower = _mm_or_si128(x, _mm_and_si128(within(b'A', b'Z'), space));
        let folded = _mm_or_si128(_mm_andnot_si128(white, lower), _mm_and_si128(white, space));
        let mut out = [0u8; 16];
        _mm_storeu_si128(out.as_mut_ptr().cast::<__m128i>(), folded);
        (out, _mm_movemask_epi8(white) as u32)
    }
}

/// `text.split('\n')`, the breaks found by memchr's SIMD search (`str::split` reads a word at a time).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', text.as_bytes())
        .map(Some)
        .chain(std::iter::once(None))
        .map(move |end| {
            let end = end.unwrap_or(text.len());
            let line = &text[start..end];
            start = end + 1;
            line
        })
}

/// The exact-cache key of a conversation text (see the module documentation).
pub fn normalize_key(text: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(text.len() + 8);
    let mut segment = Segment::open(&out, false);
    for (n, line) in lines(text).enumerate() {
        if let Some(len) = marker_len(line.as_bytes()) {
            segment.close(&mut out);
            if !out.is_empty() {
                out.push(b'\n');
            }
            out.extend_from_slice(&line.as_bytes()[..len]);
            let rest = &line[len..];
            segment = Segment::open(&out, true);
            segment.push_str(rest.strip_prefix(' ').unwrap_or(rest), &mut out);
            continue;
        }
        if n > 0 {
            segment.push('\n', &mut out);
        }
        let unescaped = if line.starts_with("<<") { &line[1..] } else { line };
        segment.push_str(unescaped, &mut out);
    }
    segment.close(&mut out);
    // Only whole chars were pushed, so this never fails; the fallback keeps the function panic-free.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
        let a = "<system> Be brief.\n<user> Hi  there!";
        assert_eq!(normalize_key(a), "<system> be brief\n<user> hi there");
        let moved = "<system> Be brief. Hi there!\n<user> ";
        assert_ne!(normalize_key(a), normalize_key(moved));
        assert_eq!(normalize_key(moved), "<system> be brief. hi there\n<user>");
        let role = "<system> Be brief.\n<assistant> Hi there!";
        assert_ne!(normalize_key(a), normalize_key(role));
        assert_eq!(normalize_key("<user> a\n<tools>\n<json>"), "<user> a\n<tools>\n<json>");
    }

    #[test]
    fn escaped_content_cannot_forge_a_marker() {
        // `conversation_text` escapes a content line `<user> b` as `<<user> b`.
        let one = "<user> a\n<<user> b";
        let two = "<user> a\n<user> b";
        let literal = "<user> a <<user> b";
        assert_eq!(normalize_key(one), "<user> a <user> b");
        assert_ne!(normalize_key(one), normalize_key(two));
        assert_ne!(normalize_key(one), normalize_key(literal));
        assert_eq!(marker_len(b"<<user> x"), None);
        assert_eq!(marker_len(b"<user:bob-1> x"), Some(12));
        assert_eq!(marker_len(b"<User> x"), None);
        assert_eq!(marker_len(b"<user>x"), None);
        assert_eq!(marker_len(b"<1user> x"), None);
    }

    #[test]
    fn ascii_fast_path_equals_char_path() {
        for text in ["", " ", "a", " a", "a ", "  Hello \t\x0b World?! ", "x\x0cy\rz", "\n\n"] {
            for after_marker in [false, true] {
                let mut fast = b"<m>".to_vec();
                let mut slow = fast.clone();
                let mut s = Segment::open(&fast, after_marker);
                s.push_ascii(text.as_bytes(), &mut fast);
                s.close(&mut fast);
                let mut s = Segment::open(&slow, after_marker);
                text.chars().for_each(|c| s.push(c, &mut slow));
                s.close(&mut slow);
                assert_eq!(fast, slow, "{text:?}");
            }
        }
    }

    #[test]
    fn ascii_fast_path_equals_char_path_on_random_text() {
        let mixed = b" \t\n\r\x0b\x0cAbZz09.,!?;:<>-";
        // Mostly letters and single spaces: the eight-byte path's usual input, with its edge cases.
        let wordy = b"  abcdefghijklmnopqrstuvwxyzAZ@[`{.\t";
        let mut rng = crate::xorshift::XorShift::new(0x2545_f491_4f6c_dd1d);
        for round in 0..10_000 {
            let seed = rng.next();
            let alphabet: &[u8] = if round % 2 == 0 { mixed } else { wordy };
            let len = (seed % if round % 3 == 0 { 120 } else { 40 }) as usize;
            let text: String = (0..len)
                .map(|k| alphabet[((seed >> (k % 50)) as usize ^ (k * 31) ^ (k * k)) % alphabet.len()] as char)
                .collect();
            for (prefix, after_marker) in [("", false), ("<m>", true), ("<m>", false), ("x", false)] {
                let mut fast = prefix.as_bytes().to_vec();
                let mut slow = fast.clone();
                let mut s = Segment::open(&fast, after_marker);
                s.push_ascii(text.as_bytes(), &mut fast);
                s.push_ascii(text.as_bytes(), &mut fast);
                s.close(&mut fast);
                let mut s = Segment::open(&slow, after_marker);
                text.chars().chain(text.chars()).for_each(|c| s.push(c, &mut slow));
                s.close(&mut slow);
                assert_eq!(fast, slow, "{text:?} {prefix:?}");
            }
        }
    }

    #[test]
    fn ascii_fast_path_equals_char_path_on_white_space_runs() {
        // Runs of white space of every length up to 40 around words, at every offset of a sixteen-byte chunk.
        let spaces = b" \t\r\x0b\x0c\n";
        let mut rng = crate::xorshift::XorShift::new(0x0123_4567_89ab_cdef);
        for round in 0..3_000 {
            let mut text = Vec::new();
            while text.len() < 20 + round % 100 {
                let r = rng.next();
                let run = if r.is_multiple_of(4) { (r >> 8) % 41 } else { (r >> 8) % 3 } as usize;
                text.extend((0..run).map(|k| spaces[(r as usize >> (16 + k % 40)) % spaces.len()]));
                let word = 1 + (r >> 24) as usize % 12;
                text.extend((0..word).map(|k| b"AbcZ9.@[`{x"[(r as usize >> (k + 30)) % 11]));
            }
            for (prefix, after_marker) in [("", false), ("<m>", true), ("x", false)] {
                let mut fast = prefix.as_bytes().to_vec();
                let mut slow = fast.clone();
                let mut s = Segment::open(&fast, after_marker);
                s.push_ascii(&text, &mut fast);
                s.push_ascii(&text[round % text.len()..], &mut fast);
                s.close(&mut fast);
                let mut s = Segment::open(&slow, after_marker);
                let chars = text.iter().chain(&text[round % text.len()..]).map(|&b| b as char);
                chars.for_each(|c| s.push(c, &mut slow));
                s.close(&mut slow);
                assert_eq!(fast, slow, "{:?} {prefix:?}", String::from_utf8_lossy(&text));
            }
        }
    }

    #[test]
    fn white_space_and_lowercase_masks_match_the_byte_rules() {
        for b in 0..0x80u8 {
            for lane in 0..8 {
                let mut w = [b'x'; 8];
                w[lane] = b;
                let w = u64::from_le_bytes(w);
                let space = (white_space_mask(w) >> (8 * lane + 7)) & 1 == 1;
                assert_eq!(space, (b as char).is_whitespace(), "{b:#x}");
                assert_eq!(ascii_lowercase_lanes(w).to_le_bytes()[lane], b.to_ascii_lowercase(), "{b:#x}");
            }
        }
    }

    #[test]
    fn lines_split_like_str_split() {
        for text in ["", "\n", "a", "a\n", "\na", "a\n\nb\n", "é\n日本\n\n"] {
            assert_eq!(lines(text).collect::<Vec<_>>(), text.split('\n').collect::<Vec<_>>(), "{text:?}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "",
            "<",
            "<a",
            "<a>",
            "\u{0}\u{0}",
            "<a>\n<b>",
            "…",
            "\u{FEFF}",
            "\n\n<<",
            "<<",
        ] {
            let _ = normalize_key(text);
        }
        assert_eq!(normalize_key("<a>\n<b>"), "<a>\n<b>");
    }
}
