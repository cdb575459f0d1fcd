//! What the verifier's passes read: a `char` of the prose, or a byte when the prose is ASCII.

/// One unit of the prose: a `char`, or a byte when the prose is ASCII (then bytes and chars are the same
/// units at the same offsets, and every pass reads a quarter of the memory without collecting chars).
pub(crate) trait Unit: Copy {
    fn ch(self) -> char;

    /// A run of ASCII letters, lower-cased and packed as `lexicon::packed` packs a word; None beyond 16.
    fn pack_lower(run: &[Self]) -> Option<u128>;
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
        let bits = match run.len() {
            16 => u128::MAX,
            n => (1u128 << (8 * n)) - 1,
        };
        super::lexicon::packed(run).map(|p| p | (0x2020_2020_2020_2020_2020_2020_2020_2020 & bits))
    }
}
