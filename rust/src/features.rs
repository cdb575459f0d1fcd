//! The complexity classifier's feature vector (versioned): cheap structure and cue statistics of a prompt.
//!
//! Pure: no I/O, no allocation per call. The router model card records `FEATURE_VERSION`; the scorer refuses a
//! model trained on another version, so bump it whenever the meaning of any slot changes.
//!
//! # Version 2 (`FEATURE_DIM` = 40), slot by slot (names in `FEATURE_NAMES`)
//! (Version 1 had the same slots over a 16 KiB window: too slow for the 50 µs budget at 16,000 tokens.)
//! Sizes and counts are measured on a bounded *window*: the whole text up to `WINDOW_BYTES`, else its
//! first and last `WINDOW_BYTES / 2` bytes (cut on UTF-8 boundaries). Counts seen in the window are scaled by
//! `total / window` so they estimate the whole text; fractions are window fractions. This keeps the cost
//! O(1) in the prompt length (a 16,000-token prompt costs the same as a 2,000-token one).
//! - 0 `ln_bytes`: ln(1 + UTF-8 bytes of the whole text).
//! - 1 `ln_words`, 2 `ln_lines`, 3 `ln_numbers`: ln(1 + estimated count) of words (ASCII-letter runs),
//!   line breaks, and numbers (digit runs, `3.5` counts once).
//! - 4 `digit_frac`, 5 `math_frac` (`+-*/=^<>`), 6 `bracket_frac` (`{}[]();`), 7 `upper_frac`,
//!   8 `punct_frac` (`.,:;!?`): share of window bytes.
//! - 9 `mean_word_len`: mean word length in letters; 10 `long_word_frac`: share of words over 8 letters.
//! - 11 `has_options`: 1 if at least two lines start like multiple-choice options (`A.`/`A)` .. `E.`);
//!   12 `ln_option_len`: ln(1 + mean option line length); 13 `option_digit_frac`: share of option lines
//!   holding a digit.
//! - 14 `ln_stem_bytes`: ln(1 + bytes before the first option line (the whole text if none));
//!   15 `ln_sentence_words`: ln(1 + stem words per sentence); 16 `ln_sentences`: ln(1 + stem sentences
//!   (`.?!` followed by space or end)).
//! - 17 `has_dollar`, 18 `has_percent`, 19 `has_code_fence` (```` ``` ````): 0/1.
//! - 20..=39 cue groups: ln(1 + number of whole-word (lower-cased ASCII) hits) for each group listed in
//!   `CUE_GROUPS` (quantity questions, arithmetic, math terms, code, logic, negation, statement/scenario
//!   formats, explanation, creative writing, role play, extraction/format, multi-step, comparison,
//!   truth values, "of the following" (bigrams only), `|` characters (counted as symbols), conditionals,
//!   business/money, choice questions, time). Topic words (science, law, history...) were tried and
//!   dropped: they memorise MMLU subjects and lowered subject-grouped cross-validation.
//!
//! Here: the slots, the cue words and the window. The staged scan is in `scan`, what each byte and word adds
//! in `counts`, the cue-word table in `cue_table`, the vector from the counts in `vector`.

mod counts;
mod cue_table;
mod scan;
mod vector;

pub(crate) use cue_table::word_info;
pub(crate) use scan::FeatureScan;

/// Bumped whenever the meaning of any feature slot changes; the model card records it.
pub const FEATURE_VERSION: u32 = 2;
/// Number of f32 slots `extract` writes.
pub const FEATURE_DIM: usize = 40;
/// Longest stretch of text scanned (half from the head, half from the tail beyond it).
pub const WINDOW_BYTES: usize = 8 * 1024;

const N_STRUCT: usize = 20;
const N_CUES: usize = FEATURE_DIM - N_STRUCT;
/// Cue group fed only by the bigrams "of the" / "the following" (MCQ boilerplate).
const OF_THE_FOLLOWING: usize = 14;
/// Cue group counting `|` characters ("Statement 1 | ..." formats); fed by `symbol`, not by words.
const PIPES: usize = 15;

