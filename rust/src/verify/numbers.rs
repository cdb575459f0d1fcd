//! Numbers in prose for rule R1: digit numbers (`-1,234.5`, `3/4`, `10%`, `.5`) and number words
//! ("twenty one", "three hundred", "a dozen", ordinals), each with its char offset, merged in text order.

use super::lexicon::*;
use super::unit::{Unit, KINDS, LETTER, MINUS, OPENS_NUMBER};

/// The value of a digit number: `body` its digits, '.', ',' and '/' (no sign), `negative` when a minus
/// opened it, `percent` when '%' closed it.
fn parse_number(negative: bool, body: &str, percent: bool) -> Option<f64> {
    let no_commas;
    let body = if body.contains(',') {
        no_commas = body.replace(',', "");
        &no_commas
    } else {
        body
    };
    let v = if let Some((a, b)) = body.split_once('/') {
        let (a, b): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
        if b == 0.0 {
            a
        } else {
            a / b
        }
    } else {
        body.parse().ok()?
    };
    // The sign applies to the numerator: -(a / b) is (-a) / b, exactly.
    let v = if negative { -v } else { v };
    Some(if percent { v / 100.0 } else { v })
}

/// Only these characters can open a digit number; prose is mostly other characters (`b`: a `Unit::byte`).
#[inline(always)]
pub(super) const fn opens_number(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'-' | MINUS | b'.')
}

/// Whether a digit number may open at `i` (where `opens_number` holds): a digit, or a sign or dot before a
/// digit or a dot. Where it may not, `digit_number_at` finds nothing and resumes at the next unit.
#[inline(always)]
pub(super) fn may_open_number<U: Unit>(chars: &[U], i: usize) -> bool {
    chars[i].byte().is_ascii_digit()
        || chars.get(i + 1).is_some_and(|c| c.byte().is_ascii_digit() || c.byte() == b'.')
}

/// The digit number opened at `i` (where `opens_number` holds), if any, and where scanning resumes.
pub(super) fn digit_number_at<U: Unit>(
    chars: &[U],
    mut i: usize,
) -> (usize, Option<(usize, f64)>) {
    // Not inside a word or after a dot (a digit run after a letter is part of that word).
    let prev_ok = i == 0
        || !(chars[i - 1].ch().is_alphanumeric()
            || chars[i - 1].ch() == '_'
            || chars[i - 1].ch() == '.');
    let start_digit = chars[i].ch().is_ascii_digit()
        || ((chars[i].ch() == '-' || chars[i].ch() == '\u{2212}' || chars[i].ch() == '.')
            && i + 1 < chars.len()
            && (chars[i + 1].ch().is_ascii_digit()
                || (chars[i + 1].ch() == '.'
                    && i + 2 < chars.len()
                    && chars[i + 2].ch().is_ascii_digit())));
    if !start_digit || !prev_ok {
        return (i + 1, None);
    }
    let start = i;
    let negative = chars[i].ch() == '-' || chars[i].ch() == '\u{2212}';
    if negative {
        i += 1;
    }
    let body = i;
    while i < chars.len() {
        let c = chars[i].ch();
        let next_digit = i + 1 < chars.len() && chars[i + 1].ch().is_ascii_digit();
        if c.is_ascii_digit() || ((c == '.' || c == ',' || c == '/') && next_digit) {
            i += 1;
        } else {
            break;
        }
    }
    if i == start {
        // ". .5" opens like "-.5" but nothing parses: step over the dot (this looped forever before).
        return (i + 1, None);
    }
    let digits = U::ascii_text(&chars[body..i]);
    let percent = i < chars.len() && chars[i].ch() == '%';
    if percent {
        i += 1;
    }
    (i, parse_number(negative, &digits, percent).map(|v| (start, v)))
}

/// Digit numbers with their char offsets: `-1,234.5`, `3/4`, `10%`, `.5` (not inside words or after a dot).
#[cfg(test)]
pub(super) fn digit_numbers<U: Unit>(chars: &[U]) -> Vec<(usize, f64)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !opens_number(chars[i].byte()) {
            i += 1;
            continue;
        }
        let (next, found) = digit_number_at(chars, i);
        out.extend(found);
        i = next;
    }
    out
}

