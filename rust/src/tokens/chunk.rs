//! `Chunk`: sixteen text bytes held as one value, with a bit mask of the lanes in an ASCII range and the
//! `short_key` of a prefix: SSE2 on x86_64 (part of its baseline), eight bytes at a time (SWAR) elsewhere.
//!
//! Pure. The hot scans (cl100k's word pieces, the feature words) ask one 16-byte load where a piece ends
//! and what its key is; on u128 a key of n lanes costs a dozen instructions of variable shifts, one vector
//! AND with a mask read from a sliding window of bytes here.

/// Sixteen bytes, first byte in lane 0.
#[derive(Clone, Copy)]
pub(crate) struct Chunk(Lanes);

#[cfg(target_arch = "x86_64")]
type Lanes = std::arch::x86_64::__m128i;
#[cfg(not(target_arch = "x86_64"))]
type Lanes = u128;

/// Sixteen 0xFF then sixteen zero bytes: the 16 bytes from `16 - n` keep the first `n` lanes of a chunk.
#[cfg(target_arch = "x86_64")]
static KEEP: [u8; 32] = {
    let mut t = [0u8; 32];
    let mut i = 0;
    while i < 16 {
        t[i] = 0xff;
        i += 1;
    }
    t
};

#[cfg(target_arch = "x86_64")]
impl Chunk {
    /// The first 16 bytes of `bytes`.
    ///
    /// # Panics
    /// If `bytes` holds fewer than 16.
    #[inline(always)]
    pub(crate) fn load(bytes: &[u8]) -> Chunk {
        use std::arch::x86_64::_mm_loadu_si128;
        assert!(bytes.len() >= 16);
        // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load reads 16 bytes of `bytes` (checked).
        Chunk(unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) })
    }

    /// Bit k set when byte k, OR-ed with `fold` (< 0x80; 0x20 folds A-Z onto a-z), lies in `lo..=hi` (both
    /// below 0x80, so only ASCII bytes can); bits 16 and up clear.
    #[inline(always)]
    pub(crate) fn within(self, lo: u8, hi: u8, fold: u8) -> u32 {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_sub_epi8};
        debug_assert!(lo <= hi && hi < 0x80 && fold < 0x80);
        // SAFETY: SSE2 is part of the x86_64 baseline (register operations only).
        unsafe {
            // `x - lo <= hi - lo` as unsigned bytes.
            let x = _mm_or_si128(self.0, _mm_set1_epi8(fold as i8));
            let t = _mm_sub_epi8(x, _mm_set1_epi8(lo as i8));
            _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8((hi - lo) as i8)), t)) as u32
        }
    }

    /// `short_key` of the first `n` (<= 15) bytes: the other lanes cleared, the length in the top byte.
    #[inline(always)]
    pub(crate) fn key(self, n: usize) -> u128 {
        use std::arch::x86_64::{_mm_and_si128, _mm_cvtsi128_si64, _mm_loadu_si128, _mm_unpackhi_epi64};
        debug_assert!(n <= 15);
        let keep = &KEEP[16 - n.min(16)..];
        // SAFETY: SSE2 is part of the x86_64 baseline; `keep` holds at least 16 bytes (from `16 - n` <= 16 of 32).
        let (lo, hi) = unsafe {
            let v = _mm_and_si128(self.0, _mm_loadu_si128(keep.as_ptr().cast()));
            (_mm_cvtsi128_si64(v) as u64, _mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)) as u64)
        };
        u128::from(lo) | u128::from(hi) << 64 | (n as u128) << 120
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Chunk {
    /// The first 16 bytes of `bytes`.
    ///
    /// # Panics
    /// If `bytes` holds fewer than 16.
    #[inline(always)]
    pub(crate) fn load(bytes: &[u8]) -> Chunk {
        let mut w = [0u8; 16];
        w.copy_from_slice(&bytes[..16]);
        Chunk(u128::from_le_bytes(w))
    }

    /// Bit k set when byte k, OR-ed with `fold` (< 0x80; 0x20 folds A-Z onto a-z), lies in `lo..=hi` (both
    /// below 0x80, so only ASCII bytes can); bits 16 and up clear.
    #[inline(always)]
    pub(crate) fn within(self, lo: u8, hi: u8, fold: u8) -> u32 {
        let half = |w: u64| gather_high_bits(super::ascii_range_mask(w, lo, hi, fold));
        half(self.0 as u64) | half((self.0 >> 64) as u64) << 8
    }

    /// `short_key` of the first `n` (<= 15) bytes: the other lanes cleared, the length in the top byte.
    #[inline(always)]
    pub(crate) fn key(self, n: usize) -> u128 {
        super::loaded_key(self.0, n)
    }
}

/// The high bit of each byte of `m` (others clear), as 8 bits: lane k's bit to bit k. Each lane's bit lands
/// on its own place in the top byte and the multiply's other partial products on distinct lower bits, so
/// nothing carries into it.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn gather_high_bits(m: u64) -> u32 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_keys_equal_the_byte_rules() {
        let mut rng = crate::xorshift::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let ranges = [(b'a', b'z', 0x20), (b'A', b'Z', 0), (b'0', b'9', 0), (b'\t', b'\r', 0), (b' ', b' ', 0)];
        for round in 0..20_000u64 {
            let r = rng.next();
            let bytes: Vec<u8> = (0..16)
                .map(|k| match (r >> (4 * (k % 16))) % 4 {
                    0 => (rng.next() % 256) as u8,
                    1 => b'a' + (rng.next() % 26) as u8,
                    2 => b'@' + (rng.next() % 28) as u8,
                    _ => (round % 256) as u8,
                })
                .collect();
            let chunk = Chunk::load(&bytes);
            for (lo, hi, fold) in ranges {
                let expect = bytes
                    .iter()
                    .enumerate()
                    .map(|(k, &b)| u32::from(b < 0x80 && (lo..=hi).contains(&(b | fold))) << k)
                    .sum::<u32>();
                assert_eq!(chunk.within(lo, hi, fold), expect, "{bytes:?} {lo}..={hi} | {fold}");
            }
            for n in 0..=15 {
                assert_eq!(chunk.key(n), crate::tokens::short_key(&bytes[..n]), "{bytes:?} {n}");
            }
        }
    }

    #[test]
    fn gathers_high_bits() {
        for m in [0u64, !0, 0x80, 0x8000_0000_0000_0000, 0x0080_8000_0080_0080, 0xff7f_00ff_8081_0203] {
            let expect = (0..8).map(|k| u32::from(m >> (8 * k + 7) & 1 == 1) << k).sum::<u32>();
            assert_eq!(gather_high_bits(m & 0x8080_8080_8080_8080), expect, "{m:#x}");
        }
    }
}
