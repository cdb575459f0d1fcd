//! The one walk over the prose that builds a `Signature`: tokens, numbers and entities in a single pass.

use std::sync::OnceLock;

use super::entities::{anchors, entity_at, entity_boundary, in_order, quoted};
use super::lexicon::{KEEP, NUMBER_WORD};
use super::numbers::{digit_number_at, in_text_order, may_open_number, number_word, NumberWord};
use super::options::options;
use super::signature::Signature;
use super::tokens::{is_apostrophe, TokenParts};
use super::unit::{Narrow, Unit, DIGIT, KINDS, LETTER, OPENS_NUMBER, RIGHT_QUOTE};

/// The rest of `analyse`, on the prose's units (`Narrow`: one byte a char).
///
/// One walk over the prose finds the tokens (as `tokens` does), the letter runs that are number words and
/// the digit numbers (as `numbers_in`, when `numbers` is None) and the capitalised phrases (as `entities`).
/// Letter runs are where all three meet: a token, a number word or a phrase starts only at a letter run,
/// and digit numbers and digit tokens hold no letter, so each pass's own position (`*_next`) can be kept
/// apart while the walk visits every character once.
pub(super) fn analyse_prose(
    prose: &Narrow,
    code: Vec<String>,
    numbers: Option<Vec<f64>>,
    found_options: Option<Vec<(char, String)>>,
) -> Signature {
    type U = u8;
    let chars: &[u8] = prose.units;
    let want_numbers = numbers.is_none();
    let n = chars.len();
    let mut parts = TokenParts::with_capacity(n);
    let mut digit_numbers: Vec<(usize, f64)> = Vec::new();
    let mut number_words: Vec<NumberWord> = Vec::new();
    let mut found: Vec<(usize, String)> = Vec::new();
    let (mut token_next, mut number_next, mut entity_next) = (0, 0, 0);
    let mut ordinal = 0; // letter runs so far (number words join only adjacent runs)
    let mut i = 0;
    while i < n {
        let b = chars[i];
        let kind = KINDS[b as usize];
        if kind == 0 {
            // Most characters between tokens (spaces, punctuation) only need stepping over.
            i += 1;
            continue;
        }
        if kind & LETTER != 0 {
            let start = i;
            if i >= entity_next && b.is_ascii_uppercase() && entity_boundary(chars, i) {
                let (end, entity) = entity_at(chars, i);
                found.extend(entity.map(|e| (i, e)));
                entity_next = end;
            }
            i = U::letters_end(chars, i);
            let first_end = i;
            let mut apostrophe = false;
            if i + 1 < n && matches!(chars[i], b'\'' | RIGHT_QUOTE) && chars[i + 1].is_ascii_alphabetic() {
                apostrophe = true;
                i += 1;
                // A letter run of its own (a phrase may open here, and it counts for number words).
                if i >= entity_next && chars[i].is_ascii_uppercase() {
                    let (end, entity) = entity_at(chars, i);
                    found.extend(entity.map(|e| (i, e)));
                    entity_next = end;
                }
                i = U::letters_end(chars, i);
            }
            // The token, as `tokens` writes it. Most are a plain run of at most 16 letters: packed (and
            // lower-cased) straight from the prose, never written out.
            const CANNOT: u128 = 0x74_6f_6e_6e_61_63;
            let mut whole = None; // classify of the token, when the token is the whole letter run
            let plain = if apostrophe { None } else { pack_run(chars, start, i) };
            if plain == Some(CANNOT) {
                parts.push_word(b"can");
                parts.push_word(b"not");
            } else if let Some(p) = plain {
                whole = Some(parts.push_packed(p, i - start, false));
            } else {
                let a = parts.buf.len();
                parts.buf.extend(chars[start..i].iter().map(|c| {
                    let c = c.ch();
                    if is_apostrophe(c) {
                        b'\''
                    } else {
                        c.to_ascii_lowercase() as u8
                    }
                }));
                let w = &parts.buf[a..];
                if w.ends_with(b"n't") {
                    let stem_end = parts.buf.len() - 3;
                    if stem_end == a {
                        parts.buf.truncate(a);
                        parts.push_word(b"not");
                    } else {
                        parts.push(a, stem_end, false);
                    }
                    parts.push_word(b"not");
                } else if apostrophe {
                    parts.push(a, a + first_end - start, false);
                } else {
                    // Over 16 letters: no table word, no "cannot".
                    whole = Some(parts.push(a, parts.buf.len(), false));
                }
            }
            if want_numbers {
                match whole {
                    // The same table lookup as `Lexicon::number_key`.
                    Some((word, class)) => {
                        if class & NUMBER_WORD != 0 || word == "and" {
                            number_words.push((ordinal, start, word));
                        }
                    }
                    None => {
                        if let Some(word) = number_word(&chars[start..first_end]) {
                            number_words.push((ordinal, start, word));
                        }
                        if apostrophe {
                            if let Some(word) = number_word(&chars[first_end + 1..i]) {
                                number_words.push((ordinal + 1, first_end + 1, word));
                            }
                        }
                    }
                }
            }
            ordinal += 1 + apostrophe as usize;
            continue;
        }
        if kind & DIGIT != 0 && i >= token_next {
            let mut j = i;
            while j < n
                && (chars[j].ch().is_ascii_digit()
                    || ((chars[j].ch() == '.' || chars[j].ch() == ',')
                        && j + 1 < n
                        && chars[j + 1].ch().is_ascii_digit()))
            {
                j += 1;
            }
            let a = parts.buf.len();
            parts.buf.extend(chars[i..j].iter().map(|&c| c.ch() as u8));
            parts.push(a, parts.buf.len(), true);
            token_next = j;
        }
        if want_numbers && kind & OPENS_NUMBER != 0 && i >= number_next && may_open_number(chars, i) {
            let (next, value) = digit_number_at(chars, i);
            digit_numbers.extend(value);
            number_next = next;
        }
        i += 1;
    }
    // Quotes are rare: found apart (memchr), they keep the walk's loop small.
    quoted(chars, &|a, b| prose.text(a, b).into(), &mut found, true, true);
    let mut entities = in_order(found);
    let anchors = anchors(&parts.classes, &parts.hashes, &entities);
    entities.sort();
    entities.dedup();
    Signature {
        too_long: false,
        numbers: numbers.unwrap_or_else(|| in_text_order(digit_numbers, &number_words)),
        polarity: parts.polarity,
        options: found_options.unwrap_or_else(|| prose_options(prose)),
        anchors,
        entities,
        code,
        content: OnceLock::new(),
        words: parts.hashes,
        sequence: parts.sequence,
    }
}

/// The prose's multiple-choice options (rule R3), found apart from the walk: its lines and parentheses
/// (memchr) only, so `LazySignature` can compare them before paying for the walk.
pub(super) fn prose_options(prose: &Narrow) -> Vec<(char, String)> {
    let parens: Vec<usize> = memchr::memchr_iter(b'(', prose.units).collect();
    options(prose.prose, prose.units, &parens, &|a, b| prose.text(a, b).into())
}

const LOWER: u128 = 0x2020_2020_2020_2020_2020_2020_2020_2020;

/// `pack_lower` of the letter run `units[a..b]`: one 16-byte load and two table masks when the prose
/// holds 16 bytes from `a` on.
#[inline(always)]
fn pack_run(units: &[u8], a: usize, b: usize) -> Option<u128> {
    match units.get(a..a + 16) {
        Some(window) if b - a <= 16 => {
            // Setting bit 5 of an ASCII letter lower-cases it.
            let keep = KEEP[b - a];
            Some(u128::from_le_bytes(window.try_into().unwrap_or_default()) & keep | keep & LOWER)
        }
        _ => u8::pack_lower(&units[a..b]),
    }
}