/// Name of every slot, in order (for model cards and debugging).
pub const FEATURE_NAMES: [&str; FEATURE_DIM] = [
    "ln_bytes", "ln_words", "ln_lines", "ln_numbers", "digit_frac", "math_frac", "bracket_frac", "upper_frac",
    "punct_frac", "mean_word_len", "long_word_frac", "has_options", "ln_option_len", "option_digit_frac",
    "ln_stem_bytes", "ln_sentence_words", "ln_sentences", "has_dollar", "has_percent", "has_code_fence",
    "cue_quantity", "cue_arithmetic", "cue_math", "cue_code", "cue_logic", "cue_negation", "cue_statement",
    "cue_explain", "cue_creative", "cue_roleplay", "cue_extract", "cue_steps", "cue_compare", "cue_truth",
    "cue_of_the_following", "cue_pipes", "cue_conditional", "cue_business", "cue_choice", "cue_time",
];

/// Whole words (lower-cased) that count towards each cue group; bigram cues are handled in `bigram_cue`.
pub const CUE_GROUPS: [&[&str]; N_CUES] = [
    &["many", "much"],
    &["calculate", "compute", "total", "each", "per", "every", "remaining", "left", "twice", "half", "times",
      "percent", "average", "sum", "difference", "ratio", "rate", "cost", "costs", "price"],
    &["equation", "probability", "derivative", "integral", "matrix", "solve", "prove", "theorem", "polynomial",
      "function", "integer", "prime", "vector", "graph", "variable", "limit", "series", "root", "modulo"],
    &["code", "python", "program", "algorithm", "implement", "debug", "sql", "java", "javascript", "class",
      "return", "def", "array", "string", "compile", "bug", "api", "regex", "recursion", "complexity"],
    &["logic", "implies", "valid", "invalid", "argument", "premise", "premises", "conclusion", "therefore",
      "fallacy", "entails", "contradiction", "only", "necessarily", "sufficient"],
    &["not", "except", "least", "never", "neither", "nor", "cannot"],
    &["statement", "scenario", "scenarios", "statements"],
    &["explain", "why", "describe", "analyze", "analyse", "reason", "reasoning", "justify", "discuss"],
    &["write", "story", "poem", "essay", "email", "blog", "letter", "creative", "draft", "limerick", "song"],
    &["imagine", "pretend", "roleplay", "persona", "character", "act"],
    &["extract", "json", "format", "table", "csv", "list", "yaml", "summarize", "summarise", "rephrase"],
    &["step", "steps", "first", "second", "finally", "next", "after", "before", "then"],
    &["compare", "contrast", "versus", "better", "best", "worse", "most", "more", "less"],
    &["true", "false", "correct", "incorrect", "wrong", "right"],
    &[],
    &[],
    &["if", "unless", "suppose", "assume", "assuming", "given", "whenever", "provided"],
    &["company", "market", "business", "profit", "sales", "tax", "income", "accounting", "money", "dollars",
      "bank", "economy", "interest"],
    &["which", "following", "best", "likely", "correct", "true"],
    &["hours", "hour", "minutes", "days", "day", "weeks", "week", "years", "year", "months", "month"],
];

/// Byte ranges scanned for `text`: the whole text, or a head and a tail of `WINDOW_BYTES / 2` each.
fn window(text: &str) -> (&str, &str) {
    head_and_tail(text, WINDOW_BYTES)
}

/// `text` whole when it has at most `max_bytes`, else its first and last `max_bytes / 2` (cut back to
/// character boundaries): what bounded scans (features, router n-grams) read of a long text.
pub(crate) fn head_and_tail(text: &str, max_bytes: usize) -> (&str, &str) {
    if text.len() <= max_bytes {
        return (text, "");
    }
    let half = max_bytes / 2;
    let mut head_end = half;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - half;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    (&text[..head_end], &text[tail_start..])
}

/// Writes the feature vector of `text` into `out` (length `FEATURE_DIM`); see the module doc for slots.
///
/// # Panics
/// If `out.len() != FEATURE_DIM`.
pub fn extract(text: &str, out: &mut [f32]) {
    assert_eq!(out.len(), FEATURE_DIM, "feature buffer has the wrong length");
    FeatureScan::new(text).finish(out);
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod timing {
    /// `cargo test --release --lib features::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn time_extract() {
        let text = "A train leaves the station at 3:15 pm travelling at 80 km/h; a second train leaves 40 minutes \
                    later. Explain step by step when and where. "
            .repeat(15);
        let mut out = vec![0.0f32; super::FEATURE_DIM];
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            super::extract(std::hint::black_box(&text), &mut out);
        }
        println!("{} bytes: {:?} per call", text.len(), start.elapsed() / n);
    }
}
