//! What the verifier's passes read: a `char` of the prose, or one byte a char (`Narrow`).

use std::borrow::Cow;

/// One unit of the prose: a `char`, or a byte standing for one char (`Narrow`: then bytes and chars are
/// at the same offsets, and every pass reads a quarter of the memory without collecting chars).
pub(crate) trait Unit: Copy {
    fn ch(self) -> char;

    /// Whether the unit may be part of an entity's word (`entities::is_entity_char`).
    #[inline(always)]
    fn is_entity(self) -> bool {
        super::entities::is_entity_char(self.ch())
    }

    /// Whether the unit is whitespace (`char::is_whitespace`).
    #[inline(always)]
    fn is_space(self) -> bool {
        self.ch().is_whitespace()
    }

    /// The text of a run of ASCII units.
    fn ascii_text(run: &[Self]) -> Cow<'_, str>;

    /// The unit as a `Narrow` byte: the char when it is ASCII (what most tests need), else from 0x80 on.
    fn byte(self) -> u8;

    /// A run of ASCII letters, lower-cased and packed as `lexicon::packed` packs a word; None beyond 16.
    fn pack_lower(run: &[Self]) -> Option<u128>;

    /// The first offset in `from..to` holding `a` or `b` (ASCII or one of the non-ASCII chars `WIDE`
    /// holds).
    fn find(units: &[Self], from: usize, to: usize, a: char, b: char) -> Option<usize> {
        let k = units[from..to].iter().position(|u| u.ch() == a || u.ch() == b)?;
        Some(from + k)
    }

    /// Where the run of ASCII letters starting at `i` ends (the first non-letter at or after `i`).
    #[inline]
    fn letters_end(units: &[Self], mut i: usize) -> usize {
        while i < units.len() && units[i].ch().is_ascii_alphabetic() {
            i += 1;
        }
        i
    }
}

impl Unit for char {
    #[inline(always)]
    fn ch(self) -> char {
        self
    }

    fn ascii_text(run: &[char]) -> Cow<'_, str> {
        run.iter().collect::<String>().into()
    }

    fn byte(self) -> u8 {
        if self.is_ascii() {
            self as u8
        } else {
            wide_byte(self)
        }
    }

    fn pack_lower(run: &[char]) -> Option<u128> {
        if run.len() > 16 {
            return None;
        }
        let mut p = 0u128;
        for (k, c) in run.iter().enumerate() {
            p |= ((c.to_ascii_lowercase() as u8) as u128) << (8 * k);
        }
        Some(p)
    }
}

/// What a byte of `Narrow` prose from 0x80 on stands for (by its low three bits): a char with the same
/// answers to every question the passes ask of a char (alphanumeric, whitespace, ASCII, equal to one of
/// the few non-ASCII chars they look for).
const WIDE: [char; 8] = ['\u{80}', '\u{e9}', '\u{a0}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2212}', '\u{80}'];

/// The `Narrow` bytes of U+2019 (an apostrophe), U+201C (an opening quote) and U+2212 (minus).
pub(super) const RIGHT_QUOTE: u8 = 0x83;
pub(super) const LEFT_DOUBLE_QUOTE: u8 = 0x84;
pub(super) const MINUS: u8 = 0x86;

/// The `Narrow` byte of a non-ASCII char.
fn wide_byte(c: char) -> u8 {
    match c {
        '\u{2019}' => RIGHT_QUOTE,
        '\u{201c}' => LEFT_DOUBLE_QUOTE,
        '\u{201d}' => 0x85,
        '\u{2212}' => MINUS,
        c if c.is_alphanumeric() => 0x81,
        c if c.is_whitespace() => 0x82,
        _ => 0x80,
    }
}

/// What the passes do at a `Narrow` byte (`KINDS`): a letter run or a digit run opens a token; a number
/// may open (`opens_number`). Neither: they step over it.
pub(super) const LETTER: u8 = 1;
pub(super) const DIGIT: u8 = 2;
pub(super) const OPENS_NUMBER: u8 = 4;
pub(super) const KINDS: [u8; 256] = {
    let mut kinds = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        kinds[b] = if c.is_ascii_alphabetic() { LETTER } else { 0 }
            | if c.is_ascii_digit() { DIGIT } else { 0 }
            | if super::numbers::opens_number(c) { OPENS_NUMBER } else { 0 };
        b += 1;
    }
    kinds
};

/// Prose as one byte a char (a view of it: `narrow` makes the units): ASCII chars as themselves, any
/// other as a byte from 0x80 on standing for it (`WIDE`); for ASCII prose, its own bytes. `text` finds a
/// span's own text again.
pub(super) struct Narrow<'a> {
    pub(super) prose: &'a str,
    pub(super) units: &'a [u8],
    /// Per non-ASCII char: its unit offset, and how many bytes more than units the prose holds up to and
    /// including it.
    wide: &'a [(usize, usize)],
}

