//! The semantic-cache verifier: may a cached prompt's answer be served for a new prompt? (rules R1-R9)
//!
//! Pure: text in, verdict out. The rules and their rationale are documented in
//! `python/fastroute/cache/verifier.py` (the typed wrapper) and tested in tests/unit/cache/test_verifier.py;
//! here they run in microseconds. A `Signature` is computed once per text; `verify` compares two.
//!
//! Layout: `signature` (the struct and its lazy parts) is built by `scan` (the one walk over the prose) from
//! `tokens`, `words` (hashes, stems), `entities` (and anchors), `options`, `numbers` and `code` spans, with
//! the word tables of `lexicon`, on the prose's `unit`s (one byte a char, `Narrow`); this module holds the
//! rules themselves (`verify`, `verify_lazy`). `probe` (tests only) counts instructions under callgrind and
//! dumps whole signatures, to keep changes of representation honest.

pub const MAX_VERIFIABLE_CHARS: usize = 4000;
pub const MAX_SUBSTITUTED_WORDS: usize = 6;
/// Content words two texts share at their start and end (a document, a long template) from which on R9 holds.
pub const SHARED_CONTEXT_WORDS: usize = 24;

mod code;
mod entities;
mod lexicon;
mod numbers;
mod options;
#[cfg(test)]
mod probe;
mod scan;
mod signature;
#[cfg(test)]
mod tests;
mod tokens;
mod unit;
mod words;

use entities::entities_in;
pub use signature::{numbers_digest, signature, LazySignature, Signature};

/// `verify` on lazily computed signatures: the numbers first, then the options (both found without the walk
/// over the prose), everything else only when they agree. Most neighbours that fail, fail there: changed
/// numbers, shuffled options.
pub fn verify_lazy(query: &LazySignature, cached: &LazySignature) -> Option<&'static str> {
    if query.too_long || cached.too_long {
        return Some("R7-size");
    }
    if query.numbers() != cached.numbers() {
        return Some("R1-numbers");
    }
    if query.options() != cached.options() {
        return Some("R3-options");
    }
    verify(query.full(), cached.full())
}

/// `None` when `cached`'s answer may be served for `query`, else the name of the first rule that failed, in
/// the order `verify_lazy` checks them (R7, R1, R3, then R2 and the rest).
pub fn verify(query: &Signature, cached: &Signature) -> Option<&'static str> {
    if query.too_long || cached.too_long {
        return Some("R7-size");
    }
    if query.numbers != cached.numbers {
        return Some("R1-numbers");
    }
    if query.options != cached.options {
        return Some("R3-options");
    }
    if query.polarity != cached.polarity {
        return Some("R2-negation");
    }
    if query.entities != cached.entities
        && !(entities_in(&query.entities, &cached.words) && entities_in(&cached.entities, &query.words))
    {
        return Some("R4-entities");
    }
    // Equal anchor lists share all their anchors in the same order.
    if query.anchors != cached.anchors {
        let (in_q, in_c) = (sorted(&query.anchors), sorted(&cached.anchors));
        let shared_q = query.anchors.iter().filter(|a| in_c.binary_search(a).is_ok());
        let shared_c = cached.anchors.iter().filter(|a| in_q.binary_search(a).is_ok());
        if !shared_q.eq(shared_c) {
            return Some("R4-order");
        }
    }
    if query.code != cached.code {
        return Some("R5-code");
    }
    // The same content words in the same order: nothing on one side only, no other order (R4), nothing
    // around a shared context (R9); the sorted sets need not be built.
    if query.sequence == cached.sequence {
        return None;
    }
    let (q_only, c_only) = only_in_one(query.content(), cached.content());
    if (q_only == 0) != (c_only == 0) {
        return Some("R6-refinement");
    }
    if sorted(&query.sequence) == sorted(&cached.sequence) {
        return Some("R4-permutation");
    }
    if q_only.max(c_only) > MAX_SUBSTITUTED_WORDS {
        return Some("R8-substitution");
    }
    if ask_differs(&query.sequence, &cached.sequence) {
        return Some("R9-ask");
    }
    None
}

/// How many of `a`'s values are not in `b`, and how many of `b`'s not in `a` (both sorted, distinct).
fn only_in_one(a: &[u64], b: &[u64]) -> (usize, usize) {
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    (a.len() - shared, b.len() - shared)
}

/// R9: two texts that share a long context (`SHARED_CONTEXT_WORDS` content words or more at their start and
/// end together) must not differ in what lies between: that is the ask ("... summarize it" vs "... list its
/// risks"), and the shared context dominates the embedding and R8's budget, which was measured on short
/// paraphrases. The words outside the shared context must be the same set.
fn ask_differs(query: &[u64], cached: &[u64]) -> bool {
    let prefix = query.iter().zip(cached).take_while(|(a, b)| a == b).count();
    let room = query.len().min(cached.len()) - prefix;
    let suffix = query.iter().rev().zip(cached.iter().rev()).take(room).take_while(|(a, b)| a == b).count();
    if prefix + suffix < SHARED_CONTEXT_WORDS {
        return false;
    }
    let mut q = sorted(&query[prefix..query.len() - suffix]);
    let mut c = sorted(&cached[prefix..cached.len() - suffix]);
    q.dedup();
    c.dedup();
    q != c
}

/// The values sorted (a set to look up or compare: cheaper than hashing for the few values it holds).
fn sorted(values: &[u64]) -> Vec<u64> {
    let mut values = values.to_vec();
    values.sort_unstable();
    values
}
