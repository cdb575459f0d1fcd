//! xorshift64: the deterministic pseudo-random numbers the crate's tests draw their inputs from (no `rand`
//! dependency; the same seed always gives the same inputs).

#[derive(Clone, Copy, Debug)]
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator starting from `seed` (which must not be 0: zero stays zero).
    pub(crate) fn new(seed: u64) -> XorShift {
        XorShift(seed)
    }

    /// The current state (what the last `next` returned, or the seed).
    pub(crate) fn state(&self) -> u64 {
        self.0
    }

    /// One step (`x ^= x << 13; x ^= x >> 7; x ^= x << 17`), returning the new state.
    #[allow(clippy::should_implement_trait)]
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
