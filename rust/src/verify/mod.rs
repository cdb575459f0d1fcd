//! The semantic-cache verifier: may a cached prompt's answer be served for a new prompt? (rules R1-R8)
//!
//! Pure: text in, verdict out. The rules and their rationale are documented in
//! `python/fastroute/cache/verifier.py` (the typed wrapper) and tested in tests/unit/cache/test_verifier.py;
//! here they run in microseconds. A `Signature` is computed once per text; `verify` compares two.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use rustc_hash::FxHashSet;

pub const MAX_VERIFIABLE_CHARS: usize = 4000;
pub const MAX_SUBSTITUTED_WORDS: usize = 6;

mod lexicon;
mod numbers;
#[cfg(test)]
mod tests;
mod unit;

use lexicon::*;
use numbers::{digit_number_at, in_text_order, number_word, numbers_in, opens_number, NumberWord};
#[cfg(test)]
use numbers::{digit_numbers, word_numbers};
use unit::Unit;

/// What the verifier compares, computed once per text. Word sets and the content-word sequence hold
/// 64-bit hashes of the words (`word_hash`), not the words: one allocation per set instead of one per
/// token; two different words would have to collide in 64 bits to be confused.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    too_long: bool,
    numbers: Vec<f64>,
    polarity: BTreeMap<&'static str, u32>,
    options: Vec<(char, String)>,
    entities: Vec<String>,
    /// Hashes of the anchor words, in first-occurrence order.
    anchors: Vec<u64>,
    code: Vec<String>,
    content: FxHashSet<u64>,
    /// Hashes of every token, in text order (looked up only when the entities differ).
    words: Vec<u64>,
    sequence: Vec<u64>,
}

fn word_hash(w: &str) -> u64 {
    word_hash_bytes(w.as_bytes())
}

/// A word of up to 16 bytes is hashed from its packed bytes (`hash_packed`; most words, and the tokens
/// are packed anyway for the tables), a longer one with FNV-1a over its bytes then murmur3's finaliser.
fn word_hash_bytes(w: &[u8]) -> u64 {
    match packed(w) {
        Some(p) => hash_packed(p),
        None => fnv_hash(w),
    }
}

