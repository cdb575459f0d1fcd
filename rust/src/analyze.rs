//! `Analyzer`: one call turns a conversation text into everything routing and caching need (classifier
//! features, semantic embedding, exact-cache key, token count).
//!
//! Pure: owns its (immutable) tables, does no I/O; safe to share between threads. The text is the
//! canonical conversation text of `fastroute.prompt.conversation_text`.

use crate::embed::{StaticEmbedder, WordPieceScan, EMBED_WINDOW};
use crate::tokens::{Encoding, EncodingName, FlatMap};
use crate::{features, normalize};
use std::sync::Arc;

/// Marker that opens a user turn in the conversation text.
const USER_MARKER: &str = "<user> ";
/// The same marker at a line start (after the previous line's break).
const USER_LINE: &str = "\n<user> ";

/// Everything routing and caching need to know about one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The complexity classifier's feature vector (`features::FEATURE_DIM` slots, `FEATURE_VERSION`).
    pub features: Vec<f32>,
    /// Unit embedding of the last user turn (see `last_user_turn`; its first `EMBED_WINDOW` WordPiece ids,
    /// as `StaticEmbedder::embed_into`); `None` without an embedding table.
    pub embedding: Option<Vec<f32>>,
    /// The exact-cache key (`normalize::normalize_key` of the whole text).
    pub key: String,
    /// Exact token count of the whole text under the analyzer's encoding.
    pub tokens: usize,
}

/// The prompt analyzer: an encoding for token counts and, optionally, a static embedder.
pub struct Analyzer {
    encoding: &'static Encoding,
    /// Shared (`Arc`) so the semantic cache can embed with the same 7.8 MB table instead of loading its own.
    embedder: Option<Arc<StaticEmbedder>>,
    /// Every token of the encoding that is a space and ASCII letters (41,055 in cl100k), by its `short_key`:
    /// the WordPiece id of its letters as one word (`NO_PIECE` if none) and their `features::word_info` above.
    /// One lookup for the three parts that look such a word up (2 MB).
    spaced_words: FlatMap<u128, u64>,
}

/// `spaced_words` value of a word that is not one WordPiece piece.
const NO_PIECE: u32 = u32::MAX;

impl Analyzer {
    pub fn new(encoding: EncodingName, embedder: Option<StaticEmbedder>) -> Analyzer {
        let encoding = Encoding::get(encoding);
        let words: Vec<(u128, u128, usize)> = encoding
            .short_token_keys()
            .filter_map(|key| {
                let n = (key >> 120) as usize;
                let bytes = key.to_le_bytes();
                (n >= 2 && bytes[0] == b' ' && bytes[1..n].iter().all(u8::is_ascii_alphabetic)).then(|| {
                    let lanes = (1u128 << (8 * (n - 1))) - 1;
                    let lower = ((key >> 8) | 0x2020_2020_2020_2020_2020_2020_2020_2020) & lanes;
                    (key, lower | ((n - 1) as u128) << 120, n - 1)
                })
            })
            .collect();
        // Only the cl100k count hands words over (`Encoding::count_with`).
        let words = if encoding.name() == EncodingName::Cl100kBase { words } else { Vec::new() };
        let mut spaced_words = FlatMap::dense(words.len());
        for (key, lower, len) in words {
            let piece = embedder.as_ref().and_then(|e| e.tokenizer().whole_word(lower, len)).unwrap_or(NO_PIECE);
            spaced_words.insert(key, u64::from(piece) | u64::from(features::word_info(lower)) << 32);
        }
        Analyzer {
            encoding,
            embedder: embedder.map(Arc::new),
            spaced_words,
        }
    }

    /// The analyzer's embedder, shared (no copy of the table).
    pub fn embedder(&self) -> Option<&Arc<StaticEmbedder>> {
        self.embedder.as_ref()
    }

    pub fn encoding(&self) -> EncodingName {
        self.encoding.name()
    }

    /// Embedding dimension, 0 without an embedder.
    pub fn embedding_dim(&self) -> usize {
        self.embedder.as_ref().map_or(0, |e| e.dim())
    }

