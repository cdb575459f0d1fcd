//! What the verifier's passes read: a `char` of the prose, or a byte when the prose is ASCII.

/// One unit of the prose: a `char`, or a byte when the prose is ASCII (then bytes and chars are the same
/// units at the same offsets, and every pass reads a quarter of the memory without collecting chars).
pub(crate) trait Unit: Copy {
    fn ch(self) -> char;

    /// A run of ASCII letters, lower-cased and packed as `lexicon::packed` packs a word; None beyond 16.
    fn pack_lower(run: &[Self]) -> Option<u128>;

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

impl Unit for u8 {
    #[inline(always)]
    fn ch(self) -> char {
        self as char
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

    /// Eight bytes at a time (the prose is ASCII, so no byte has its top bit set and the per-byte sums
    /// below never carry into the next byte).
    #[inline]
    fn letters_end(units: &[u8], mut i: usize) -> usize {
        const LOW: u64 = 0x0101_0101_0101_0101;
        while let Some(chunk) = units.get(i..i + 8) {
            let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default()) | (0x20 * LOW);
            // Top bit of each byte: set when the byte (lower-cased) is >= 'a', and when it is > 'z'.
            let from_a = x + (0x80 - b'a' as u64) * LOW;
            let past_z = x + (0x80 - b'z' as u64 - 1) * LOW;
            let other = !(from_a & !past_z) & (0x80 * LOW);
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
