//! The feature vector from the window's counts: scaling to the whole text, fractions and logarithms.

use super::counts::Counts;
use super::{FEATURE_DIM, N_STRUCT};
use std::sync::OnceLock;

/// Counts below this take their logarithm from a table (`ln1p_count`).
const SMALL_COUNTS: usize = 512;

/// `ln1p(n)` of every count below `SMALL_COUNTS`, computed once with `ln1p` itself, so a lookup gives the
/// same bits: a prompt's two dozen logarithms cost about as much as scanning 500 bytes of it.
fn small_count_logs() -> &'static [f32; SMALL_COUNTS] {
    static TABLE: OnceLock<[f32; SMALL_COUNTS]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|n| ln1p(n as f64)))
}

/// `ln1p(n * scale)`, from `small_count_logs` when that is `ln1p(n)` of a small count.
#[inline(always)]
fn ln1p_count(n: usize, scale: f64, logs: &[f32; SMALL_COUNTS]) -> f32 {
    if scale == 1.0 && n < SMALL_COUNTS {
        logs[n]
    } else {
        ln1p(n as f64 * scale)
    }
}

pub(super) fn ln1p(x: f64) -> f32 {
    x.ln_1p() as f32
}

impl Counts {
    /// The feature vector of `text` from the counts of its window.
    pub(super) fn write(self, text: &str, out: &mut [f32]) {
        assert_eq!(out.len(), FEATURE_DIM, "feature buffer has the wrong length");
        let c = self;
        let total = text.len() as f64;
        let window = c.bytes.max(1) as f64;
        let scale = if c.bytes == 0 { 1.0 } else { total / window };
        let frac = |n: usize| (n as f64 / window) as f32;
        let has_options = c.options >= 2;
        let stem_bytes = if has_options { c.stem_bytes.unwrap_or(c.bytes) } else { text.len() };
        let stem_words = if has_options { c.stem_words as f64 } else { c.words as f64 * scale };
        let sentences = if has_options { c.stem_sentences as f64 } else { c.stem_sentences as f64 * scale };
        out[0] = ln1p(total);
        let logs = small_count_logs();
        out[1] = ln1p_count(c.words, scale, logs);
        out[2] = ln1p_count(c.lines, scale, logs);
        out[3] = ln1p_count(c.numbers, scale, logs);
        out[4] = frac(c.digits);
        out[5] = frac(c.math);
        out[6] = frac(c.brackets);
        out[7] = frac(c.upper);
        out[8] = frac(c.punct);
        out[9] = if c.words > 0 { (c.word_letters as f64 / c.words as f64) as f32 } else { 0.0 };
        out[10] = if c.words > 0 { (c.long_words as f64 / c.words as f64) as f32 } else { 0.0 };
        out[11] = if has_options { 1.0 } else { 0.0 };
        out[12] = if has_options { ln1p(c.option_bytes as f64 / c.options as f64) } else { 0.0 };
        out[13] = if has_options { (c.option_digit_lines as f64 / c.options as f64) as f32 } else { 0.0 };
        out[14] = ln1p_count(stem_bytes, 1.0, logs);
        out[15] = ln1p(stem_words / sentences.max(1.0));
        out[16] = ln1p(sentences);
        out[17] = f32::from(u8::from(c.dollar));
        out[18] = f32::from(u8::from(c.percent));
        out[19] = f32::from(u8::from(c.code_fence));
        for (slot, &hits) in out[N_STRUCT..].iter_mut().zip(c.cues.iter()) {
            *slot = ln1p_count(hits as usize, scale, logs);
        }
    }
}
