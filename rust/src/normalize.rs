//! Conversation normalisation: the canonical text a prompt is analysed as, and the exact-cache key.
//!
//! Pure: owns no state. Placeholder until the native-hot-path work lands.

/// Lower-cases, folds white space runs to one space and trims.
pub fn normalize_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for ch in text.chars() {
        if ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(ch.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_space() {
        assert_eq!(normalize_key("  Hello \n\t World  "), "hello world");
    }
}
