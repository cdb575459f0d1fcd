//! Test-only instruments of the verifier: an instruction-count probe and a dump of whole signatures.
//!
//! `probe` is run under callgrind (`VERIFY_PROBE=full|numbers|verdict VERIFY_PROBE_N=<rounds>`; the
//! difference between two round counts is the cost of the extra rounds); `dump_signatures` writes every
//! development and held-out text's signature in a canonical form (`VERIFY_DUMP=<path>`), so a change of
//! representation can be checked to keep every field.

use std::fmt::Write;

use super::*;

/// The texts of both evaluation sets (cache and queries), or none without the data.
fn data_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for set in ["cache_dev", "cache_holdout"] {
        for name in ["cache.jsonl", "queries.jsonl"] {
            let path = format!("{}/benchmarks/data/{set}/{name}", env!("CARGO_MANIFEST_DIR"));
            let Ok(data) = std::fs::read_to_string(path) else {
                continue;
            };
            for line in data.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                texts.push(v["text"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    texts
}

/// The 60 longest development texts (what a lookup's p99 is made of), each with a one-word edit of it.
fn long_pairs() -> Vec<(String, String)> {
    let mut texts: Vec<String> = data_texts()
        .into_iter()
        .filter(|t| t.chars().count() <= MAX_VERIFIABLE_CHARS)
        .collect();
    // `VERIFY_PROBE_SET=ascii` or `wide`: only the long texts that are (not) all ASCII.
    match std::env::var("VERIFY_PROBE_SET").as_deref() {
        Ok("ascii") => texts.retain(|t| t.is_ascii()),
        Ok("wide") => texts.retain(|t| !t.is_ascii()),
        _ => {}
    }
    texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
    texts.dedup();
    texts.truncate(60);
    texts
        .into_iter()
        .map(|t| {
            let edited = t.replacen(" the ", " a ", 1);
            (t, edited)
        })
        .collect()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `valgrind --tool=callgrind <test binary> verify::probe::probe --exact --ignored` with
/// `VERIFY_PROBE` = `full` (whole signatures of the long texts), `lazy` (a lookup's: the numbers' digest,
/// then the whole signature), `lookup` (the digest and a verdict against a kept analysed neighbour, the
/// text with one stop word changed; `lookup-refined`: with " in french" added), `numbers` (their numbers'
/// digests) or
/// `verdict` (verdicts between already analysed signatures: each text with itself and with its edit).
#[test]
#[ignore]
fn probe() {
    let pairs = long_pairs();
    let rounds = env_usize("VERIFY_PROBE_N", 1);
    let kind = std::env::var("VERIFY_PROBE").unwrap_or_else(|_| "full".into());
    let chars: usize = pairs.iter().map(|p| p.0.chars().count()).sum();
    let sigs: Vec<(Signature, Signature)> = if kind == "verdict" {
        pairs.iter().map(|(a, b)| (signature(a), signature(b))).collect()
    } else {
        Vec::new()
    };
    // The neighbours a lookup compares with, analysed once (a cache keeps them).
    // (`lookup-refined`: the text with " in french" added, so the content words differ and R6 fails.)
    let kept: Vec<LazySignature> = (pairs.iter())
        .map(|(a, b)| match kind.as_str() {
            "lookup-refined" => LazySignature::new(format!("{a} in french")),
            _ => LazySignature::new(b.clone()),
        })
        .collect();
    kept.iter().for_each(|k| {
        let _ = verify_lazy(k, k);
    });
    let mut sink = 0usize;
    for _ in 0..rounds {
        match kind.as_str() {
            "full" => {
                for (a, _) in &pairs {
                    sink += std::hint::black_box(signature(std::hint::black_box(a))).words.len();
                }
            }
            "lazy" => {
                // What a lookup does with a query: its numbers' digest, then the whole signature.
                for (a, _) in &pairs {
                    let lazy = LazySignature::new(std::hint::black_box(a).clone());
                    sink += lazy.numbers_digest() as usize & 1;
                    sink += std::hint::black_box(lazy.full()).words.len();
                }
            }
            "lookup" | "lookup-refined" => {
                // A lookup of a query with one neighbour: the digest, then the verdict.
                for ((a, _), k) in pairs.iter().zip(&kept) {
                    let lazy = LazySignature::new(std::hint::black_box(a).clone());
                    sink += lazy.numbers_digest() as usize & 1;
                    sink += verify_lazy(&lazy, k).map_or(0, str::len);
                }
            }
            "numbers" => {
                for (a, _) in &pairs {
                    sink += std::hint::black_box(numbers_digest(std::hint::black_box(a))) as usize & 1;
                }
            }
            _ => {
                for (a, b) in &sigs {
                    sink += verify(std::hint::black_box(a), a).map_or(0, str::len);
                    sink += verify(std::hint::black_box(a), b).map_or(0, str::len);
                }
            }
        }
    }
    println!("{kind}: {} texts, {chars} chars, {rounds} rounds ({sink})", pairs.len());
}

/// Every field of a signature, in an order that does not depend on how the fields are stored.
pub(super) fn canonical(sig: &Signature) -> String {
    let mut content: Vec<u64> = sig.content().to_vec();
    content.sort_unstable();
    let mut s = String::new();
    let _ = write!(
        s,
        "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        sig.too_long,
        sig.numbers.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        sig.polarity_counts(),
        sig.options,
        sig.entities,
        sig.anchors,
        sig.code,
        content,
        sig.words,
        sig.sequence
    );
    s
}

/// `VERIFY_DUMP=<path> <test binary> verify::probe::dump_signatures --exact --ignored`: one line a text
/// (the signature, then its lazy numbers' digest).
#[test]
#[ignore]
fn dump_signatures() {
    let Ok(path) = std::env::var("VERIFY_DUMP") else {
        return;
    };
    let mut texts = data_texts();
    texts.extend(long_pairs().into_iter().flat_map(|(a, b)| [a.repeat(2), b]));
    // Every pair of these edge cases (options, quotes, apostrophes, signs, number words, entities, code,
    // non-ASCII chars), one after the other.
    let pieces = [
        "(a) tea (b) coffee", "\u{201c}Quoted caf\u{e9}\u{201d} ok", "say \"Big Apple\" now", "Don't", "cannot",
        "O'Brien\u{2019}s", "\u{2212}5 or -.5", "3/4 of 10% is 1,000.5", "twenty-one and a dozen", "New York City",
        "NASA and I", "\n- Mary Ann\n2. Bob", "A) one\nB) two", "caf\u{e9} 5 \u{e9}5", "x\u{a0}Y Z\u{2003}W",
        "```let x = 1;```", "`inline Code`", "from Paris to Rome", "more than the least", "not never",
        "(A) \u{201c}\u{e0} la\u{201d} (B) cr\u{e8}me", "..5 and 1.2.3", "It's the second half",
        "hundred and five", "Which? Yes! USA.", "",
    ];
    for a in pieces {
        for b in pieces {
            texts.push(format!("{a} {b}"));
        }
    }
    let mut out = String::new();
    for t in &texts {
        let lazy = LazySignature::new(t.clone());
        let digest = lazy.numbers_digest();
        let _ = writeln!(out, "{} {digest} {}", canonical(&signature(t)), canonical(lazy.full()));
    }
    std::fs::write(path, out).unwrap();
}
