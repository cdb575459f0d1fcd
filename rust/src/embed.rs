//! Static (distilled) token-embedding table applied to BERT WordPiece tokens: the semantic-cache embedding.
//!
//! A text's embedding is the normalised sum of the rows of its first `EMBED_WINDOW` WordPiece ids.
//!
//! Pure: reads the tokenizer and the table from owned byte buffers, never touches files or the environment.
//!
//! The table is int8 with a scale per column (7.8 MB for 30,522 x 256, half of fp16), in the caller's own
//! buffer when it hands one over (`from_table`: the binding keeps the Python `bytes` it was given, no copy,
//! no second table at start-up); its rows sum exactly in integers (`table`). The WordPiece tokenizer is in
//! `wordpiece`.

#[cfg(test)]
mod reference;
mod table;
mod wordpiece;

pub use table::TableBytes;
use table::QuantTable;
pub use wordpiece::{WordPiece, WordPieceScan};

/// How many WordPiece ids of a text the embedding averages: the first 254, as the teacher
/// (`all-MiniLM-L6-v2`, `max_seq_length` 256 with `[CLS]` and `[SEP]`) sees them; what follows is not read.
/// Unknown ids count, as they take a place in the teacher's window too. Bounds the cost of a long prompt
/// (tokenising and summing rows stop here) and is part of the table's meaning (models/embedding/CARD.md).
pub const EMBED_WINDOW: usize = 254;

/// A WordPiece tokenizer plus a `vocab x dim` int8 table: text -> unit vector, in microseconds.
pub struct StaticEmbedder {
    tokenizer: WordPiece,
    table: QuantTable,
}

impl StaticEmbedder {
    /// Builds the embedder from a `tokenizer.json` and a table in `table`'s format (column scales, then int8 rows).
    pub fn from_bytes(tokenizer_json: &[u8], table: &[u8], dim: usize) -> Result<StaticEmbedder, String> {
        StaticEmbedder::from_table(tokenizer_json, Box::new(table.to_vec()), dim)
    }

    /// `from_bytes` without copying the table: the embedder keeps `table`.
    pub fn from_table(tokenizer_json: &[u8], table: TableBytes, dim: usize) -> Result<StaticEmbedder, String> {
        let table = QuantTable::parse(table, dim)?;
        let tokenizer = WordPiece::from_tokenizer_json(tokenizer_json)?;
        if table.rows() < tokenizer.vocab_size() {
            return Err(format!(
                "table has {} rows but the vocab has {} tokens",
                table.rows(),
                tokenizer.vocab_size()
            ));
        }
        Ok(StaticEmbedder { tokenizer, table })
    }

    pub fn dim(&self) -> usize {
        self.table.dim()
    }

    pub fn tokenizer(&self) -> &WordPiece {
        &self.tokenizer
    }

    /// Bytes held by the table (what it adds to the process RSS once touched).
    pub fn table_bytes(&self) -> usize {
        self.table.len_bytes()
    }

    /// Writes the L2-normalised sum of the rows of the first `EMBED_WINDOW` WordPiece ids of `text` into `out`
    /// (all zeros if none is known). The text past the window is not read.
    ///
    /// # Panics
    /// If `out.len() != self.dim()`.
    pub fn embed_into(&self, text: &str, out: &mut [f32]) {
        let mut ids = Vec::with_capacity((text.len() / 4 + 8).min(EMBED_WINDOW + 16));
        WordPieceScan::new(&self.tokenizer, text, 0, EMBED_WINDOW).finish(&mut ids);
        self.embed_ids(&mut ids, out);
    }