/// The two halves of a packed word mixed into one, then murmur3's finaliser.
#[inline]
fn hash_packed(p: u128) -> u64 {
    let h = (p as u64) ^ ((p >> 64) as u64).rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    fmix(h.wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
}

fn fnv_hash(w: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in w {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix(h)
}

/// murmur3's 64-bit finaliser (FNV alone clusters on short ASCII strings).
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Words separated by one space, lower-cased (`to_lowercase` of the joined words, in one pass: a word
/// lower-cases the same alone as between spaces, final sigma included).
fn norm(s: &str) -> String {
    if s.is_ascii() {
        // ASCII whitespace by `char::is_whitespace`: tab, LF, VT, FF, CR and space.
        let mut out: Vec<u8> = Vec::with_capacity(s.len());
        let mut space = false; // a space is owed before the next word
        for &b in s.as_bytes() {
            if matches!(b, 9..=13 | 32) {
                space = !out.is_empty();
            } else {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(b.to_ascii_lowercase());
            }
        }
        return String::from_utf8(out).unwrap_or_default();
    }
    let mut out = String::with_capacity(s.len());
    for (n, w) in s.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        if w.is_ascii() {
            let a = out.len();
            out.push_str(w);
            out[a..].make_ascii_lowercase();
        } else {
            out.push_str(&w.to_lowercase());
        }
    }
    out
}

/// Splits out code (```fenced``` and `inline`) and returns (prose, normalised code pieces); the prose is
/// the text itself when it holds no backtick.
fn split_code(text: &str) -> (Cow<'_, str>, Vec<String>) {
    if !text.contains('`') {
        return (Cow::Borrowed(text), Vec::new());
    }
    let mut prose = String::with_capacity(text.len());
    let mut code = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('`') {
        prose.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(body) = after.strip_prefix("```") {
            if let Some(end) = body.find("```") {
                code.push(norm(body[..end].trim_matches('`')));
                prose.push(' ');
                rest = &body[end + 3..];
                continue;
            }
        } else if let Some(end) = after[1..].find(['`', '\n']) {
            if after.as_bytes()[1 + end] == b'`' && end > 0 {
                code.push(norm(&after[1..1 + end]));
                prose.push(' ');
                rest = &after[end + 2..];
                continue;
            }
        }
        prose.push('`');
        rest = &after[1..];
    }
    prose.push_str(rest);
    (Cow::Owned(prose), code)
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// Lower-cased word tokens (ASCII letters, one inner apostrophe), with "n't" / "cannot" split into "not".
///
/// Tokens are ASCII, so all of them are written into one buffer; returns the buffer and each token's span.
/// (`analyse_prose` finds the same tokens in its one walk; this is what the tests compare it with.)
#[cfg(test)]
fn tokens<U: Unit>(chars: &[U]) -> (String, Vec<(usize, usize)>) {
    let mut buf: Vec<u8> = Vec::with_capacity(chars.len() + 16);
    let mut spans = Vec::new();
    let push = |buf: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>, w: &[u8]| {
        let a = buf.len();
        buf.extend_from_slice(w);
        spans.push((a, buf.len()));
    };
    let mut i = 0;
    while i < chars.len() {
        if chars[i].ch().is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].ch().is_ascii_alphabetic() {
                i += 1;
            }
            let mut apostrophe = None;
            if i + 1 < chars.len()
                && is_apostrophe(chars[i].ch())
                && chars[i + 1].ch().is_ascii_alphabetic()
            {
                apostrophe = Some(i - start);
                i += 1;
                while i < chars.len() && chars[i].ch().is_ascii_alphabetic() {
                    i += 1;
                }
            }
            let a = buf.len();
            // ASCII letters and apostrophes only: one byte each.
            if apostrophe.is_none() {
                buf.extend(
                    chars[start..i]
                        .iter()
                        .map(|c| c.ch().to_ascii_lowercase() as u8),
                );
            } else {
                buf.extend(chars[start..i].iter().map(|c| {
                    let c = c.ch();
                    if is_apostrophe(c) {
                        b'\''
                    } else {
                        c.to_ascii_lowercase() as u8
                    }
                }));
            }
            let w = &buf[a..];
            if w.ends_with(b"n't") {
                let stem_end = buf.len() - 3;
                if stem_end == a {
                    buf.truncate(a);
                    push(&mut buf, &mut spans, b"not");
                } else {
                    spans.push((a, stem_end));
                }
                push(&mut buf, &mut spans, b"not");
            } else if w == b"cannot" {
                buf.truncate(a);
                push(&mut buf, &mut spans, b"can");
                push(&mut buf, &mut spans, b"not");
            } else if let Some(head) = apostrophe {
                spans.push((a, a + head));
            } else {
                spans.push((a, buf.len()));
            }
        } else if chars[i].ch().is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].ch().is_ascii_digit()
                    || ((chars[i].ch() == '.' || chars[i].ch() == ',')
                        && i + 1 < chars.len()
                        && chars[i + 1].ch().is_ascii_digit()))
            {
                i += 1;
            }
            let a = buf.len();
            buf.extend(chars[start..i].iter().map(|&c| c.ch() as u8));
            spans.push((a, buf.len()));
        } else {
            i += 1;
        }
    }
    // Every byte written is ASCII (letters, digits, '.', ',', '\'').
    (String::from_utf8(buf).unwrap_or_default(), spans)
}

/// Multiple-choice options: lines opening with a label, else inline "(a) ... (b) ..." marks
/// (`parens`: where the prose holds '(').
fn options<U: Unit>(prose: &str, chars: &[U], parens: &[usize]) -> Vec<(char, String)> {
    let mut lines = Vec::new();
    for line in prose.lines() {
        let t = line.trim_start();
        let t = t.strip_prefix(['(', '[']).unwrap_or(t);
        let mut cs = t.chars();
        if let (Some(label), Some(close)) = (cs.next(), cs.next()) {
            let rest = cs.as_str();
            if matches!(label, 'A'..='H' | 'a'..='h' | '1'..='8')
                && matches!(close, ')' | ']' | '.' | ':')
                && rest.starts_with(char::is_whitespace)
                && !rest.trim().is_empty()
            {
                lines.push((label.to_ascii_uppercase(), norm(rest)));
            }
        }
    }
    if lines.len() >= 2 {
        return lines;
    }
    // Inline "(a) tea (b) coffee" (`chars` are the prose's).
    let mut marks = Vec::new();
    for &i in parens {
        if i + 2 < chars.len()
            && matches!(chars[i + 1].ch(), 'A'..='H' | 'a'..='h')
            && chars[i + 2].ch() == ')'
            && (i == 0 || chars[i - 1].ch().is_whitespace())
        {
            marks.push(i);
        }
    }
    let mut inline = Vec::new();
    for (n, &m) in marks.iter().enumerate() {
        let end = marks.get(n + 1).copied().unwrap_or(chars.len());
        let body: String = chars[m + 3..end].iter().map(|c| c.ch()).collect();
        if !body.contains(['(', ')']) && !body.trim().is_empty() {
            inline.push((chars[m + 1].ch().to_ascii_uppercase(), norm(&body)));
        }
    }
    if inline.len() >= 2 {
        inline
    } else {
        Vec::new()
    }
}

