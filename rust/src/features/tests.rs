//! Feature extraction tests: every slot written and finite, slot meanings, the window, parity with the
//! byte-at-a-time reference scan.

use super::counts::{lanes_set, HIGH};
use super::cue_table::{word_table, NO_WORD_INFO};
use super::vector::ln1p;
use super::*;
use crate::tokens::{lowercase_key, short_key, SHORT_MAX};

fn feats(text: &str) -> Vec<f32> {
    let mut out = vec![f32::NAN; FEATURE_DIM];
    extract(text, &mut out);
    out
}

fn slot(name: &str) -> usize {
    FEATURE_NAMES.iter().position(|n| *n == name).unwrap()
}

#[test]
fn every_slot_is_written_and_finite() {
    for text in ["", "a", "Hello, world!", &"x".repeat(100_000), "é漢字 🎉"] {
        assert!(feats(text).iter().all(|v| v.is_finite()), "{text:?}");
    }
}

#[test]
fn multiple_choice_is_detected_with_its_stem() {
    let mcq = "What is 2 + 3? Pick one.\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer:";
    let f = feats(mcq);
    assert_eq!(f[slot("has_options")], 1.0);
    assert_eq!(f[slot("option_digit_frac")], 1.0);
    assert!((f[slot("ln_stem_bytes")] - ln1p(mcq.find("\nA.").unwrap() as f64 + 1.0)).abs() < 1e-6);
    assert_eq!(f[slot("ln_sentences")], ln1p(2.0));
    let open = feats("Write a poem about the sea.");
    assert_eq!(open[slot("has_options")], 0.0);
    assert_eq!(open[slot("ln_option_len")], 0.0);
}

#[test]
fn cues_count_whole_words_case_insensitively() {
    let f = feats("How many apples? HOW MUCH is left? Write Python code.");
    assert_eq!(f[slot("cue_quantity")], ln1p(4.0)); // many, much + two "how x" bigrams
    assert_eq!(f[slot("cue_code")], ln1p(2.0));
    assert_eq!(f[slot("cue_creative")], ln1p(1.0));
    assert_eq!(feats("manyfold")[slot("cue_quantity")], 0.0);
}

#[test]
fn numbers_count_once_with_decimals() {
    let f = feats("It costs 3.50 dollars, 12 items, version 1.2.3");
    assert_eq!(f[slot("ln_numbers")], ln1p(3.0)); // 3.50, 12, 1.2.3
    assert_eq!(f[slot("has_code_fence")], 0.0);
    assert_eq!(feats("```py\nx=1\n```")[slot("has_code_fence")], 1.0);
}

#[test]
fn long_texts_cost_a_bounded_window_and_scale_counts() {
    let unit = "Solve the equation step by step. ";
    let short = feats(&unit.repeat(100));
    let long = feats(&unit.repeat(10_000));
    // Fractions stay put and counts scale with the length, up to window-edge effects.
    assert!((short[slot("punct_frac")] - long[slot("punct_frac")]).abs() < 1e-3);
    let ratio = (long[slot("ln_words")].exp() - 1.0) / (short[slot("ln_words")].exp() - 1.0);
    assert!((ratio - 100.0).abs() < 1.0, "{ratio}");
}

#[test]
fn window_cuts_on_char_boundaries() {
    let text = "é".repeat(WINDOW_BYTES);
    let (head, tail) = window(&text);
    assert!(head.len() <= WINDOW_BYTES / 2 && tail.len() <= WINDOW_BYTES / 2);
    assert!(!tail.is_empty());
}

#[test]
fn cue_words_fit_the_lookup_bounds() {
    for group in CUE_GROUPS.iter() {
        for w in group.iter() {
            assert!((2..=SHORT_MAX).contains(&w.len()), "{w}");
            assert!(word_table().get(short_key(w.as_bytes())).unwrap() & 0xff < NO_WORD_INFO, "{w}");
        }
    }
}

#[test]
fn lanes_set_counts_high_bits() {
    for mask in [0u64, HIGH, 0x80, 0x8000_0000_0000_0000, 0x0080_8000_0080_0080] {
        assert_eq!(lanes_set(mask), mask.count_ones() as usize, "{mask:#x}");
    }
}

#[test]
fn lowercase_keys_fold_ascii_letters() {
    assert_eq!(lowercase_key(short_key(b"HoW")), short_key(b"how"));
    assert_eq!(lowercase_key(short_key(b"AZaz@[")), short_key(b"azaz@["));
}

/// Texts built from pieces that hit every branch of the scan: mixed-case words of every length
/// (around 8, 13, 15 and 24 letters), bigrams, numbers with dots, option lines, fences, sentence ends,
/// line breaks, non-ASCII letters, and lengths around the window.
fn parity_corpus() -> Vec<String> {
    let pieces: [&str; 40] = [
        " ", "  ", "\n", "\r\n", "\t", "How", "many", "MUCH", "of", "the", "The", "following", "step", "by",
        "Multi", "act", "as", "you", "are", "calculate", "Probability", "ABCDEFGHIJKLMNOPQRSTUVWXY",
        "abcdefghijklmnopqrstuvwx", "abcdefghijklmno", "abcdefghijklmnop", "3.14", "12.", ".5", "x1y",
        "\nA. ", "\n(B) ", "\nC) x9", "```", "``", ". ", "?", "!\n", "$%|{}[]();+-*/=^<>,:", "é漢🎉", "'s",
    ];
    let mut rng = crate::xorshift::XorShift::new(0x2545_f491_4f6c_dd1d);
    let mut next = move || rng.next() as usize;
    let mut texts = Vec::new();
    for round in 0..3_000 {
        let n = next() % if round % 50 == 0 { 3_000 } else { 60 };
        let mut t = String::new();
        for _ in 0..n {
            t.push_str(pieces[next() % pieces.len()]);
        }
        texts.push(t);
    }
    texts
}

#[test]
fn scan_equals_the_byte_at_a_time_reference() {
    let mut fast = vec![0.0f32; FEATURE_DIM];
    let mut slow = vec![0.0f32; FEATURE_DIM];
    for text in parity_corpus() {
        extract(&text, &mut fast);
        reference::extract(&text, &mut slow);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&slow), "{text:?}");
    }
}

#[test]
fn names_match_the_dimension_and_groups() {
    assert_eq!(FEATURE_NAMES.len(), FEATURE_DIM);
    assert!(FEATURE_NAMES[N_STRUCT..].iter().all(|n| n.starts_with("cue_")));
}