    /// `embed_into` of the text whose WordPiece ids (`self.tokenizer()`) are `ids` (all of them, or at least
    /// the first `EMBED_WINDOW`); `ids` is left cut to the window, without unknown and out-of-table ids.
    ///
    /// # Panics
    /// If `out.len() != self.dim()`.
    pub fn embed_ids(&self, ids: &mut Vec<u32>, out: &mut [f32]) {
        let (unk, rows) = (self.tokenizer.unk_id(), self.table.rows());
        ids.truncate(EMBED_WINDOW);
        ids.retain(|&id| id != unk && (id as usize) < rows);
        self.table.sum_into(ids, out);
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            let inv = 1.0 / norm;
            out.iter_mut().for_each(|x| *x *= inv);
        }
    }

    /// Convenience: returns a fresh vector (see `embed_into`).
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let mut out = vec![0.0; self.dim()];
        self.embed_into(text, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_tokenizer() -> Vec<u8> {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "un", "##aff", "##able", ",", "!", "cafe", "中",
            "the", "##s",
        ];
        let entries: Vec<String> = vocab.iter().enumerate().map(|(i, t)| format!("\"{t}\": {i}")).collect();
        format!(
            "{{\"model\": {{\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"continuing_subword_prefix\": \"##\", \
             \"max_input_chars_per_word\": 100, \"vocab\": {{{}}}}}}}",
            entries.join(", ")
        )
        .into_bytes()
    }

    #[test]
    fn wordpiece_splits_lowercases_and_strips_accents() {
        let wp = WordPiece::from_tokenizer_json(&tiny_tokenizer()).unwrap();
        assert_eq!(wp.ids("Hello, WORLD!"), vec![4, 9, 5, 10]);
        assert_eq!(wp.ids("unaffable"), vec![6, 7, 8]);
        assert_eq!(wp.ids("Café"), vec![11]);
        assert_eq!(wp.ids("中中"), vec![12, 12]);
        // A word whose remainder matches nothing becomes a single [UNK].
        assert_eq!(wp.ids("unxyz hello"), vec![1, 4]);
        assert_eq!(wp.ids("\u{0}\u{200b}hello\u{fffd}"), vec![4]);
        // The same words with 16 bytes readable after them (the one-load path for ASCII words).
        let pad = " ".repeat(16);
        assert_eq!(wp.ids(&format!("UnAffable, unxyz hello!{pad}")), vec![6, 7, 8, 9, 1, 4, 10]);
        assert!(wp.ids("").is_empty());
    }

    #[test]
    fn long_words_become_unknown() {
        let wp = WordPiece::from_tokenizer_json(&tiny_tokenizer()).unwrap();
        let long = "the".repeat(40);
        assert_eq!(wp.ids(&long), vec![1]);
    }

    #[test]
    fn embedding_is_unit_length_and_order_free() {
        let dim = 4;
        let table = table::table_bytes(dim, 15, |c| 0.25 + c as f32, |i, j| ((i * 3 + j) % 7 + 1) as i8);
        let e = StaticEmbedder::from_bytes(&tiny_tokenizer(), &table, dim).unwrap();
        let a = e.embed("hello world");
        let b = e.embed("world hello");
        let n: f32 = a.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        assert_eq!(a, b);
        assert_eq!(e.embed("zzz"), vec![0.0; dim]);
        assert!(StaticEmbedder::from_bytes(&tiny_tokenizer(), &table[..10], dim).is_err());
        // Fewer rows than the vocabulary.
        let short = table::table_bytes(dim, 14, |_| 1.0, |_, _| 1);
        assert!(StaticEmbedder::from_bytes(&tiny_tokenizer(), &short, dim).is_err());
        // A row is its values times the column scales: "hello" alone is row 4, normalised.
        let want: Vec<f32> = (0..dim).map(|j| ((4 * 3 + j) % 7 + 1) as f32 * (0.25 + j as f32)).collect();
        let norm = want.iter().map(|x| x * x).sum::<f32>().sqrt();
        for (got, w) in e.embed("hello").iter().zip(&want) {
            assert!((got - w / norm).abs() < 1e-6);
        }
    }

    #[test]
    fn embedding_reads_only_the_window() {
        let dim = 4;
        let table = table::table_bytes(dim, 15, |_| 1.0 / 16.0, |i, j| ((i * dim + j) % 7 + 1) as i8);
        let e = StaticEmbedder::from_bytes(&tiny_tokenizer(), &table, dim).unwrap();
        let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        // "unaffable" is three ids: the window ends inside it, and [UNK] ("zzz") takes a place in it.
        let heads = [
            "hello ".repeat(EMBED_WINDOW),
            "zzz unaffable ".repeat(EMBED_WINDOW / 4 + 1),
            "hello ".repeat(EMBED_WINDOW - 1),
        ];
        for head in heads {
            let mut ids = e.tokenizer().ids(&head);
            let tails = [" world", " cafe, world", "", " 中"];
            let embeddings: Vec<_> = tails.iter().map(|t| bits(e.embed(&format!("{head}{t}")))).collect();
            let mut all = e.tokenizer().ids(&format!("{head}{}", tails[0]));
            let mut v = vec![0.0; dim];
            e.embed_ids(&mut all, &mut v);
            assert_eq!(bits(v), embeddings[0]);
            if ids.len() >= EMBED_WINDOW {
                assert!(embeddings.iter().all(|b| *b == embeddings[0]));
            } else {
                // Room for the tail's first ids: the texts differ inside the window.
                assert_ne!(embeddings[0], embeddings[1]);
            }
            ids.truncate(EMBED_WINDOW);
            let mut v = vec![0.0; dim];
            e.embed_ids(&mut ids, &mut v);
            assert_eq!(bits(v), bits(e.embed(&head)));
        }
        // Shorter texts still read everything.
        assert_ne!(bits(e.embed("hello hello world")), bits(e.embed("hello hello cafe")));
    }

    #[test]
    fn a_scan_with_a_limit_gives_the_first_ids() {
        let mut tokenizers = vec![tiny_tokenizer()];
        tokenizers.extend(shipped_tokenizer());
        let corpus = varied_corpus();
        // Long texts too: runs of the corpus joined by spaces and line breaks.
        let long: Vec<String> = corpus.chunks(40).map(|c| c.join(" \n")).collect();
        for json in tokenizers {
            let wp = WordPiece::from_tokenizer_json(&json).unwrap();
            for text in corpus.iter().chain(&long) {
                let all = wp.ids(text);
                for limit in [0, 1, 2, 3, 7, 20, 100, EMBED_WINDOW] {
                    let mut ids = Vec::new();
                    WordPieceScan::new(&wp, text, 0, limit).finish(&mut ids);
                    assert_eq!(ids, all[..all.len().min(limit)], "{limit} {text:?}");
                }
            }
        }
    }

    /// Texts that exercise every branch of the tokenizer: ASCII classes, accents, CJK, controls, long words.
    fn varied_corpus() -> Vec<String> {
        let mut texts: Vec<String> = [
            "Hello, World! How's it going?",
            "Café naïve résumé coöperate Ångström ÉCOLE",
            "東京は日本の首都です。中文字符测试 한국어",
            "Emoji 🤗🚀 and symbols ©®™ — “quotes” \u{2018}single\u{2019} … ¿¡",
            "def f(x):\n\treturn x**2  # comment\r\n",
            "unaffable antidisestablishmentarianism supercalifragilisticexpialidocious",
            "Tab\tseparated\x0bvertical\x0cform\x00nul\u{200b}zero-width\u{feff}bom\u{fffd}repl\x7fdel",
            "İstanbul ß ﬁ ligature Ⅻ ½ ² ＨＥＬＬＯ",
            "Ελληνικά кириллица العربية עברית हिन्दी ไทย",
            "",
            "   ",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.push("x".repeat(150));
        texts.push("é".repeat(99) + " " + &"é".repeat(101));
        let alphabet: Vec<char> =
            "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?'\"()[]{}<>/\\-_=+*&^%$#@~`\n\t\réüñçøåÅ中日😀\u{301}\u{0}\u{3000}ſ"
                .chars()
                .collect();
        let mut rng = crate::xorshift::XorShift::new(0x1234_5678_9abc_def1);
        let mut next = move || rng.next() as usize;
        for _ in 0..2_000 {
            let len = next() % 120;
            let text: String = (0..len).map(|_| alphabet[next() % alphabet.len()]).collect();
            texts.push(text);
        }
        texts
    }

    fn shipped_tokenizer() -> Option<Vec<u8>> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/embedding/tokenizer.json")).ok()
    }

    #[test]
    fn wordpiece_ids_equal_the_reference_implementation() {
        let mut tokenizers = vec![tiny_tokenizer()];
        tokenizers.extend(shipped_tokenizer());
        for json in tokenizers {
            let fast = WordPiece::from_tokenizer_json(&json).unwrap();
            let slow = reference::WordPiece::from_tokenizer_json(&json).unwrap();
            for text in varied_corpus() {
                assert_eq!(fast.ids(&text), slow.ids(&text), "{text:?}");
            }
        }
    }
}
