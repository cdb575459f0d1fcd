//! What the verifier's passes read: a `char` of the prose, or a byte when the prose is ASCII.

/// One unit of the prose: a `char`, or a byte when the prose is ASCII (then bytes and chars are the same
/// units at the same offsets, and every pass reads a quarter of the memory without collecting chars).
pub(crate) trait Unit: Copy {
    fn ch(self) -> char;
}

impl Unit for char {
    #[inline(always)]
    fn ch(self) -> char {
        self
    }
}

impl Unit for u8 {
    #[inline(always)]
    fn ch(self) -> char {
        self as char
    }
}
