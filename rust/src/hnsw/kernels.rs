//! Distance kernels for the HNSW index: inner product of an f32 query with an f32 or f16 stored vector,
//! AVX2+FMA(+F16C) when the CPU has them, portable loops otherwise; f32 <-> f16 conversion.
//!
//! Pure arithmetic on slices; no allocation.

/// Inner product, dispatched to an AVX-512F kernel, else an AVX2+FMA kernel, when the CPU has one.
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the required CPU feature was just checked.
            return unsafe { dot_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the required CPU features were just checked.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Over the shorter of the two lengths, as the SIMD kernels.
pub(super) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let n = a.len().min(b.len());
    let chunks = n / 8;
    for i in 0..chunks {
        for j in 0..8 {
            acc[j] += a[i * 8 + j] * b[i * 8 + j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(acc: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let hi = _mm256_extractf128_ps(acc, 1);
    let lo = _mm256_castps256_ps128(acc);
    let s4 = _mm_add_ps(hi, lo);
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    _mm_cvtss_f32(s1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        acc1 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 8)),
            _mm256_loadu_ps(pb.add(i + 8)),
            acc1,
        );
        i += 16;
    }
    if i + 8 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        i += 8;
    }
    let mut s = hsum(_mm256_add_ps(acc0, acc1));
    while i < n {
        s += *pa.add(i) * *pb.add(i);
        i += 1;
    }
    s
}

/// 16 lanes a step with two accumulators (an FMA's latency is hidden behind the other's); the tail of
/// fewer than 16 goes through masked loads, which never touch the lanes masked off.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm512_setzero_ps();
    let mut acc1 = _mm512_setzero_ps();
    let mut i = 0;
    while i + 32 <= n {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
        acc1 = _mm512_fmadd_ps(
            _mm512_loadu_ps(pa.add(i + 16)),
            _mm512_loadu_ps(pb.add(i + 16)),
            acc1,
        );
        i += 32;
    }
    if i + 16 <= n {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = (1u16 << (n - i)) - 1; // n - i < 16
        acc1 = _mm512_fmadd_ps(
            _mm512_maskz_loadu_ps(mask, pa.add(i)),
            _mm512_maskz_loadu_ps(mask, pb.add(i)),
            acc1,
        );
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
}

/// Inner product of an f32 query with an f16 vector (IEEE half bits), F16C+AVX2+FMA when available.
pub(super) fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the required CPU features were just checked.
            return unsafe { dot_f16_avx2(a, b) };
        }
    }
    dot_f16_portable(a, b)
}

pub(super) fn dot_f16_portable(a: &[f32], b: &[u16]) -> f32 {
    let mut acc = [0.0f32; 8];
    let n = a.len().min(b.len());
    let chunks = n / 8;
    for i in 0..chunks {
        for j in 0..8 {
            acc[j] += a[i * 8 + j] * f16_to_f32(b[i * 8 + j]);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        s += a[i] * f16_to_f32(b[i]);
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_avx2(a: &[f32], b: &[u16]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        let h0 = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i) as *const __m128i));
        let h1 = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i + 8) as *const __m128i));
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), h0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), h1, acc1);
        i += 16;
    }
    if i + 8 <= n {
        let h0 = _mm256_cvtph_ps(_mm_loadu_si128(pb.add(i) as *const __m128i));
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), h0, acc0);
        i += 8;
    }
    let mut s = hsum(_mm256_add_ps(acc0, acc1));
    while i < n {
        s += *pa.add(i) * f16_to_f32(*pb.add(i));
        i += 1;
    }
    s
}

/// Inner product of an f32 query with a signed-byte vector (the caller applies the vector's scale),
/// AVX2+FMA when available.
pub(super) fn dot_i8(a: &[f32], b: &[i8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the required CPU features were just checked.
            return unsafe { dot_i8_avx2(a, b) };
        }
    }
    dot_i8_portable(a, b)
}

pub(super) fn dot_i8_portable(a: &[f32], b: &[i8]) -> f32 {
    let mut acc = [0.0f32; 8];
    let n = a.len().min(b.len());
    let chunks = n / 8;
    for i in 0..chunks {
        for j in 0..8 {
            acc[j] += a[i * 8 + j] * f32::from(b[i * 8 + j]);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        s += a[i] * f32::from(b[i]);
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_i8_avx2(a: &[f32], b: &[i8]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        let raw = _mm_loadu_si128(pb.add(i) as *const __m128i);
        let lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(raw));
        let hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(raw)));
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), lo, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), hi, acc1);
        i += 16;
    }
    let mut s = hsum(_mm256_add_ps(acc0, acc1));
    while i < n {
        s += *pa.add(i) * f32::from(*pb.add(i));
        i += 1;
    }
    s
}

