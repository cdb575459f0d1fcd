//! Static (distilled) token-embedding table applied to BERT WordPiece tokens: the semantic-cache embedding.
//!
//! A text's embedding is the normalised sum of the rows of its first `EMBED_WINDOW` WordPiece ids.
//!
//! Pure: reads the tokenizer and the table from owned byte buffers, never touches files or the environment.
//!
//! The table stays fp16 in memory (15.6 MB for 30,522 x 256 rather than 31 MB as f32), in the caller's own
//! buffer when it hands one over (`from_table`: the binding keeps the Python `bytes` it was given, no copy,
//! no second 15.6 MB at start-up). Rows are summed in
//! token order, so the result is bit-identical to expanding the table to f32 first: on x86-64 with F16C
//! (checked at run time) 64 columns at a time in eight AVX registers, converting halves on load; elsewhere
//! one scalar conversion per element. The WordPiece tokenizer is in `wordpiece`.

#[cfg(test)]
mod reference;
mod wordpiece;

pub use wordpiece::{WordPiece, WordPieceScan};

/// How many WordPiece ids of a text the embedding averages: the first 254, as the teacher
/// (`all-MiniLM-L6-v2`, `max_seq_length` 256 with `[CLS]` and `[SEP]`) sees them; what follows is not read.
/// Unknown ids count, as they take a place in the teacher's window too. Bounds the cost of a long prompt
/// (tokenising and summing rows stop here) and is part of the table's meaning (models/embedding/CARD.md).
pub const EMBED_WINDOW: usize = 254;

/// Converts one IEEE-754 half-precision value to f32 (no `half` dependency needed for a one-off load).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) & 1) as u32;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = if exp == 0 {
        if frac == 0 {
            sign << 31
        } else {
            // Subnormal: renormalise.
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            (sign << 31) | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
    } else if exp == 0x1f {
        (sign << 31) | (0xff << 23) | (frac << 13)
    } else {
        (sign << 31) | ((exp + 127 - 15) << 23) | (frac << 13)
    };
    f32::from_bits(bits)
}

/// How rows are summed on this CPU (decided once, at construction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// x86-64 with AVX and F16C, `dim` a multiple of 8.
    #[cfg(target_arch = "x86_64")]
    F16c,
    Scalar,
}

/// The fp16 table's bytes, owned by whoever loaded them (a `Vec<u8>`, or a Python `bytes` held by the binding).
pub type TableBytes = Box<dyn AsRef<[u8]> + Send + Sync>;

/// A WordPiece tokenizer plus a `vocab x dim` fp16 table: text -> unit vector, in microseconds.
pub struct StaticEmbedder {
    tokenizer: WordPiece,
    /// Row-major little-endian fp16, `rows * dim * 2` bytes.
    table: TableBytes,
    dim: usize,
    rows: usize,
    kernel: Kernel,
}

impl StaticEmbedder {
    /// Builds the embedder from a `tokenizer.json` and a row-major fp16 little-endian table of `dim` columns.
    ///
    /// Row weighting (e.g. Zipf / frequency) is expected to be baked into the table at distillation time.
    pub fn from_bytes(tokenizer_json: &[u8], table_f16_le: &[u8], dim: usize) -> Result<StaticEmbedder, String> {
        StaticEmbedder::from_table(tokenizer_json, Box::new(table_f16_le.to_vec()), dim)
    }

