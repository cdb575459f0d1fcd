//! The integer query of an int8 HNSW index: an f32 query (or a stored int8 vector) as 16-bit integers
//! with one scale, and its exact integer inner product with stored signed bytes (AVX2 `vpmaddwd`).
//!
//! Pure arithmetic on slices; no I/O.

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

#[cfg(test)]
mod tests {
    use super::super::kernels::dot_i8;
    use super::*;

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
}
