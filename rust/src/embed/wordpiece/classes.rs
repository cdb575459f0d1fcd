//! BERT's character classes: the ASCII class table, SWAR masks over eight ASCII bytes, Unicode predicates.

use unicode_categories::UnicodeCategories;

use crate::tokens::ascii_range_mask;

/// ASCII byte classes after BERT's clean_text: dropped control, word char, white space, punctuation.
const DROP: u8 = 0;
pub(super) const WORD: u8 = 1;
pub(super) const SPACE: u8 = 2;
pub(super) const PUNCT: u8 = 3;

pub(super) static ASCII_CLASS: [u8; 128] = {
    let mut t = [DROP; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphanumeric() {
            WORD
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            SPACE
        } else if b.is_ascii_punctuation() {
            PUNCT
        } else {
            // The other ASCII controls (incl. \x0b, \x0c, DEL) are Cc: clean_text removes them.
            DROP
        };
        i += 1;
    }
    t
};

pub(super) const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is an ASCII letter or digit. Lanes are masked to 7 bits first, so
/// no addition or subtraction carries or borrows across bytes.
#[inline(always)]
pub(super) fn alnum_mask(w: u64) -> u64 {
    alnum_and_letter_masks(w).0
}

/// `alnum_mask(w)`, and the high bit of each byte that is an ASCII letter.
#[inline(always)]
pub(super) fn alnum_and_letter_masks(w: u64) -> (u64, u64) {
    let letters = ascii_range_mask(w, b'a', b'z', 0x20);
    (letters | ascii_range_mask(w, b'0', b'9', 0), letters)
}

/// BERT's `_is_control`: other-category characters except tab, newline and carriage return.
pub(in crate::embed) fn is_control(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => false,
        '\0' => true,
        _ => c.is_other(),
    }
}

/// BERT's punctuation: every ASCII non-alphanumeric printable character plus Unicode P* categories.
pub(in crate::embed) fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK ideograph blocks that BERT isolates as single-character words.
pub(in crate::embed) fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alnum_mask_matches_the_byte_classes() {
        for b in 0..=255u8 {
            for lane in 0..8 {
                let mut w = [b'.'; 8];
                w[lane] = b;
                w[(lane + 3) % 8] = 0xff;
                let mask = alnum_mask(u64::from_le_bytes(w));
                let expect = b < 0x80 && ASCII_CLASS[usize::from(b)] == WORD;
                assert_eq!(mask >> (lane * 8 + 7) & 1 == 1, expect, "byte {b:#x} lane {lane}");
                assert_eq!(mask & !HIGH, 0);
                if expect {
                    let letters = alnum_and_letter_masks(u64::from_le_bytes(w)).1;
                    let lower = (u64::from_le_bytes(w) | letters >> 2).to_le_bytes()[lane];
                    assert_eq!(lower, b.to_ascii_lowercase(), "byte {b:#x} lane {lane}");
                }
            }
        }
    }
}
