//! cl100k's commonest pieces (ASCII words, numbers, symbol runs) from one 16-byte load, for `Encoding::count`.

use super::classes::ASCII;
use crate::tokens::Chunk;

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
/// (`cl100k_ascii_number`). Returns the piece's length, its `short_key` and whether it is a space followed
/// by letters; `None` for any other piece, which the general scanner then splits. Used by `Encoding::count`,
/// which looks the key up without reading the piece again.
#[inline(always)]
pub(crate) fn cl100k_ascii_word(bytes: &[u8], i: usize) -> Option<(usize, u128, bool)> {
    let chunk = bytes.get(i..i + 16)?;
    let lanes = Chunk::load(chunk);
    let letters = lanes.within(b'a', b'z', 0x20);
    let prefix = u32::from(LETTER_PREFIX[usize::from(chunk[0])]);
    // The first byte that ends the piece: not a letter, and not the prefix char in lane 0 (bit 16 up: none).
    let n = (!letters & !prefix).trailing_zeros() as usize;
    if n <= prefix as usize || n >= 16 || chunk[n] >= 0x80 {
        return cl100k_ascii_number(chunk, lanes).map(|(n, key)| (n, key, false));
    }
    // A space is a prefix char, so the letters follow it.
    Some((n, lanes.key(n), chunk[0] == b' '))
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
fn cl100k_ascii_number(chunk: &[u8], lanes: Chunk) -> Option<(usize, u128)> {
    if chunk[0] == b' ' && chunk[1].is_ascii_digit() {
        return Some((1, lanes.key(1)));
    }
    if !chunk[0].is_ascii_digit() {
        return cl100k_ascii_symbols(chunk).map(|n| (n, lanes.key(n)));
    }
    let run = (!lanes.within(b'0', b'9', 0)).trailing_zeros() as usize;
    if run < 3 && chunk[run] >= 0x80 {
        return None;
    }
    let n = run.min(3);
    Some((n, lanes.key(n)))
}

#[cfg(test)]
mod tests {
    use crate::tokens::pretokenize::{Pattern, Pieces};
    use super::*;

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
                if let Some((n, key, spaced)) = cl100k_ascii_word(bytes, start) {
                    assert_eq!(start + n, end, "{text:?} at {start}");
                    let letters = &bytes[start + 1..end];
                    let expect = bytes[start] == b' ' && !letters.is_empty() && letters.iter().all(u8::is_ascii_alphabetic);
                    assert_eq!(spaced, expect, "{text:?} at {start}");
                    assert_eq!(key, crate::tokens::short_key(&bytes[start..end]), "{text:?} at {start}");
                    hits += 1;
                }
            }
        }
        assert!(hits > 1_000, "{hits}");
    }
}