/// The `Narrow` units of prose that is not all ASCII, and its non-ASCII chars (`Narrow::wide`).
pub(super) type Units = (Vec<u8>, Vec<(usize, usize)>);

/// `Narrow` units of `prose`, None when it is ASCII (its own bytes are).
pub(super) fn narrow(prose: &str) -> Option<Units> {
    if prose.is_ascii() {
        return None;
    }
    let mut units = Vec::with_capacity(prose.len());
    let mut wide = Vec::new();
    let mut extra = 0;
    let mut rest = prose;
    // ASCII runs are copied whole; the chars between them are decoded one by one.
    while let Some(k) = rest.bytes().position(|b| b >= 0x80) {
        units.extend_from_slice(&rest.as_bytes()[..k]);
        let mut chars = rest[k..].chars();
        let c = chars.next().unwrap_or_default();
        extra += c.len_utf8() - 1;
        wide.push((units.len(), extra));
        units.push(wide_byte(c));
        rest = chars.as_str();
    }
    units.extend_from_slice(rest.as_bytes());
    Some((units, wide))
}

impl<'a> Narrow<'a> {
    /// The view of `prose` given `narrow(prose)`.
    pub(super) fn new(prose: &'a str, units: &'a Option<Units>) -> Narrow<'a> {
        match units {
            None => Narrow { prose, units: prose.as_bytes(), wide: &[] },
            Some((units, wide)) => Narrow { prose, units, wide },
        }
    }

    /// The prose's own text of units `a..b`.
    pub(super) fn text(&self, a: usize, b: usize) -> &'a str {
        &self.prose[self.offset(a)..self.offset(b)]
    }

    /// The byte offset in the prose of unit `unit`.
    fn offset(&self, unit: usize) -> usize {
        match self.wide.partition_point(|&(u, _)| u < unit) {
            0 => unit,
            k => unit + self.wide[k - 1].1,
        }
    }
}

impl Unit for u8 {
    /// The char itself when ASCII, else what it stands for in `Narrow` prose (`WIDE`).
    #[inline(always)]
    fn ch(self) -> char {
        if self < 0x80 {
            self as char
        } else {
            WIDE[(self & 7) as usize]
        }
    }

    #[inline(always)]
    fn byte(self) -> u8 {
        self
    }

    #[inline(always)]
    fn is_entity(self) -> bool {
        self.is_ascii_alphanumeric() || matches!(self, b'&' | b'\'' | b'-' | RIGHT_QUOTE)
    }

    #[inline(always)]
    fn is_space(self) -> bool {
        // `WIDE[2]` (U+00A0) stands for every non-ASCII whitespace char.
        matches!(self, b'\t'..=b'\r' | b' ' | 0x82)
    }

    fn ascii_text(run: &[u8]) -> Cow<'_, str> {
        String::from_utf8_lossy(run)
    }

    #[inline]
    fn pack_lower(run: &[u8]) -> Option<u128> {
        // Setting bit 5 of an ASCII letter lower-cases it; the padding's zero bytes must stay zero.
        // (`packed` is None past 16 bytes; the mask is only built for a packed word, so the shift stays in range.)
        super::lexicon::packed(run).map(|p| {
            let bits = if run.len() >= 16 { u128::MAX } else { (1u128 << (8 * run.len())) - 1 };
            p | (0x2020_2020_2020_2020_2020_2020_2020_2020 & bits)
        })
    }

    fn find(units: &[u8], from: usize, to: usize, a: char, b: char) -> Option<usize> {
        let byte = |c: char| {
            let b = if c.is_ascii() { c as u8 } else { wide_byte(c) };
            debug_assert_eq!(b.ch(), c, "{c:?} has no byte of its own");
            b
        };
        Some(from + memchr::memchr2(byte(a), byte(b), &units[from..to])?)
    }

    /// Eight bytes at a time (with their top bits cleared the per-byte sums below never carry into the
    /// next byte; a byte with its top bit set stands for a non-ASCII char, not a letter).
    #[inline]
    fn letters_end(units: &[u8], mut i: usize) -> usize {
        const LOW: u64 = 0x0101_0101_0101_0101;
        while let Some(chunk) = units.get(i..i + 8) {
            let raw = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            let x = (raw | (0x20 * LOW)) & (0x7f * LOW);
            // Top bit of each byte: set when the byte (lower-cased) is >= 'a', and when it is > 'z'.
            let from_a = x + (0x80 - b'a' as u64) * LOW;
            let past_z = x + (0x80 - b'z' as u64 - 1) * LOW;
            let other = (!(from_a & !past_z) | raw) & (0x80 * LOW);
            if other != 0 {
                return i + (other.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while i < units.len() && units[i].is_ascii_alphabetic() {
            i += 1;
        }
        i
    }
}
