//! The token-embedding table and its row sums: int8 rows with one f32 scale per column.
//!
//! Format (`models/embedding/table.q8`): `dim` little-endian f32 column scales, then `rows x dim` int8,
//! row-major. A value `q` in column `c` stands for `q * scale[c]`. Values lie in -127..=127 (-128 is refused
//! when the table is read), so up to `MAX_ROWS_PER_LANE` rows sum exactly in an i16 lane: a text's row sum is
//! an exact integer per column, the same whatever the order or the kernel, and is scaled once at the end.
//! A row is 256 bytes at 256 columns, four cache lines, half an fp16 row; summing it is 16 widening loads
//! and 16 integer adds on AVX2.
//!
//! Pure: reads an owned byte buffer, never touches files.

/// The table's bytes, owned by whoever loaded them (a `Vec<u8>`, or a Python `bytes` held by the binding).
pub type TableBytes = Box<dyn AsRef<[u8]> + Send + Sync>;

/// Largest magnitude of a stored value.
const MAX_VALUE: i32 = 127;
/// Rows whose sum always fits an i16 lane (258 x 127 = 32,766).
pub(super) const MAX_ROWS_PER_LANE: usize = (i16::MAX as i32 / MAX_VALUE) as usize;
/// How many ids ahead the AVX2 kernel fetches a row's lines.
#[cfg(target_arch = "x86_64")]
const PREFETCH_AHEAD: usize = 8;

/// How rows are summed on this CPU (decided once, when the table is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// x86-64 with AVX2, `dim` a multiple of 16.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Scalar,
}

impl Kernel {
    fn best(dim: usize) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if dim.is_multiple_of(16) && is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
        let _ = dim;
        Kernel::Scalar
    }
}

/// A `rows x dim` int8 table with its column scales.
pub struct QuantTable {
    bytes: TableBytes,
    scales: Vec<f32>,
    dim: usize,
    rows: usize,
    kernel: Kernel,
}

