//! Entities and anchors (rule R4): capitalised phrases, quoted strings and the anchor words whose order counts.
//!
//! Also whether one text's entities are all made of the other text's words (`entities_in`).

use std::borrow::Cow;

use rustc_hash::FxHashSet;

use super::code::norm;
use super::lexicon::{DIRECTION, STOPWORD};
use super::tokens::DIGITS;
use super::unit::Unit;
use super::words::word_hash;

pub(super) fn is_entity_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '&' | '\'' | '\u{2019}' | '-')
}

/// Capitalised phrases not opening a sentence (acronyms always count) and quoted strings, in text order.
/// (`analyse_prose` finds the phrases in its one walk; this is what the tests compare it with.)
#[cfg(test)]
pub(super) fn entities<U: Unit>(chars: &[U]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !(chars[i].ch().is_ascii_uppercase() && entity_boundary(chars, i)) {
            i += 1;
            continue;
        }
        let (end, entity) = entity_at(chars, i);
        found.extend(entity.map(|e| (i, e)));
        i = end;
    }
    let has = |q: char| chars.iter().any(|c| c.ch() == q);
    let text = |a: usize, b: usize| chars[a..b].iter().map(|c| c.ch()).collect::<String>().into();
    quoted(chars, &text, &mut found, has('"'), has('\u{201c}'));
    in_order(found)
}

/// Whether a capitalised word at `i` may open an entity: not inside a word.
pub(super) fn entity_boundary<U: Unit>(chars: &[U], i: usize) -> bool {
    i == 0 || !(chars[i - 1].ch().is_alphanumeric() || chars[i - 1].ch() == '_')
}

/// The capitalised phrase starting at `start` (an ASCII capital at an `entity_boundary`): where it ends,
/// and the entity it makes, lower-cased (None at a sentence start, or for "I").
pub(super) fn entity_at<U: Unit>(chars: &[U], start: usize) -> (usize, Option<String>) {
    let is_acronym = |(a, b): (usize, usize)| {
        b - a > 1 && !chars[a..b].iter().any(|c| c.ch().is_ascii_lowercase())
    };
    // The phrase's words are runs of entity chars with whitespace between: kept are the first word's
    // span, where the second opens and how many there are.
    let (mut first, mut second, mut count) = ((start, start), start, 0);
    let mut i = start;
    loop {
        let ws = i;
        while i < chars.len() && chars[i].is_entity() {
            i += 1;
        }
        match count {
            0 => first = (ws, i),
            1 => second = ws,
            _ => {}
        }
        count += 1;
        let mut j = i;
        while j < chars.len() && chars[j].is_space() {
            j += 1;
        }
        if j > i && j < chars.len() && chars[j].ch().is_ascii_uppercase() {
            i = j;
        } else {
            break;
        }
    }
    // Sentence start: beginning of text, or after . ! ? : ; newline or '>' (role markers) among the
    // four characters before (spaces, tabs and CRs skipped), or a list item's first word.
    let before = &chars[start.saturating_sub(4)..start];
    let last = before
        .iter()
        .rev()
        .map(|c| c.ch())
        .find(|c| !matches!(c, ' ' | '\t' | '\r'));
    let list_item = before
        .iter()
        .rposition(|&c| c.ch() == '\n')
        .is_some_and(|nl| {
            before[nl + 1..]
                .iter()
                .map(|c| c.ch())
                .all(|c| c.is_whitespace() || c.is_ascii_digit() || "-*.)".contains(c))
        });
    let sentence_start = start == 0
        || last.is_some_and(|c| matches!(c, '.' | '!' | '?' | ':' | ';' | '\n' | '>'))
        || list_item;
    let mut from = first.0; // where the entity's first word opens
    if sentence_start {
        if count == 1 && !is_acronym(first) {
            return (i, None);
        }
        if !is_acronym(first) {
            from = second;
            count -= 1;
        }
    }
    if count == 1 && i - from == 1 && chars[from].ch() == 'I' {
        return (i, None);
    }
    // The words lower-cased, one space between them (entity characters are ASCII or U+2019, whose lower
    // case is itself).
    let mut entity = String::with_capacity(i - from);
    let mut space = false;
    for c in &chars[from..i] {
        let c = c.ch();
        if c.is_whitespace() {
            space = true;
        } else {
            if space {
                entity.push(' ');
                space = false;
            }
            entity.push(c.to_ascii_lowercase());
        }
    }
    (i, Some(entity))
}