    /// Analyses one conversation text.
    pub fn analyze(&self, text: &str) -> Analysis {
        // Most of a prompt is words after a space. The token count's scan finds them and hands each to the
        // feature scan and the WordPiece scan, which then only read the bytes between them (each still
        // counts exactly what it counts on its own: checked in the tests).
        let mut feature_scan = features::FeatureScan::new(text);
        let mut ids = Vec::new();
        let mut wordpiece_scan = self.embedder.as_ref().map(|e| {
            let user_start = text.len() - last_user_turn(text).len();
            ids.reserve(((text.len() - user_start) / 4 + 8).min(EMBED_WINDOW + 16));
            // The scan stops once it has the embedding's window of ids (`StaticEmbedder::embed_into` too).
            WordPieceScan::new(e.tokenizer(), text, user_start, EMBED_WINDOW)
        });
        let tokens = self.encoding.count_with(text, |start, len, letters, lower, piece| {
            // One lookup tells the count, the features and WordPiece about the word, when the piece is a token.
            let (token, whole, info) = match self.spaced_words.get(piece) {
                Some(v) => (true, Some(v as u32).filter(|&id| id != NO_PIECE), (v >> 32) as u32),
                None => (false, None, features::word_info(lower)),
            };
            feature_scan.spaced_word(start, len, letters, lower, info);
            if let Some(scan) = wordpiece_scan.as_mut() {
                scan.spaced_word(start, len, lower, whole, &mut ids);
            }
            token
        });
        let mut feats = vec![0.0f32; features::FEATURE_DIM];
        feature_scan.finish(&mut feats);
        let embedding = self.embedder.as_ref().zip(wordpiece_scan).map(|(e, scan)| {
            scan.finish(&mut ids);
            let mut v = vec![0.0f32; e.dim()];
            e.embed_ids(&mut ids, &mut v);
            v
        });
        Analysis {
            features: feats,
            embedding,
            key: normalize::normalize_key(text),
            tokens,
        }
    }
}