    /// `from_bytes` without copying the table: the embedder keeps `table` (row-major fp16 little-endian).
    pub fn from_table(tokenizer_json: &[u8], table: TableBytes, dim: usize) -> Result<StaticEmbedder, String> {
        let table_f16_le = (*table).as_ref();
        if dim == 0 {
            return Err("embedding dim must be > 0".into());
        }
        let tokenizer = WordPiece::from_tokenizer_json(tokenizer_json)?;
        if !table_f16_le.len().is_multiple_of(2 * dim) {
            return Err(format!(
                "table size {} is not a multiple of 2*dim ({})",
                table_f16_le.len(),
                2 * dim
            ));
        }
        let rows = table_f16_le.len() / (2 * dim);
        if rows < tokenizer.vocab_size() {
            return Err(format!(
                "table has {rows} rows but the vocab has {} tokens",
                tokenizer.vocab_size()
            ));
        }
        Ok(StaticEmbedder {
            tokenizer,
            table,
            dim,
            rows,
            kernel: Kernel::best(dim),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn tokenizer(&self) -> &WordPiece {
        &self.tokenizer
    }

    /// Bytes held by the table (what it adds to the process RSS once touched).
    pub fn table_bytes(&self) -> usize {
        self.table().len()
    }

    fn table(&self) -> &[u8] {
        (*self.table).as_ref()
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
        assert_eq!(out.len(), self.dim, "output buffer has the wrong length");
        let (unk, rows) = (self.tokenizer.unk_id(), self.rows);
        ids.truncate(EMBED_WINDOW);
        ids.retain(|&id| id != unk && (id as usize) < rows);
        self.sum_rows(ids, out);
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            let inv = 1.0 / norm;
            out.iter_mut().for_each(|x| *x *= inv);
        }
    }

    /// Convenience: returns a fresh vector (see `embed_into`).
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let mut out = vec![0.0; self.dim];
        self.embed_into(text, &mut out);
        out
    }

    /// `out = sum of rows ids` (each id < rows), added in id order.
    fn sum_rows(&self, ids: &[u32], out: &mut [f32]) {
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::best` chose F16c only after detecting AVX and F16C and checking dim % 8 == 0;
            // every id is < rows and table.len() == rows * dim * 2, out.len() == dim.
            Kernel::F16c => unsafe { sum_rows_f16c(self.table(), self.dim, ids, out) },
            Kernel::Scalar => sum_rows_scalar(self.table(), self.dim, ids, out),
        }
    }
}

impl Kernel {
    fn best(dim: usize) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if dim.is_multiple_of(8) && is_x86_feature_detected!("avx") && is_x86_feature_detected!("f16c") {
            return Kernel::F16c;
        }
        let _ = dim;
        Kernel::Scalar
    }
}

fn sum_rows_scalar(table: &[u8], dim: usize, ids: &[u32], out: &mut [f32]) {
    out.fill(0.0);
    for &id in ids {
        let row = &table[id as usize * dim * 2..(id as usize + 1) * dim * 2];
        for (o, h) in out.iter_mut().zip(row.chunks_exact(2)) {
            *o += f16_to_f32(u16::from_le_bytes([h[0], h[1]]));
        }
    }
}

/// How many ids ahead `sum_rows_f16c` fetches a row's lines.
#[cfg(target_arch = "x86_64")]
const PREFETCH_AHEAD: usize = 8;

/// `sum_rows_scalar` with AVX + F16C: columns in blocks of 64 (eight 8-lane accumulators kept in registers
/// across all rows), then blocks of 8. Each column is still summed in id order, so results are identical.
///
/// # Safety
/// The CPU must support AVX and F16C; `dim % 8 == 0`, `out.len() == dim`, every `id < table.len() / (2 * dim)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn sum_rows_f16c(table: &[u8], dim: usize, ids: &[u32], out: &mut [f32]) {
    use std::arch::x86_64::{
        __m128i, _mm256_add_ps, _mm256_cvtph_ps, _mm256_setzero_ps, _mm256_storeu_ps, _mm_loadu_si128,
        _mm_prefetch, _MM_HINT_T0,
    };
    debug_assert!(dim.is_multiple_of(8) && out.len() == dim);
    debug_assert!(ids.iter().all(|&id| (id as usize + 1) * dim * 2 <= table.len()));
    let base = table.as_ptr();
    let load = |id: u32, col: usize| -> __m128i {
        // SAFETY: id < rows and col + 8 <= dim, so the 8 halves lie inside the table.
        // x86-64 is little-endian, so the bytes are the halves as stored.
        unsafe { _mm_loadu_si128(base.add((id as usize * dim + col) * 2).cast()) }
    };
    // The rows of a long text come from all over a table far larger than the caches: the first pass fetches
    // every line of the row `PREFETCH_AHEAD` ids ahead, so the misses overlap (instead of the summing stalling
    // on each row in turn) and the later column blocks find their lines in cache.
    let row_bytes = dim * 2;
    let prefetch_row = |id: u32| {
        let row = base.wrapping_add(id as usize * row_bytes);
        let mut off = 0;
        while off < row_bytes {
            // A prefetch never faults: `wrapping_add` may point anywhere.
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(off).cast());
            off += 64;
        }
    };
    ids.iter().take(PREFETCH_AHEAD).for_each(|&id| prefetch_row(id));
    let mut col = 0;
    while col + 64 <= dim {
        let mut acc = [_mm256_setzero_ps(); 8];
        for (i, &id) in ids.iter().enumerate() {
            if col == 0 {
                if let Some(&ahead) = ids.get(i + PREFETCH_AHEAD) {
                    prefetch_row(ahead);
                }
            }
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm256_add_ps(*a, _mm256_cvtph_ps(load(id, col + 8 * k)));
            }
        }
        for (k, a) in acc.iter().enumerate() {
            // SAFETY: col + 8k + 8 <= dim == out.len().
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(col + 8 * k), *a) };
        }
        col += 64;
    }
    while col < dim {
        let mut acc = _mm256_setzero_ps();
        for &id in ids {
            acc = _mm256_add_ps(acc, _mm256_cvtph_ps(load(id, col)));
        }
        // SAFETY: col + 8 <= dim == out.len().
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(col), acc) };
        col += 8;
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
    fn f16_conversion_matches_known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert!((f16_to_f32(0x3555) - 0.333_25).abs() < 1e-4);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
    }

    #[test]
    fn embedding_is_unit_length_and_order_free() {
        let dim = 4;
        let mut table = Vec::new();
        for i in 0..15u16 {
            for j in 0..dim as u16 {
                // small distinct positive values: exact in f16 via integer/16.
                let v = ((i * 3 + j) % 7 + 1) as f32 / 16.0;
                let bits = f32_to_f16_test(v);
                table.extend_from_slice(&bits.to_le_bytes());
            }
        }
        let e = StaticEmbedder::from_bytes(&tiny_tokenizer(), &table, dim).unwrap();
        let a = e.embed("hello world");
        let b = e.embed("world hello");
        let n: f32 = a.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        assert_eq!(a, b);
        assert_eq!(e.embed("zzz"), vec![0.0; dim]);
        assert!(StaticEmbedder::from_bytes(&tiny_tokenizer(), &table[..10], dim).is_err());
    }

    #[test]
    fn embedding_reads_only_the_window() {
        let dim = 4;
        let table: Vec<u8> = (0..15 * dim as u16)
            .flat_map(|k| f32_to_f16_test(f32::from(k % 7 + 1) / 16.0).to_le_bytes())
            .collect();
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

    #[test]
    fn simd_sum_equals_scalar_sum_bit_for_bit() {
        let dim = 72; // one 64-column block and one 8-column block
        let rows = 50;
        let mut rng = crate::xorshift::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let table: Vec<u16> = (0..rows * dim)
            .map(|_| {
                // Finite halves of both signs, subnormals included (exponent 0x1f is skipped).
                let h = rng.next() as u16;
                if h & 0x7c00 == 0x7c00 {
                    h & 0x83ff
                } else {
                    h
                }
            })
            .collect();
        let ids: Vec<u32> = (0..300).map(|k| (k * 17 % rows) as u32).collect();
        let mut scalar = vec![0.0f32; dim];
        let table: Vec<u8> = table.iter().flat_map(|h| h.to_le_bytes()).collect();
        sum_rows_scalar(&table, dim, &ids, &mut scalar);
        if Kernel::best(dim) != Kernel::Scalar {
            let mut simd = vec![f32::NAN; dim];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Kernel::best detected AVX + F16C; dim % 8 == 0; ids < rows.
            unsafe {
                sum_rows_f16c(&table, dim, &ids, &mut simd)
            };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&simd), bits(&scalar));
        }
        // Every finite half through the SIMD conversion equals the scalar conversion.
        #[cfg(target_arch = "x86_64")]
        if Kernel::best(8) != Kernel::Scalar {
            let halves: Vec<u16> = (0..=u16::MAX).filter(|h| h & 0x7c00 != 0x7c00).collect();
            let bytes: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
            let mut one = vec![0.0f32; 8];
            for (row, chunk) in halves.chunks_exact(8).enumerate() {
                // SAFETY: AVX + F16C detected; dim 8; row < halves.len() / 8.
                unsafe { sum_rows_f16c(&bytes, 8, &[row as u32], &mut one) };
                for (got, &h) in one.iter().zip(chunk) {
                    assert_eq!(got.to_bits(), (0.0 + f16_to_f32(h)).to_bits(), "{h:#x}");
                }
            }
        }
    }

    fn f32_to_f16_test(v: f32) -> u16 {
        // Only for positive normal values used above.
        let bits = v.to_bits();
        let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
        ((exp as u16) << 10) | ((bits >> 13) & 0x3ff) as u16
    }
}
