//! Distance kernels for the HNSW index: inner product of an f32 query with an f32, f16 or int8 stored
//! vector, AVX-512 / AVX2+FMA(+F16C) when the CPU has them, portable loops otherwise; f32 <-> f16
//! conversion. The integer query of an int8 index is `query_i16`.
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