impl QuantTable {
    /// Reads the table (see the module docs for the format); keeps `bytes` without copying it.
    pub fn parse(bytes: TableBytes, dim: usize) -> Result<QuantTable, String> {
        let raw = (*bytes).as_ref();
        if dim == 0 {
            return Err("embedding dim must be > 0".into());
        }
        let head = 4 * dim;
        if raw.len() < head || !(raw.len() - head).is_multiple_of(dim) {
            return Err(format!(
                "table size {} is not {head} bytes of column scales plus whole rows of {dim} int8 values",
                raw.len()
            ));
        }
        let scales: Vec<f32> = raw[..head]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(bad) = scales.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
            return Err(format!("column scale {bad} is not a finite non-negative number"));
        }
        if raw[head..].contains(&0x80) {
            return Err("table holds -128; values must lie in -127..=127".into());
        }
        Ok(QuantTable {
            rows: (raw.len() - head) / dim,
            scales,
            dim,
            kernel: Kernel::best(dim),
            bytes,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held (what the table adds to the process RSS once touched).
    pub fn len_bytes(&self) -> usize {
        (*self.bytes).as_ref().len()
    }

    fn values(&self) -> &[u8] {
        &(*self.bytes).as_ref()[4 * self.dim..]
    }

    /// `out[c] = scale[c] * (sum over ids of row[id][c])`, every id < rows.
    ///
    /// # Panics
    /// If `out.len() != dim` or an id is out of range.
    pub fn sum_into(&self, ids: &[u32], out: &mut [f32]) {
        assert_eq!(out.len(), self.dim, "output buffer has the wrong length");
        assert!(ids.iter().all(|&id| (id as usize) < self.rows), "row id out of range");
        let mut total = vec![0i32; self.dim];
        for chunk in ids.chunks(MAX_ROWS_PER_LANE) {
            match self.kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Kernel::best` chose Avx2 after detecting AVX2 with dim % 16 == 0; every id < rows
                // (asserted above); a chunk holds at most MAX_ROWS_PER_LANE rows.
                Kernel::Avx2 => unsafe { sum_avx2(self.values(), self.dim, chunk, &mut total) },
                Kernel::Scalar => sum_scalar(self.values(), self.dim, chunk, &mut total),
            }
        }
        for ((o, t), s) in out.iter_mut().zip(&total).zip(&self.scales) {
            *o = *t as f32 * s;
        }
    }
}

/// `total[c] += sum over ids of values[id][c]`, one column at a time.
fn sum_scalar(values: &[u8], dim: usize, ids: &[u32], total: &mut [i32]) {
    for &id in ids {
        let row = &values[id as usize * dim..(id as usize + 1) * dim];
        for (t, &v) in total.iter_mut().zip(row) {
            *t += i32::from(v as i8);
        }
    }
}

/// `sum_scalar` with AVX2: 128 columns at a time in eight 16-lane i16 accumulators kept in registers across the
/// rows, then blocks of 16; the first pass fetches the lines of the row `PREFETCH_AHEAD` ids ahead, so a long
/// text's rows (cold: the table is far larger than the caches) arrive in parallel rather than one stall each.
///
/// # Safety
/// The CPU must support AVX2; `dim % 16 == 0`, `total.len() == dim`, every `id < values.len() / dim`,
/// `ids.len() <= MAX_ROWS_PER_LANE`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_avx2(values: &[u8], dim: usize, ids: &[u32], total: &mut [i32]) {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi16, _mm256_add_epi32, _mm256_castsi256_si128, _mm256_cvtepi16_epi32, _mm256_cvtepi8_epi16,
        _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_setzero_si256, _mm256_storeu_si256, _mm_loadu_si128,
        _mm_prefetch, _MM_HINT_T0,
    };
    debug_assert!(dim.is_multiple_of(16) && total.len() == dim && ids.len() <= MAX_ROWS_PER_LANE);
    debug_assert!(ids.iter().all(|&id| (id as usize + 1) * dim <= values.len()));
    let base = values.as_ptr();
    let load = |id: u32, col: usize| -> __m256i {
        // SAFETY: id < rows and col + 16 <= dim, so the 16 bytes lie inside the table.
        _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(base.add(id as usize * dim + col).cast()) })
    };
    let prefetch_row = |id: u32| {
        let row = base.wrapping_add(id as usize * dim);
        let mut off = 0;
        while off < dim {
            // A prefetch never faults: `wrapping_add` may point anywhere.
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(off).cast());
            off += 64;
        }
    };
    // Adds the 16 i16 lanes of `acc` to total[col..col + 16].
    let flush = |acc: __m256i, total: &mut [i32], col: usize| {
        let t = total[col..col + 16].as_mut_ptr();
        let halves = [_mm256_castsi256_si128(acc), _mm256_extracti128_si256::<1>(acc)];
        for (h, half) in halves.into_iter().enumerate() {
            // SAFETY: t + 8h + 8 <= t + 16, inside total[col..col + 16].
            unsafe {
                let p = t.add(8 * h).cast::<__m256i>();
                let sum = _mm256_add_epi32(_mm256_loadu_si256(p), _mm256_cvtepi16_epi32(half));
                _mm256_storeu_si256(p, sum);
            }
        }
    };
    ids.iter().take(PREFETCH_AHEAD).for_each(|&id| prefetch_row(id));
    let mut col = 0;
    while col + 128 <= dim {
        let mut acc = [_mm256_setzero_si256(); 8];
        for (i, &id) in ids.iter().enumerate() {
            if col == 0 {
                if let Some(&ahead) = ids.get(i + PREFETCH_AHEAD) {
                    prefetch_row(ahead);
                }
            }
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm256_add_epi16(*a, load(id, col + 16 * k));
            }
        }
        for (k, a) in acc.into_iter().enumerate() {
            flush(a, total, col + 16 * k);
        }
        col += 128;
    }
    while col < dim {
        let mut acc = _mm256_setzero_si256();
        for &id in ids {
            acc = _mm256_add_epi16(acc, load(id, col));
        }
        flush(acc, total, col);
        col += 16;
    }
}

/// A table in the file format: `rows x dim` values `value(row, col)` with column scales `scale(col)`.
#[cfg(test)]
pub(super) fn table_bytes(
    dim: usize,
    rows: usize,
    scale: impl Fn(usize) -> f32,
    value: impl Fn(usize, usize) -> i8,
) -> Vec<u8> {
    let mut out: Vec<u8> = (0..dim).flat_map(|c| scale(c).to_le_bytes()).collect();
    for r in 0..rows {
        out.extend((0..dim).map(|c| value(r, c) as u8));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_table(dim: usize, rows: usize, seed: u64) -> Vec<u8> {
        let mut rng = crate::xorshift::XorShift::new(seed);
        let values: Vec<i8> = (0..rows * dim)
            .map(|k| match k % 5 {
                0 => 127,
                1 => -127,
                _ => ((rng.next() % 255) as i32 - 127) as i8,
            })
            .collect();
        table_bytes(dim, rows, |c| 0.5 + c as f32 / 64.0, |r, c| values[r * dim + c])
    }

    #[test]
    fn sums_are_exact_for_every_kernel_and_any_number_of_rows() {
        // One 128-column block and one 16-column block; more rows than an i16 lane may hold.
        for (dim, n) in [(144, 300), (16, 1), (128, MAX_ROWS_PER_LANE), (24, 40)] {
            let rows = 50;
            let t = QuantTable::parse(Box::new(random_table(dim, rows, 0x9e37_79b9_7f4a_7c15)), dim).unwrap();
            // Each row repeated often enough that the extremes push the lanes to their limit.
            let ids: Vec<u32> = (0..n).map(|k| (k * 5 % rows) as u32).collect();
            let mut want = vec![0i64; dim];
            for &id in &ids {
                let row = &t.values()[id as usize * dim..(id as usize + 1) * dim];
                want.iter_mut().zip(row).for_each(|(w, &v)| *w += i64::from(v as i8));
            }
            let mut got = vec![f32::NAN; dim];
            t.sum_into(&ids, &mut got);
            for (c, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.to_bits(), (*w as f32 * t.scales[c]).to_bits(), "dim {dim} col {c}");
            }
            let mut scalar = vec![0i32; dim];
            for chunk in ids.chunks(MAX_ROWS_PER_LANE) {
                sum_scalar(t.values(), dim, chunk, &mut scalar);
            }
            assert_eq!(scalar, want.iter().map(|&w| w as i32).collect::<Vec<_>>());
        }
    }

    #[test]
    fn every_value_is_read_as_the_signed_byte_it_is() {
        let dim = 16;
        let rows = 255;
        let t = QuantTable::parse(Box::new(table_bytes(dim, rows, |_| 1.0, |r, _| (r as i32 - 127) as i8)), dim).unwrap();
        for r in 0..rows {
            let mut out = vec![0.0; dim];
            t.sum_into(&[r as u32], &mut out);
            assert!(out.iter().all(|&v| v == (r as i32 - 127) as f32), "row {r}");
        }
    }

    #[test]
    fn malformed_tables_are_refused() {
        let good = table_bytes(16, 3, |_| 1.0, |_, _| 1);
        assert!(QuantTable::parse(Box::new(good.clone()), 16).is_ok());
        assert!(QuantTable::parse(Box::new(good[..good.len() - 1].to_vec()), 16).is_err());
        assert!(QuantTable::parse(Box::new(good.clone()), 0).is_err());
        assert!(QuantTable::parse(Box::new(vec![0u8; 10]), 16).is_err());
        assert!(QuantTable::parse(Box::new(table_bytes(16, 3, |_| 1.0, |r, c| if r == 2 && c == 7 { i8::MIN } else { 1 })), 16).is_err());
        assert!(QuantTable::parse(Box::new(table_bytes(16, 3, |c| if c == 3 { f32::NAN } else { 1.0 }, |_, _| 1)), 16).is_err());
        assert!(QuantTable::parse(Box::new(table_bytes(16, 3, |c| if c == 3 { -1.0 } else { 1.0 }, |_, _| 1)), 16).is_err());
    }
}