/// An f32 query as 16-bit integers with one scale, for searching an int8 index with integer
/// multiply-adds: each component within scale/2 = max|q|/32766 of the original (the stored bytes carry
/// ~250 times more rounding), so a distance moves by ~1e-5 at most.
pub(super) struct QueryI16 {
    scale: f32,
    values: Vec<i16>,
}

/// The quantized query's peak: a lane of the AVX2 kernel sums dim/8 products of at most 16383 * 128,
/// within i32 up to `QUERY_I16_MAX_DIM` (the lanes are added as i64).
const QUERY_I16_PEAK: f32 = 16383.0;
pub(super) const QUERY_I16_MAX_DIM: usize = 4096;
/// Up to this many components the whole sum of products stays within i32 (1024 * 16383 * 128 < 2^31).
const I32_SUM_MAX_DIM: usize = 1024;

impl QueryI16 {
    /// None unless the CPU has AVX2 (the f32 kernel is used otherwise), the query fits
    /// `QUERY_I16_MAX_DIM` and every component is finite with a non-zero peak.
    pub(super) fn new(q: &[f32]) -> Option<QueryI16> {
        if QueryI16::available(q.len()) {
            QueryI16::quantize(q)
        } else {
            None
        }
    }

    /// A stored int8 vector (its scale and bytes) as a query: its bytes widened to i16 are its exact
    /// values, so its inner product with another stored vector is the exact integer sum of their bytes'
    /// products times both scales (the f32 path rounds the decoded components first). None without AVX2.
    pub(super) fn from_i8(scale: f32, bytes: &[i8]) -> Option<QueryI16> {
        QueryI16::available(bytes.len()).then(|| QueryI16 {
            scale,
            values: bytes.iter().map(|&b| i16::from(b)).collect(),
        })
    }

    /// Whether this CPU builds integer queries of `dim` components (AVX2, `dim <= QUERY_I16_MAX_DIM`).
    pub(super) fn available(dim: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            dim <= QUERY_I16_MAX_DIM && std::arch::is_x86_feature_detected!("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = dim;
            false
        }
    }

    fn quantize(q: &[f32]) -> Option<QueryI16> {
        // Eight running peaks, with comparisons instead of `f32::max` (whose NaN rule keeps a reduction
        // scalar): the loop vectorises, and the largest |x| is the same whatever the order.
        let mut peaks = [0.0f32; 8];
        let mut finite = true;
        let chunks = q.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for (p, &x) in peaks.iter_mut().zip(c) {
                let a = x.abs();
                finite &= a < f32::INFINITY; // false for NaN too
                *p = if a > *p { a } else { *p };
            }
        }
        for &x in rest {
            let a = x.abs();
            finite &= a < f32::INFINITY;
            peaks[0] = if a > peaks[0] { a } else { peaks[0] };
        }
        let peak = peaks.iter().fold(0.0f32, |m, &p| if p > m { p } else { m });
        if !finite || peak <= 0.0 {
            return None;
        }
        let inv = QUERY_I16_PEAK / peak;
        // Rounded half away from zero by hand: `f32::round` is a libm call per component without SSE4.1.
        // |x * inv| <= peak * inv, i.e. 16383 up to one rounding, so the truncation stays within range
        // (through i32, which converts eight at a time; the saturating cast to i16 does not).
        let values = q
            .iter()
            .map(|&x| {
                let y = x * inv;
                (y + 0.5f32.copysign(y)) as i32 as i16
            })
            .collect();
        Some(QueryI16 {
            scale: peak / QUERY_I16_PEAK,
            values,
        })
    }

    /// The exact integer sum of the query's values times `b` (its scale not applied).
    #[inline]
    pub(super) fn dot_raw(&self, b: &[i8]) -> i64 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: a query is built only when the CPU has AVX2.
            unsafe { dot_i16_i8_avx2(&self.values, b) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            dot_i16_i8_portable(&self.values, b)
        }
    }

    /// The query's scale.
    pub(super) fn scale(&self) -> f32 {
        self.scale
    }

    /// The query's inner product with stored signed bytes (as `dot_i8` of the f32 query, within ~1e-5
    /// relative).
    #[inline]
    pub(super) fn dot(&self, b: &[i8]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `new` builds a query only when the CPU has AVX2.
            unsafe { dot_i16_i8_avx2(&self.values, b) as f32 * self.scale }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            dot_i16_i8_portable(&self.values, b) as f32 * self.scale
        }
    }
}

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn dot_i16_i8_portable(q: &[i16], b: &[i8]) -> i64 {
    q.iter()
        .zip(b)
        .map(|(&x, &y)| i64::from(x) * i64::from(y))
        .sum()
}

