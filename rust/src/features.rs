//! The complexity classifier's feature vector (versioned); see `FEATURE_VERSION`.
//!
//! Pure: placeholder until the complexity-router work lands.

/// Bumped whenever the meaning of any feature slot changes; the model card records it.
pub const FEATURE_VERSION: u32 = 0;
/// Number of f32 slots `extract` writes.
pub const FEATURE_DIM: usize = 1;

/// Writes the feature vector of `text` into `out` (length `FEATURE_DIM`).
pub fn extract(text: &str, out: &mut [f32]) {
    out[0] = (text.len() as f32 + 1.0).ln();
}
