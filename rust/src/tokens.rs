//! Token counting for cl100k_base / o200k_base and an approximation for other model families.
//!
//! Pure: placeholder (bytes/4 estimate) until the native-hot-path work lands.

/// Approximate token count: one token per four bytes, at least one for non-empty text.
pub fn approx_count(text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        text.len().div_ceil(4)
    }
}