/// A letter run that is a number word or "and": (ordinal among all letter runs, char offset, word).
pub(super) type NumberWord = (usize, usize, &'static str);

/// Scans the ASCII letter run starting at `i`, keeps it in `words` when it is a number word or "and"
/// (with `ordinal`), and returns where the run ends.
#[inline(always)]
fn letter_run<U: Unit>(
    chars: &[U],
    mut i: usize,
    ordinal: usize,
    words: &mut Vec<NumberWord>,
) -> usize {
    let start = i;
    i = U::letters_end(chars, i);
    if let Some(key) = number_word(&chars[start..i]) {
        words.push((ordinal, start, key));
    }
    i
}

/// The ASCII letter run as stored in the tables when it is a number word or "and".
#[inline(always)]
pub(super) fn number_word<U: Unit>(run: &[U]) -> Option<&'static str> {
    // No number word has more than 12 letters.
    let second = run.get(1).map_or(0, |c| c.byte());
    if run.len() > 12 || !LEXICON.may_be_number_word(run[0].byte(), second, run.len()) {
        return None;
    }
    Some(LEXICON.number_key(U::pack_lower(run)?)).filter(|k| !k.is_empty())
}

/// Number words with char offsets: "twenty one" -> 21, "three hundred" -> 300, "a dozen" -> 12.
#[cfg(test)]
pub(super) fn word_numbers<U: Unit>(chars: &[U]) -> Vec<(usize, f64)> {
    // The ASCII letter runs that are number words or "and" (only number words, "a", "one" and "and" are
    // compared below), each with its ordinal among all letter runs (two runs are adjacent when their
    // ordinals differ by one; any other run in between breaks a number) and its char offset.
    let mut words: Vec<NumberWord> = Vec::new();
    let mut ordinal = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i].ch().is_ascii_alphabetic() {
            i = letter_run(chars, i, ordinal, &mut words);
            ordinal += 1;
        } else {
            i += 1;
        }
    }
    join_number_words(&words)
}

/// The values of the kept letter runs (`letter_run`), joined where adjacent ("twenty one" -> 21).
fn join_number_words(words: &[NumberWord]) -> Vec<(usize, f64)> {
    let is_unit_or_ten = |w: &str| lookup(UNITS, w).is_some() || lookup(TENS, w).is_some();
    let mut out = Vec::new();
    let mut k = 0;
    while k < words.len() {
        let (ordinal, start, w) = words[k];
        // Every kept word but "and" is a number word ("a" counts as one).
        if w == "and" {
            k += 1;
            continue;
        }
        let scale_start = lookup(SCALES, w).is_some()
            && k > 0
            && words[k - 1].0 + 1 == ordinal
            && (words[k - 1].2 == "a" || words[k - 1].2 == "one");
        if is_unit_or_ten(w) || scale_start {
            let (mut total, mut current) = (0u64, 0u64);
            let mut expected = ordinal;
            while k < words.len() && words[k].0 == expected {
                let w = words[k].2;
                if let Some(v) = lookup(UNITS, w).or_else(|| lookup(TENS, w)) {
                    current = current.saturating_add(v);
                } else if let Some(v) = lookup(SCALES, w) {
                    current = current.max(1).saturating_mul(v);
                    if v >= 1000 {
                        total = total.saturating_add(current);
                        current = 0;
                    }
                } else if w == "and"
                    && k + 1 < words.len()
                    && words[k + 1].0 == expected + 1
                    && is_unit_or_ten(words[k + 1].2)
                {
                } else {
                    break;
                }
                k += 1;
                expected += 1;
            }
            out.push((start, total.saturating_add(current) as f64));
            continue;
        }
        if w != "second" {
            if let Some(v) = lookup(ORDINALS, w).or_else(|| lookup(SPECIAL, w)) {
                out.push((start, v));
            }
        }
        k += 1;
    }
    out
}

/// Digit and number-word values of the prose, in text order (rule R1).
///
/// One scan finds both: a letter run holds no character that opens or continues a digit number, so the
/// letter runs and the digit numbers are the ones `word_numbers` and `digit_numbers` find apart.
pub(super) fn numbers_in<U: Unit>(chars: &[U]) -> Vec<f64> {
    let mut nums = Vec::new();
    let mut words: Vec<NumberWord> = Vec::new();
    let mut ordinal = 0;
    let mut i = 0;
    while i < chars.len() {
        let kind = KINDS[chars[i].byte() as usize];
        if kind & LETTER != 0 {
            i = letter_run(chars, i, ordinal, &mut words);
            ordinal += 1;
        } else if kind & OPENS_NUMBER != 0 && may_open_number(chars, i) {
            let (next, found) = digit_number_at(chars, i);
            nums.extend(found);
            i = next;
        } else {
            i += 1;
        }
    }
    in_text_order(nums, &words)
}

/// The digit numbers and the joined number words (`join_number_words`), merged in text order.
pub(super) fn in_text_order(mut nums: Vec<(usize, f64)>, words: &[NumberWord]) -> Vec<f64> {
    nums.extend(join_number_words(words));
    nums.sort_by_key(|p| p.0);
    nums.into_iter().map(|(_, v)| v).collect()
}