/// Adds the quoted strings ("..." and curly quotes, up to 80 characters on one line) to `found`
/// (`straight`, `curly`: whether the text holds an opening quote of that kind; `text`: the prose's own
/// text of a span of `chars`).
pub(super) fn quoted<'t, U: Unit>(
    chars: &[U],
    text: &dyn Fn(usize, usize) -> Cow<'t, str>,
    found: &mut Vec<(usize, String)>,
    straight: bool,
    curly: bool,
) {
    for (open, close, present) in [('"', '"', straight), ('\u{201c}', '\u{201d}', curly)] {
        if !present {
            continue;
        }
        let mut k = 0;
        while let Some(at) = U::find(chars, k, chars.len(), open, open) {
            k = at;
            let end = (k + 82).min(chars.len());
            if let Some(at) = U::find(chars, k + 1, end, close, '\n') {
                if chars[at].ch() == close && at > k + 1 {
                    found.push((k, norm(&text(k + 1, at))));
                    k = at + 1;
                    continue;
                }
            }
            k += 1;
        }
    }
}

/// The entities found, in text order.
pub(super) fn in_order(mut found: Vec<(usize, String)>) -> Vec<String> {
    found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    found.into_iter().map(|(_, e)| e).collect()
}

/// Anchor words: entity words, and the content words beside a directional word (`classes[i]` and
/// `hashes[i]` are the token's `Lexicon` classes, with `DIGITS` for a digit token, and `word_hash`).
pub(super) fn anchors(classes: &[u8], hashes: &[u64], entities: &[String]) -> Vec<u64> {
    let mut ent_words: Vec<u64> = entities.iter().flat_map(|e| e.split(' ')).map(word_hash).collect();
    ent_words.sort_unstable();
    ent_words.dedup();
    let mut out: Vec<u64> = Vec::new();
    let mut seen: FxHashSet<u64> =
        FxHashSet::with_capacity_and_hasher(2 * ent_words.len() + 8, Default::default());
    let mut push = |h: u64| {
        if seen.insert(h) {
            out.push(h);
        }
    };
    // A 256-bit filter of the entity words (by low bits of their hashes) rules out most tokens at once.
    let mut filter = [0u64; 4];
    for h in &ent_words {
        filter[(h >> 6 & 3) as usize] |= 1 << (h & 63);
    }
    for (i, &h) in hashes.iter().enumerate() {
        if filter[(h >> 6 & 3) as usize] & 1 << (h & 63) != 0 && ent_words.binary_search(&h).is_ok() {
            push(h);
        } else if classes[i] & DIRECTION != 0 {
            for j in [i.wrapping_sub(1), i + 1] {
                if let Some(&class) = classes.get(j) {
                    if class & (STOPWORD | DIGITS) == 0 {
                        push(hashes[j]);
                    }
                }
            }
        }
    }
    out
}

/// Every entity is made of words of the other text (`words`: its tokens' hashes).
pub(super) fn entities_in(entities: &[String], words: &[u64]) -> bool {
    if entities.len() <= 4 {
        // A few words to find: scanning the list costs less than building a set of it.
        return entities.iter().all(|e| entity_in(e, |h| words.contains(&h)));
    }
    let words: FxHashSet<u64> = words.iter().copied().collect();
    entities.iter().all(|e| entity_in(e, |h| words.contains(&h)))
}

/// Every letter run and digit run of `entity` (already lower-cased) is a word of the other text.
fn entity_in(entity: &str, is_word: impl Fn(u64) -> bool) -> bool {
    let kind = |b: u8| {
        if b.is_ascii_lowercase() {
            1u8
        } else if b.is_ascii_digit() {
            2
        } else {
            0
        }
    };
    let bytes = entity.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let k = kind(bytes[i]);
        if k == 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && kind(bytes[i]) == k {
            i += 1;
        }
        if !is_word(word_hash(&entity[start..i])) {
            return false;
        }
    }
    true
}