/// Signed bytes widened to i16 and multiplied pairwise into i32 lanes (`vpmaddwd`): 32 components per
/// step instead of 16 with float conversion and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i16_i8_avx2(q: &[i16], b: &[i8]) -> i64 {
    use std::arch::x86_64::*;
    let n = q.len().min(b.len());
    let (pq, pb) = (q.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_si256();
    let mut acc1 = _mm256_setzero_si256();
    let mut i = 0;
    while i + 32 <= n {
        let b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i) as *const __m128i));
        let b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i + 16) as *const __m128i));
        let q0 = _mm256_loadu_si256(pq.add(i) as *const __m256i);
        let q1 = _mm256_loadu_si256(pq.add(i + 16) as *const __m256i);
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(b0, q0));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(b1, q1));
        i += 32;
    }
    if i + 16 <= n {
        let b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i) as *const __m128i));
        let q0 = _mm256_loadu_si256(pq.add(i) as *const __m256i);
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(b0, q0));
        i += 16;
    }
    let acc = _mm256_add_epi32(acc0, acc1);
    let mut s: i64 = if n <= I32_SUM_MAX_DIM {
        // The whole sum fits i32: added across lanes in registers.
        let x = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0b01_00_11_10>(x));
        let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0b10_11_00_01>(x));
        i64::from(_mm_cvtsi128_si32(x))
    } else {
        // A lane holds at most dim/8 products (within i32 up to `QUERY_I16_MAX_DIM`); the sum may not.
        let mut lanes = [0i32; 8];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc);
        lanes.iter().map(|&x| i64::from(x)).sum()
    };
    while i < n {
        s += i64::from(*pq.add(i)) * i64::from(*pb.add(i));
        i += 1;
    }
    s
}