fn is_entity_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '&' | '\'' | '\u{2019}' | '-')
}

/// Capitalised phrases not opening a sentence (acronyms always count) and quoted strings, in text order.
/// (`analyse_prose` finds the phrases in its one walk; this is what the tests compare it with.)
#[cfg(test)]
fn entities<U: Unit>(chars: &[U]) -> Vec<String> {
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
    quoted(chars, &mut found, has('"'), has('\u{201c}'));
    in_order(found)
}

/// Whether a capitalised word at `i` may open an entity: not inside a word.
fn entity_boundary<U: Unit>(chars: &[U], i: usize) -> bool {
    i == 0 || !(chars[i - 1].ch().is_alphanumeric() || chars[i - 1].ch() == '_')
}

/// The capitalised phrase starting at `start` (an ASCII capital at an `entity_boundary`): where it ends,
/// and the entity it makes, lower-cased (None at a sentence start, or for "I").
fn entity_at<U: Unit>(chars: &[U], start: usize) -> (usize, Option<String>) {
    let is_acronym = |(a, b): (usize, usize)| {
        b - a > 1 && !chars[a..b].iter().any(|c| c.ch().is_ascii_lowercase())
    };
    // Char spans of the phrase's words (most phrases are one or two words).
    let mut words: Vec<(usize, usize)> = Vec::with_capacity(4);
    let mut i = start;
    loop {
        let ws = i;
        while i < chars.len() && is_entity_char(chars[i].ch()) {
            i += 1;
        }
        words.push((ws, i));
        let mut j = i;
        while j < chars.len() && chars[j].ch().is_whitespace() {
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
    let mut phrase = &words[..];
    if sentence_start {
        if phrase.len() == 1 && !is_acronym(phrase[0]) {
            return (i, None);
        }
        if !is_acronym(phrase[0]) {
            phrase = &phrase[1..];
        }
    }
    if phrase.len() == 1 && phrase[0].1 - phrase[0].0 == 1 && chars[phrase[0].0].ch() == 'I' {
        return (i, None);
    }
    let mut entity = String::new();
    for (n, &(a, b)) in phrase.iter().enumerate() {
        if n > 0 {
            entity.push(' ');
        }
        // Entity characters are ASCII or U+2019, whose lower case is itself.
        entity.extend(chars[a..b].iter().map(|c| c.ch().to_ascii_lowercase()));
    }
    (i, Some(entity))
}

/// Adds the quoted strings ("..." and curly quotes, up to 80 characters on one line) to `found`
/// (`straight`, `curly`: whether the text holds an opening quote of that kind).
fn quoted<U: Unit>(chars: &[U], found: &mut Vec<(usize, String)>, straight: bool, curly: bool) {
    for (open, close, present) in [('"', '"', straight), ('\u{201c}', '\u{201d}', curly)] {
        if !present {
            continue;
        }
        let mut k = 0;
        while k < chars.len() {
            if chars[k].ch() == open {
                if let Some(len) = chars[k + 1..]
                    .iter()
                    .take(81)
                    .position(|&c| c.ch() == close || c.ch() == '\n')
                {
                    if chars[k + 1 + len].ch() == close && len >= 1 {
                        found.push((
                            k,
                            norm(
                                &chars[k + 1..k + 1 + len]
                                    .iter()
                                    .map(|c| c.ch())
                                    .collect::<String>(),
                            ),
                        ));
                        k += len + 2;
                        continue;
                    }
                }
            }
            k += 1;
        }
    }
}

/// The entities found, in text order.
fn in_order(mut found: Vec<(usize, String)>) -> Vec<String> {
    found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    found.into_iter().map(|(_, e)| e).collect()
}

/// Anchor words: entity words, and the content words beside a directional word (`classes[i]` and
/// `hashes[i]` are the token's `Lexicon` classes, with `DIGITS` for a digit token, and `word_hash`).
fn anchors(classes: &[u8], hashes: &[u64], entities: &[String]) -> Vec<u64> {
    let ent_words: FxHashSet<u64> = entities
        .iter()
        .flat_map(|e| e.split(' '))
        .map(word_hash)
        .collect();
    let mut out: Vec<u64> = Vec::new();
    let mut seen: FxHashSet<u64> = FxHashSet::default();
    let mut push = |h: u64| {
        if seen.insert(h) {
            out.push(h);
        }
    };
    for (i, &h) in hashes.iter().enumerate() {
        if !ent_words.is_empty() && ent_words.contains(&h) {
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

/// `stem` of a packed word of `len` bytes: the suffix's bytes cleared.
#[inline]
fn stem_packed(p: u128, len: usize) -> u128 {
    // The suffixes as packed ("ing" is 'i' | 'n' << 8 | 'g' << 16), in `stem`'s order.
    for (suffix, n) in [(0x67_6e_69u128, 3), (0x64_65, 2), (0x73_65, 2), (0x73, 1)] {
        if len > n + 2 && (p >> (8 * (len - n))) == suffix {
            return p & ((1u128 << (8 * (len - n))) - 1);
        }
    }
    p
}

fn stem(w: &[u8]) -> &[u8] {
    for suf in [&b"ing"[..], b"ed", b"es", b"s"] {
        if w.len() > suf.len() + 2 && w.ends_with(suf) {
            return &w[..w.len() - suf.len()];
        }
    }
    w
}

fn too_long(text: &str) -> bool {
    text.chars().count() > MAX_VERIFIABLE_CHARS
}

/// A prompt's signature computed only as far as comparisons need: most neighbours that fail, fail on
/// their numbers (R1), which take about a third of the work of the whole signature. `verify_lazy` gives
/// the same verdict as `verify` on whole signatures.
#[derive(Debug)]
pub struct LazySignature {
    text: String,
    too_long: bool,
    numbers: OnceLock<Vec<f64>>,
    full: OnceLock<Signature>,
}

impl LazySignature {
    pub fn new(text: String) -> LazySignature {
        LazySignature {
            too_long: too_long(&text),
            text,
            numbers: OnceLock::new(),
            full: OnceLock::new(),
        }
    }

    fn numbers(&self) -> &[f64] {
        match self.full.get() {
            Some(sig) => &sig.numbers,
            None => self
                .numbers
                .get_or_init(|| prose_numbers(&split_code(&self.text).0)),
        }
    }

    /// `digest_numbers` of the prompt's numbers (computed once), or 0 for a prompt too long to verify
    /// (R7 comes before R1). Two prompts whose digests are both non-zero and differ fail on R1.
    pub fn numbers_digest(&self) -> u64 {
        if self.too_long {
            0
        } else {
            digest_numbers(self.numbers())
        }
    }

    /// The whole signature (computed on first use; numbers already found are reused).
    pub fn full(&self) -> &Signature {
        self.full
            .get_or_init(|| analyse(&self.text, self.numbers.get().cloned()))
    }
}

/// A digest of a number sequence: equal sequences give equal digests (-0 counts as 0, as `==` says), so
/// two different digests mean different numbers (rule R1). Never 0 (which callers use for "unknown").
fn digest_numbers(numbers: &[f64]) -> u64 {
    let mut h = numbers.len() as u64;
    for &x in numbers {
        let bits = if x == 0.0 { 0 } else { x.to_bits() };
        h = fmix(h.rotate_left(23) ^ bits).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
    fmix(h).max(1)
}

/// The digest of `text`'s numbers (`LazySignature::numbers_digest`), for a cache to keep with a stored
/// prompt instead of its signature: a lookup then rules out most neighbours (R1) without reading them.
pub fn numbers_digest(text: &str) -> u64 {
    LazySignature::new(text.to_string()).numbers_digest()
}

/// `verify` on lazily computed signatures: the numbers first, everything else only when they agree.
pub fn verify_lazy(query: &LazySignature, cached: &LazySignature) -> Option<&'static str> {
    if query.too_long || cached.too_long {
        return Some("R7-size");
    }
    if query.numbers() != cached.numbers() {
        return Some("R1-numbers");
    }
    verify(query.full(), cached.full())
}

/// Analyses `text` once for `verify`.
pub fn signature(text: &str) -> Signature {
    analyse(text, None)
}

/// `signature`, with the prose's numbers when they were already found (`numbers_in` of the same text).
fn analyse(text: &str, numbers: Option<Vec<f64>>) -> Signature {
    if too_long(text) {
        return Signature {
            too_long: true,
            numbers: vec![],
            polarity: BTreeMap::new(),
            options: vec![],
            entities: vec![],
            anchors: vec![],
            code: vec![],
            content: FxHashSet::default(),
            words: vec![],
            sequence: vec![],
        };
    }
    let (prose, code) = split_code(text);
    if prose.is_ascii() {
        analyse_prose(&prose, prose.as_bytes(), code, numbers)
    } else {
        analyse_prose(&prose, &prose.chars().collect::<Vec<char>>(), code, numbers)
    }
}

/// `numbers_in` of the prose, on its bytes when it is ASCII.
fn prose_numbers(prose: &str) -> Vec<f64> {
    if prose.is_ascii() {
        numbers_in(prose.as_bytes())
    } else {
        numbers_in(&prose.chars().collect::<Vec<char>>())
    }
}

/// A token's class bit beside the `Lexicon` ones: the token is a digit run.
const DIGITS: u8 = 128;

/// The per-token parts of a signature, filled token by token in text order.
struct TokenParts {
    /// The lower-cased tokens, one after another (every byte is ASCII).
    buf: Vec<u8>,
    /// Per token: its `Lexicon` classes (and `DIGITS`), and its `word_hash`.
    classes: Vec<u8>,
    hashes: Vec<u64>,
    polarity: BTreeMap<&'static str, u32>,
    sequence: Vec<u64>,
}

impl TokenParts {
    fn with_capacity(chars: usize) -> TokenParts {
        // About one token in four characters of prose.
        let tokens = chars / 4 + 4;
        TokenParts {
            buf: Vec::with_capacity(chars + 16),
            classes: Vec::with_capacity(tokens),
            hashes: Vec::with_capacity(tokens),
            polarity: BTreeMap::new(),
            sequence: Vec::with_capacity(tokens),
        }
    }

    /// Adds the token `buf[a..b]`; returns its `Lexicon::classify` (`("", 0)` for a digit run).
    fn push(&mut self, a: usize, b: usize, digits: bool) -> (&'static str, u8) {
        let t = &self.buf[a..b];
        if let Some(p) = packed(t) {
            return self.push_packed(p, t.len(), digits);
        }
        // Longer than any table word.
        let h = fnv_hash(t);
        if !digits {
            let s = stem(t);
            self.sequence.push(if s.len() == t.len() { h } else { word_hash_bytes(s) });
        }
        self.classes.push(if digits { DIGITS } else { 0 });
        self.hashes.push(h);
        ("", 0)
    }

    /// `push` of a token of `len` <= 16 bytes given `packed`.
    #[inline]
    fn push_packed(&mut self, p: u128, len: usize, digits: bool) -> (&'static str, u8) {
        let (word, class) = if digits {
            ("", 0) // no table word holds a digit
        } else {
            LEXICON.classify_packed(p)
        };
        if class & NEGATION_OR_POLARITY != 0 {
            *self.polarity.entry(word).or_insert(0) += 1;
        }
        let h = hash_packed(p);
        if class & (STOPWORD | NUMBER_WORD) == 0 && !digits {
            let s = stem_packed(p, len);
            self.sequence.push(if s == p { h } else { hash_packed(s) });
        }
        self.classes.push(class | if digits { DIGITS } else { 0 });
        self.hashes.push(h);
        (word, class)
    }

    /// Appends the word `w` and adds it as a token.
    fn push_word(&mut self, w: &[u8]) -> (&'static str, u8) {
        let a = self.buf.len();
        self.buf.extend_from_slice(w);
        self.push(a, self.buf.len(), false)
    }
}

/// The rest of `analyse`: `chars` are the prose's units (bytes of ASCII prose, else its chars).
///
/// One walk over the prose finds the tokens (as `tokens` does), the letter runs that are number words and
/// the digit numbers (as `numbers_in`, when `numbers` is None) and the capitalised phrases (as `entities`).
/// Letter runs are where all three meet: a token, a number word or a phrase starts only at a letter run,
/// and digit numbers and digit tokens hold no letter, so each pass's own position (`*_next`) can be kept
/// apart while the walk visits every character once.
fn analyse_prose<U: Unit>(
    prose: &str,
    chars: &[U],
    code: Vec<String>,
    numbers: Option<Vec<f64>>,
) -> Signature {
    let want_numbers = numbers.is_none();
    let n = chars.len();
    let mut parts = TokenParts::with_capacity(n);
    let mut digit_numbers: Vec<(usize, f64)> = Vec::new();
    let mut number_words: Vec<NumberWord> = Vec::new();
    let mut found: Vec<(usize, String)> = Vec::new();
    let (mut token_next, mut number_next, mut entity_next) = (0, 0, 0);
    let mut ordinal = 0; // letter runs so far (number words join only adjacent runs)
    let (mut straight_quote, mut curly_quote) = (false, false);
    let mut parens: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i].ch();
        if c.is_ascii_alphabetic() {
            let start = i;
            if i >= entity_next && c.is_ascii_uppercase() && entity_boundary(chars, i) {
                let (end, entity) = entity_at(chars, i);
                found.extend(entity.map(|e| (i, e)));
                entity_next = end;
            }
            i = U::letters_end(chars, i);
            let first_end = i;
            let mut apostrophe = false;
            if i + 1 < n && is_apostrophe(chars[i].ch()) && chars[i + 1].ch().is_ascii_alphabetic() {
                apostrophe = true;
                i += 1;
                // A letter run of its own (a phrase may open here, and it counts for number words).
                if i >= entity_next && chars[i].ch().is_ascii_uppercase() {
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
            let plain = if apostrophe { None } else { U::pack_lower(&chars[start..i]) };
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
        if c.is_ascii_digit() && i >= token_next {
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
        if want_numbers && i >= number_next && opens_number(c) {
            let (next, value) = digit_number_at(chars, i);
            digit_numbers.extend(value);
            number_next = next;
        }
        match c {
            '"' => straight_quote = true,
            '\u{201c}' => curly_quote = true,
            '(' => parens.push(i),
            _ => {}
        }
        i += 1;
    }
    quoted(chars, &mut found, straight_quote, curly_quote);
    let mut entities = in_order(found);
    let anchors = anchors(&parts.classes, &parts.hashes, &entities);
    entities.sort();
    entities.dedup();
    Signature {
        too_long: false,
        numbers: numbers.unwrap_or_else(|| in_text_order(digit_numbers, &number_words)),
        polarity: parts.polarity,
        options: options(prose, chars, &parens),
        anchors,
        entities,
        code,
        // Built from the finished lists: their sizes are known, so the sets never grow.
        content: parts.sequence.iter().copied().collect(),
        words: parts.hashes,
        sequence: parts.sequence,
    }
}

/// Every entity is made of words of the other text (`words`: its tokens' hashes).
fn entities_in(entities: &[String], words: &[u64]) -> bool {
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

/// `None` when `cached`'s answer may be served for `query`, else the name of the first rule that failed.
pub fn verify(query: &Signature, cached: &Signature) -> Option<&'static str> {
    if query.too_long || cached.too_long {
        return Some("R7-size");
    }
    if query.numbers != cached.numbers {
        return Some("R1-numbers");
    }
    if query.polarity != cached.polarity {
        return Some("R2-negation");
    }
    if query.options != cached.options {
        return Some("R3-options");
    }
    if query.entities != cached.entities
        && !(entities_in(&query.entities, &cached.words) && entities_in(&cached.entities, &query.words))
    {
        return Some("R4-entities");
    }
    let in_c: FxHashSet<u64> = cached.anchors.iter().copied().collect();
    let in_q: FxHashSet<u64> = query.anchors.iter().copied().collect();
    let shared_q = query.anchors.iter().filter(|a| in_c.contains(a));
    let shared_c = cached.anchors.iter().filter(|a| in_q.contains(a));
    if !shared_q.eq(shared_c) {
        return Some("R4-order");
    }
    if query.code != cached.code {
        return Some("R5-code");
    }
    let q_only = query.content.difference(&cached.content).count();
    let c_only = cached.content.difference(&query.content).count();
    if (q_only == 0) != (c_only == 0) {
        return Some("R6-refinement");
    }
    if query.sequence != cached.sequence {
        let mut a = query.sequence.clone();
        let mut b = cached.sequence.clone();
        a.sort();
        b.sort();
        if a == b {
            return Some("R4-permutation");
        }
    }
    if q_only.max(c_only) > MAX_SUBSTITUTED_WORDS {
        return Some("R8-substitution");
    }
    None
}