/// The last user turn of a conversation text: what follows the last line opening with `<user> `, or the
/// whole text when there is none. Same split as `fastroute.cache.keys.split_conversation`.
pub fn last_user_turn(text: &str) -> &str {
    // The last `<` that opens `\n<user> `, found by memchr's SIMD reverse byte search: `str::rfind` scans a
    // byte at a time (~1 µs over a 2 KB prompt) and `memmem::rfind` has no SIMD reverse path (~0.35 µs).
    let bytes = text.as_bytes();
    let marker = &USER_LINE.as_bytes()[1..];
    for at in memchr::memrchr_iter(b'<', bytes) {
        if at > 0 && bytes[at - 1] == b'\n' && bytes[at..].starts_with(marker) {
            return &text[at + marker.len()..];
        }
    }
    text.strip_prefix(USER_MARKER).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyses_without_embedder() {
        let a = Analyzer::new(EncodingName::Cl100kBase, None);
        let text = "<system> Be brief.\n<user> What is 2+2?";
        let r = a.analyze(text);
        assert_eq!(r.features.len(), features::FEATURE_DIM);
        assert!(r.embedding.is_none());
        assert_eq!(r.key, "<system> be brief\n<user> what is 2+2");
        assert_eq!(r.tokens, Encoding::get(EncodingName::Cl100kBase).count(text));
        assert_eq!(a.embedding_dim(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let analyzers = [
            Analyzer::new(EncodingName::Cl100kBase, None),
            Analyzer::new(EncodingName::O200kBase, None),
        ];
        let pieces: [&[u8]; 12] = [
            b"<user> ",
            b"\n<<",
            b"<a>",
            b"\r\n",
            b" ",
            b"'s",
            b"\xf0\x9f\x8e\x89",
            b"\xcc\x81",
            b"\xff",
            b"\0",
            b"9",
            b"Ab",
        ];
        let mut rng = crate::xorshift::XorShift::new(0x2545_f491_4f6c_dd1d);
        let mut next = || rng.next();
        for round in 0..3_000 {
            let len = (next() % if round % 100 == 0 { 5_000 } else { 60 }) as usize;
            let mut bytes = Vec::with_capacity(len * 2);
            for _ in 0..len {
                let r = next();
                if r % 3 == 0 {
                    bytes.extend_from_slice(pieces[(r >> 8) as usize % pieces.len()]);
                } else {
                    bytes.push((r >> 16) as u8);
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            for a in &analyzers {
                let r = a.analyze(&text);
                assert!(r.features.iter().all(|x| x.is_finite()), "{text:?}");
                assert!(r.tokens <= text.len());
                assert_eq!(
                    r.tokens,
                    a.encoding
                        .pieces(&text)
                        .iter()
                        .map(|p| a.encoding.count(p))
                        .sum::<usize>()
                );
            }
        }
    }

    /// `analyze` shares scans between its parts: each part must still equal the part computed on its own.
    #[test]
    fn analysis_equals_its_parts_computed_apart() {
        let Some(embedder) = super::timing::shipped_embedder() else {
            return;
        };
        let dim = embedder.dim();
        let a = Analyzer::new(EncodingName::Cl100kBase, Some(embedder));
        let e = a.embedder().unwrap();
        let plain = Analyzer::new(EncodingName::Cl100kBase, None);
        // Option lines (`\nA. `, `\n(B) `) end the MCQ stem, after which sentences are no longer counted.
        let pieces: [&str; 34] = [
            " ", "  ", "\n", "\n<user> ", "<user> ", "Hello", " world", " WORLD", "unaffable", " antidisestablishment",
            " x", "12", " 7", "3.5", ".", ",", "'s", "(", "\t", "é", " café", "日本", "\u{301}", "_", "-", "?!",
            "\x00", " abcdefghijklmnopqrstu", "Ab9", "\r\n", "\nA. ", "\n(B) ", ":", "!",
        ];
        let mut rng = crate::xorshift::XorShift::new(0x0123_4567_89ab_cdef);
        let mut texts: Vec<String> = (0..3_000)
            .map(|round| {
                // Every 50th text is longer than the feature window (head and tail scanned).
                let len = if round % 50 == 0 { 2_000 + round } else { 1 + (round % 60) };
                (0..len).map(|_| pieces[(rng.next() % pieces.len() as u64) as usize]).collect()
            })
            .collect();
        texts.extend([80, 400, 1_600].map(|w| super::timing::bench_prompt(w, w as u64)));
        for text in &texts {
            let r = a.analyze(text);
            let mut feats = vec![0.0f32; features::FEATURE_DIM];
            features::extract(text, &mut feats);
            let mut v = vec![0.0f32; dim];
            e.embed_into(last_user_turn(text), &mut v);
            let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&r.features), bits(&feats), "{text:?}");
            assert_eq!(bits(r.embedding.as_deref().unwrap()), bits(&v), "{text:?}");
            // Both stop at the window: the same as the window of the whole turn's ids.
            let mut all = e.tokenizer().ids(last_user_turn(text));
            e.embed_ids(&mut all, &mut v);
            assert_eq!(bits(r.embedding.as_deref().unwrap()), bits(&v), "{text:?}");
            assert_eq!(r.key, normalize::normalize_key(text), "{text:?}");
            assert_eq!(r.tokens, a.encoding.count(text), "{text:?}");
            let r = plain.analyze(text);
            assert_eq!(bits(&r.features), bits(&feats), "{text:?}");
            assert_eq!(r.tokens, a.encoding.count(text), "{text:?}");
        }
    }

    #[test]
    fn last_user_turn_equals_a_substring_search() {
        let parts = ["\n", "<user> ", "<", "<<user> ", "x", "user> ", "<user>", " ", "\n<user> "];
        let mut rng = crate::xorshift::XorShift::new(0x2545_f491_4f6c_dd1d);
        for _ in 0..5_000 {
            let mut text = String::new();
            for _ in 0..(rng.state() % 12) {
                text.push_str(parts[(rng.next() % parts.len() as u64) as usize]);
            }
            let expect = match text.rfind(USER_LINE) {
                Some(cut) => &text[cut + USER_LINE.len()..],
                None => text.strip_prefix(USER_MARKER).unwrap_or(&text),
            };
            assert_eq!(last_user_turn(&text), expect, "{text:?}");
        }
    }

    #[test]
    fn finds_the_last_user_turn() {
        assert_eq!(
            last_user_turn("<system> s\n<user> a\n<assistant> b\n<user> c\nd"),
            "c\nd"
        );
        assert_eq!(last_user_turn("<user> only"), "only");
        assert_eq!(last_user_turn("no markers"), "no markers");
        assert_eq!(last_user_turn("<user> a\n<<user> b"), "a\n<<user> b");
        assert_eq!(last_user_turn("<user> a\n<user> b < c\n<user>x <user> d"), "b < c\n<user>x <user> d");
        assert_eq!(last_user_turn("\n<user> "), "");
        assert_eq!(last_user_turn("<"), "<");
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    fn best_of(mut f: impl FnMut() -> usize) -> std::time::Duration {
        let mut best = std::time::Duration::MAX;
        for _ in 0..30 {
            let t = std::time::Instant::now();
            for _ in 0..50 {
                std::hint::black_box(f());
            }
            best = best.min(t.elapsed() / 50);
        }
        best
    }

    /// A system + user conversation like the Python benchmark's (`benchmarks/micro/test_analyze_bench.py`):
    /// prose from a small word list with numbers, punctuation and a code line now and then.
    pub(crate) fn bench_prompt(words: usize, seed: u64) -> String {
        const WORDS: &str = "the a of to and in is that for it as with was on be by this are or from at an which \
            have not but what all were when we there can more if will each about how up out them then she many \
            some so these would other into has her two like him see time could no make than first been its who \
            now people my calculate probability explain compare write story step function return array market \
            profit hours Python JSON HTTP API Einstein Paris October Monday";
        let list: Vec<&str> = WORDS.split_whitespace().collect();
        let mut rng = crate::xorshift::XorShift::new(seed | 1);
        let mut next = || rng.next();
        let mut body = Vec::with_capacity(words);
        for _ in 0..words {
            let r = next() % 100;
            let w = list[(next() % list.len() as u64) as usize];
            body.push(match r {
                0..=3 => (next() % 100_000).to_string(),
                4 => "\ndef area(r):\n    return 3.14159 * r ** 2  # circle\n".to_string(),
                5..=11 => format!("{w}{}", [".", ",", "?", ":"][(next() % 4) as usize]),
                _ => w.to_string(),
            });
        }
        format!(
            "<system> You are a careful assistant. Answer concisely and show your reasoning when asked.\n<user> {}",
            body.join(" ")
        )
    }

    /// The shipped embedder from `models/embedding/`, if present (test code only: the core never reads files).
    pub(crate) fn shipped_embedder() -> Option<StaticEmbedder> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/embedding");
        let tokenizer = std::fs::read(dir.join("tokenizer.json")).ok()?;
        let table = std::fs::read(dir.join("table.q8")).ok()?;
        StaticEmbedder::from_bytes(&tokenizer, &table, 256).ok()
    }

    /// `cargo test --release --lib analyze::timing -- --ignored --nocapture`: each part at 100-16,000 tokens.
    #[test]
    #[ignore]
    fn time_bench_prompts() {
        let a = Analyzer::new(EncodingName::Cl100kBase, shipped_embedder());
        let Some(e) = a.embedder.as_ref() else {
            println!("models/embedding missing");
            return;
        };
        for words in [80, 400, 1_600, 13_000] {
            let text = bench_prompt(words, words as u64);
            let user = last_user_turn(&text);
            let mut v = vec![0.0f32; e.dim()];
            let mut feats = vec![0.0f32; features::FEATURE_DIM];
            let mut ids = Vec::new();
            let t_wp = best_of(|| {
                ids.clear();
                e.tokenizer().ids_into(user, &mut ids);
                ids.len()
            });
            let t_emb = best_of(|| {
                e.embed_into(user, &mut v);
                0
            });
            let t_feat = best_of(|| {
                features::extract(&text, &mut feats);
                0
            });
            let t_key = best_of(|| normalize::normalize_key(&text).len());
            let t_tok = best_of(|| a.encoding.count(&text));
            let t_turn = best_of(|| last_user_turn(&text).len());
            let t_all = best_of(|| a.analyze(&text).tokens);
            // The parts one after another, each with its own scan (what `analyze` did before sharing scans).
            let t_apart = best_of(|| {
                let mut feats = vec![0.0f32; features::FEATURE_DIM];
                features::extract(&text, &mut feats);
                let mut v = vec![0.0f32; e.dim()];
                e.embed_into(last_user_turn(&text), &mut v);
                normalize::normalize_key(&text).len() + a.encoding.count(&text)
            });
            println!("  analyze {t_all:?}, parts apart {t_apart:?}");
            println!(
                "{} bytes, {} tokens: wordpiece {t_wp:?}, embed {t_emb:?}, features {t_feat:?}, key {t_key:?}, \
                 tokens {t_tok:?}, last turn {t_turn:?}, analyze {t_all:?}",
                text.len(),
                a.encoding.count(&text)
            );
        }
    }

    /// `cargo test --release --lib analyze::timing -- --ignored --nocapture`: cost of each part at ~500 tokens.
    #[test]
    #[ignore]
    fn time_parts() {
        let body = "Calculate the probability that two dice sum to 7, then explain each step. The market \
                    grew 12.5% in 2023, compared with 8% before; which of the following is true?\n"
            .repeat(12);
        let text = format!("<system> You are a careful assistant.\n<user> {body}");
        let a = Analyzer::new(EncodingName::Cl100kBase, None);
        let mut feats = vec![0.0f32; features::FEATURE_DIM];
        let t_feat = best_of(|| {
            features::extract(&text, &mut feats);
            0
        });
        let t_key = best_of(|| normalize::normalize_key(&text).len());
        let t_tok = best_of(|| a.encoding.count(&text));
        let t_all = best_of(|| a.analyze(&text).tokens);
        println!(
            "{} bytes, {} tokens: features {t_feat:?}, key {t_key:?}, tokens {t_tok:?}, analyze {t_all:?}",
            text.len(),
            a.encoding.count(&text)
        );
    }
}

#[cfg(test)]
mod probe {
    use super::*;

    /// For callgrind (load-independent instruction counts per part):
    /// `PROBE_N=200 PROBE_WORDS=400 valgrind --tool=callgrind <test binary> --ignored analyze::probe --exact`.
    #[test]
    #[ignore]
    fn probe_analyze() {
        let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        let (n, words) = (env("PROBE_N", 0), env("PROBE_WORDS", 400));
        let a = Analyzer::new(EncodingName::Cl100kBase, super::timing::shipped_embedder());
        let text = super::timing::bench_prompt(words, words as u64);
        let mut s = 0;
        for _ in 0..n {
            s += std::hint::black_box(a.analyze(std::hint::black_box(&text))).tokens;
        }
        println!("{s}");
    }
}