/// Decodes a run of IEEE half values into f32 (F16C, 8 at a time, when the CPU has it).
pub(super) fn f16_slice_to_f32(src: &[u16], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the required CPU features were just checked.
            unsafe { f16_slice_to_f32_f16c(src, dst) };
            return;
        }
    }
    for (o, &h) in dst.iter_mut().zip(src) {
        *o = f16_to_f32(h);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn f16_slice_to_f32_f16c(src: &[u16], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + 8 <= n {
        let h = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
        _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        i += 8;
    }
    while i < n {
        dst[i] = f16_to_f32(src[i]);
        i += 1;
    }
}

/// IEEE half bits -> f32 (exact).
pub(super) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: renormalise.
            let shift = man.leading_zeros() - 21;
            let man = (man << shift) & 0x3ff;
            sign | ((113 - shift) << 23) | (man << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// f32 -> IEEE half bits, rounding to nearest even (overflow to infinity, underflow through subnormals).
pub(super) fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1u32 << shift) - 1);
        let mut out = m >> shift;
        if rest > half || (rest == half && out & 1 == 1) {
            out += 1;
        }
        return sign | out as u16;
    }
    let rest = man & 0x1fff;
    let mut out = ((e as u32) << 10) | (man >> 13);
    if rest > 0x1000 || (rest == 0x1000 && out & 1 == 1) {
        out += 1; // may carry into the exponent, which is the correct rounding
    }
    sign | out as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trip_and_rounding() {
        for x in [
            0.0f32,
            1.0,
            -2.0,
            0.333_251_95,
            65504.0,
            6.103_515_6e-5,
            5.960_464_5e-8,
        ] {
            assert_eq!(f16_to_f32(f32_to_f16(x)), x, "{x}");
        }
        assert_eq!(f32_to_f16(1e6), 0x7c00);
        assert_eq!(f32_to_f16(1e-9), 0);
        // Every half value survives the round trip.
        for h in 0u16..0x7c00 {
            assert_eq!(f32_to_f16(f16_to_f32(h)), h, "{h:#x}");
        }
        // Relative error of a normal value is at most 2^-11.
        let x = 0.123_456_79f32;
        assert!((f16_to_f32(f32_to_f16(x)) - x).abs() <= x * 4.9e-4);
    }

    /// Every f32 kernel this CPU can run (the portable loop always; AVX2 and AVX-512 when present, said on
    /// stderr when not) against an f64 sum, at lengths around each kernel's step and tail.
    #[test]
    fn f32_kernels_agree() {
        type Kernel = fn(&[f32], &[f32]) -> f32;
        let mut kernels: Vec<(&str, Kernel)> =
            vec![("portable", dot_portable), ("dispatched", dot)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the features were just checked.
                kernels.push(("avx2", |a, b| unsafe { dot_avx2(a, b) }));
            } else {
                eprintln!("f32_kernels_agree: no AVX2+FMA here, that kernel is not tested");
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature was just checked.
                kernels.push(("avx512", |a, b| unsafe { dot_avx512(a, b) }));
            } else {
                eprintln!("f32_kernels_agree: no AVX-512F here, that kernel is not tested");
            }
        }
        for n in [
            0usize, 1, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 63, 256, 383, 384, 1025,
        ] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 13.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 17) as f32 - 8.0) / 9.0).collect();
            let exact: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum();
            for (name, kernel) in &kernels {
                let got = f64::from(kernel(&a, &b));
                assert!(
                    (got - exact).abs() <= 1e-5 * exact.abs().max(1.0),
                    "{name} n={n}: {got} vs {exact}"
                );
                // Unequal lengths: the shorter one decides.
                if n > 0 {
                    let short = f64::from(kernel(&a, &b[..n - 1]));
                    let want: f64 = exact - f64::from(a[n - 1]) * f64::from(b[n - 1]);
                    assert!(
                        (short - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "{name} n={n} shortened"
                    );
                }
            }
        }
    }

    #[test]
    fn f16_kernels_agree() {
        let a: Vec<f32> = (0..37)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 13.0)
            .collect();
        let b: Vec<u16> = a.iter().rev().map(|&x| f32_to_f16(x)).collect();
        let exact: f32 = a.iter().zip(&b).map(|(x, &h)| x * f16_to_f32(h)).sum();
        assert!((dot_f16(&a, &b) - exact).abs() < 1e-5);
        assert!((dot_f16_portable(&a, &b) - exact).abs() < 1e-5);
        let mut decoded = vec![0.0f32; b.len()];
        f16_slice_to_f32(&b, &mut decoded);
        assert!(decoded.iter().zip(&b).all(|(&x, &h)| x == f16_to_f32(h)));
    }

    #[test]
    fn i16_query_kernel_agrees() {
        for n in [
            1usize, 15, 16, 17, 31, 32, 33, 48, 384, 1023, 1024, 1025, 1040,
        ] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 13.0).collect();
            let b: Vec<i8> = (0..n)
                .map(|i| ((i * 37 % 256) as i32 - 128) as i8)
                .collect();
            let exact: f32 = a.iter().zip(&b).map(|(x, &q)| x * f32::from(q)).sum();
            let q = QueryI16::quantize(&a).unwrap();
            assert_eq!(
                dot_i16_i8_portable(&q.values, &b) as f32 * q.scale,
                q.dot(&b),
                "n={n}"
            );
            let bound: f32 = b.iter().map(|&x| f32::from(x).abs()).sum::<f32>() * q.scale / 2.0;
            assert!((q.dot(&b) - exact).abs() <= bound * 1.01 + 1e-4, "n={n}");
        }
        // The largest products summed in i32 (up to `I32_SUM_MAX_DIM`) and in i64 beyond it.
        for n in [I32_SUM_MAX_DIM, I32_SUM_MAX_DIM + 16] {
            let q = QueryI16::quantize(&vec![-1.0f32; n]).unwrap();
            let b = vec![127i8; n];
            assert_eq!(dot_i16_i8_portable(&q.values, &b), -16383 * 127 * n as i64);
            assert_eq!(
                q.dot(&b),
                (-16383 * 127 * n as i64) as f32 * q.scale,
                "n={n}"
            );
            let q = QueryI16::quantize(&vec![1.0f32; n]).unwrap();
            let b = vec![-128i8; n];
            assert_eq!(
                q.dot(&b),
                (-16383 * 128 * n as i64) as f32 * q.scale,
                "n={n}"
            );
        }
        // The largest products at the largest dimension stay within i32.
        let a = vec![1.0f32; QUERY_I16_MAX_DIM];
        let q = QueryI16::quantize(&a).unwrap();
        let b = vec![-128i8; QUERY_I16_MAX_DIM];
        let total = -128i64 * 16383 * QUERY_I16_MAX_DIM as i64;
        assert_eq!(q.dot(&b), total as f32 * q.scale);
        assert!(QueryI16::new(&[0.0, 0.0]).is_none());
        assert!(QueryI16::new(&[f32::NAN, 1.0]).is_none());
    }

    /// The quantisation as first written (scalar `f32::max`, saturating cast to i16).
    fn quantize_reference(q: &[f32]) -> Option<(f32, Vec<i16>)> {
        let mut peak = 0.0f32;
        for &x in q {
            if !x.is_finite() {
                return None;
            }
            peak = peak.max(x.abs());
        }
        if peak <= 0.0 {
            return None;
        }
        let inv = QUERY_I16_PEAK / peak;
        let values = q
            .iter()
            .map(|&x| {
                let y = x * inv;
                (y + 0.5f32.copysign(y)) as i16
            })
            .collect();
        Some((peak / QUERY_I16_PEAK, values))
    }

    #[test]
    fn quantized_query_equals_the_scalar_reference() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for n in [1usize, 7, 8, 9, 16, 255, 256, 384] {
            for peak_at in [0, n / 2, n - 1] {
                let mut q: Vec<f32> = (0..n).map(|_| next()).collect();
                q[peak_at] = -0.75; // the peak anywhere, negative
                let got = QueryI16::quantize(&q).map(|x| (x.scale, x.values));
                assert_eq!(got, quantize_reference(&q), "n={n} peak at {peak_at}");
            }
        }
        let mut q = vec![0.25f32; 20];
        q[19] = 0.5 + 0.5 / QUERY_I16_PEAK; // halves round away from zero
        q[3] = -0.25;
        assert_eq!(
            QueryI16::quantize(&q).map(|x| (x.scale, x.values)),
            quantize_reference(&q)
        );
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in [0, 8, 12] {
                let mut q = vec![0.1f32; 13];
                q[at] = bad;
                assert!(QueryI16::quantize(&q).is_none(), "{bad} at {at}");
            }
        }
        assert!(QueryI16::quantize(&[0.0; 9]).is_none());
        assert!(QueryI16::quantize(&[]).is_none());
    }

    #[test]
    fn stored_vector_query_gives_exact_integer_sums() {
        let bytes = |n: usize, k: usize| -> Vec<i8> {
            (0..n).map(|i| ((i * k % 255) as i32 - 127) as i8).collect()
        };
        for n in [1usize, 15, 16, 31, 32, 33, 384] {
            let (a, b) = (bytes(n, 37), bytes(n, 91));
            let Some(q) = QueryI16::from_i8(0.01, &a) else {
                return; // no AVX2: insertion keeps the f32 kernel
            };
            let exact: i64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| i64::from(x) * i64::from(y))
                .sum();
            assert_eq!(q.dot(&b), exact as f32 * 0.01, "n={n}");
            // The f32 path over the decoded vector agrees up to its own rounding.
            let decoded: Vec<f32> = a.iter().map(|&x| f32::from(x) * 0.01).collect();
            assert!(
                (dot_i8(&decoded, &b) - q.dot(&b)).abs() <= 1e-4 * q.dot(&b).abs().max(1.0),
                "n={n}"
            );
            // The raw sum is the exact sum, from either side.
            assert_eq!(q.dot_raw(&b), exact, "n={n}");
            assert_eq!(
                QueryI16::from_i8(0.5, &b).unwrap().dot_raw(&a),
                exact,
                "n={n}"
            );
        }
    }

    #[test]
    fn i8_kernels_agree() {
        for n in [1usize, 15, 16, 17, 37, 256] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 13.0).collect();
            let b: Vec<i8> = (0..n)
                .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
                .collect();
            let exact: f32 = a.iter().zip(&b).map(|(x, &q)| x * f32::from(q)).sum();
            assert!(
                (dot_i8(&a, &b) - exact).abs() < 1e-3 * exact.abs().max(1.0),
                "n={n}"
            );
            assert!(
                (dot_i8_portable(&a, &b) - exact).abs() < 1e-3 * exact.abs().max(1.0),
                "n={n}"
            );
        }
    }
}
