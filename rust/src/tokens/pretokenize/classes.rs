//! Character classes of the two pre-tokenizer patterns: a per-code-point table, its ASCII part, SWAR masks.

use std::sync::OnceLock;

/// \p{L}
pub(super) const LETTER: u8 = 1;
/// \p{N}
pub(super) const NUMBER: u8 = 2;
/// \s (White_Space)
pub(super) const SPACE: u8 = 4;
/// o200k's "upper" class [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
pub(super) const UPPER: u8 = 8;
/// o200k's "lower" class [\p{Ll}\p{Lm}\p{Lo}\p{M}]
pub(super) const LOWER: u8 = 16;

const BLOCK: usize = 128;

pub(super) static ASCII: [u8; 128] = {
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
pub(super) struct CharClasses {
    index: Vec<u16>,
    blocks: Vec<u8>,
}

impl CharClasses {
    /// The table, built once from regex-syntax's Unicode data on first use and immutable afterwards.
    pub(super) fn get() -> &'static CharClasses {
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
    pub(super) fn of(&self, c: char) -> u8 {
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

pub(super) const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

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
pub(super) fn fold(c: char) -> Option<u8> {
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
