//! Static (distilled) token-embedding table applied to BERT WordPiece tokens: the semantic-cache embedding.
//!
//! Pure: reads the tokenizer and the table from owned byte buffers, never touches files or the environment.
//!
//! The tokenizer is a hand-written copy of the `tokenizers` pipeline that `all-MiniLM-L6-v2`'s
//! `tokenizer.json` declares (BertNormalizer with lowercase + accent stripping + Chinese-character
//! isolation, BertPreTokenizer, WordPiece with `##` continuations). Written by hand because the
//! `tokenizers` crate is a heavy build and allocates an `Encoding` with offsets per call; this one
//! allocates nothing per token. `tests/native/test_embed.py` checks it id-for-id against the
//! `tokenizers` Python package when that is installed.

use rustc_hash::FxHashMap;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// BERT-style WordPiece tokenizer (uncased) built from a `tokenizer.json`.
pub struct WordPiece {
    /// Word-initial pieces.
    start: FxHashMap<Box<str>, u32>,
    /// Continuation pieces, stored without their `##` prefix.
    cont: FxHashMap<Box<str>, u32>,
    unk_id: u32,
    max_chars_per_word: usize,
    /// Longest piece in bytes (bounds the greedy search).
    max_piece_bytes: usize,
    vocab_size: usize,
}

impl WordPiece {
    /// Parses the `model` section of a Hugging Face `tokenizer.json` (WordPiece only).
    pub fn from_tokenizer_json(bytes: &[u8]) -> Result<WordPiece, String> {
        let root: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("tokenizer.json is not valid JSON: {e}"))?;
        let model = root.get("model").ok_or("tokenizer.json has no `model`")?;
        if model.get("type").and_then(|t| t.as_str()) != Some("WordPiece") {
            return Err("tokenizer.json model is not WordPiece".into());
        }
        let prefix = model
            .get("continuing_subword_prefix")
            .and_then(|p| p.as_str())
            .unwrap_or("##");
        let unk = model
            .get("unk_token")
            .and_then(|p| p.as_str())
            .unwrap_or("[UNK]");
        let max_chars_per_word = model
            .get("max_input_chars_per_word")
            .and_then(|m| m.as_u64())
            .unwrap_or(100) as usize;
        let vocab = model
            .get("vocab")
            .and_then(|v| v.as_object())
            .ok_or("tokenizer.json has no vocab")?;
        let mut start = FxHashMap::default();
        let mut cont = FxHashMap::default();
        let mut unk_id = None;
        let mut max_piece_bytes = 1;
        let mut vocab_size = 0usize;
        for (piece, id) in vocab {
            let id = id.as_u64().ok_or("vocab id is not an integer")? as u32;
            vocab_size = vocab_size.max(id as usize + 1);
            if piece == unk {
                unk_id = Some(id);
            }
            if let Some(rest) = piece.strip_prefix(prefix) {
                if !rest.is_empty() {
                    max_piece_bytes = max_piece_bytes.max(rest.len());
                    cont.insert(rest.into(), id);
                    continue;
                }
            }
            max_piece_bytes = max_piece_bytes.max(piece.len());
            start.insert(piece.as_str().into(), id);
        }
        let unk_id = unk_id.ok_or("vocab has no unknown token")?;
        Ok(WordPiece {
            start,
            cont,
            unk_id,
            max_chars_per_word,
            max_piece_bytes,
            vocab_size,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    /// Calls `emit` with each token id of `text` (no `[CLS]`/`[SEP]`).
    pub fn for_each_id(&self, text: &str, mut emit: impl FnMut(u32)) {
        let mut word = String::with_capacity(64);
        let mut word_chars = 0usize;
        let flush = |word: &mut String, word_chars: &mut usize, emit: &mut dyn FnMut(u32)| {
            if !word.is_empty() {
                self.word_ids(word, *word_chars, emit);
                word.clear();
                *word_chars = 0;
            }
        };
        for c in text.chars() {
            if c.is_ascii() {
                // Fast path: ASCII needs no accent stripping and lowercases in place.
                let b = c as u8;
                if b.is_ascii_alphanumeric() {
                    word.push(b.to_ascii_lowercase() as char);
                    word_chars += 1;
                } else if b == b' ' || b == b'\t' || b == b'\n' || b == b'\r' {
                    flush(&mut word, &mut word_chars, &mut emit);
                } else if b.is_ascii_punctuation() {
                    flush(&mut word, &mut word_chars, &mut emit);
                    word.push(c);
                    word_chars = 1;
                    flush(&mut word, &mut word_chars, &mut emit);
                }
                // Everything else in ASCII is a control character (incl. \x0b, \x0c): clean_text removes it.
                continue;
            }
            // clean_text: drop NUL, U+FFFD and control/format characters; whitespace becomes a space.
            if c == '\u{fffd}' || is_control(c) {
                continue;
            }
            if c.is_whitespace() {
                flush(&mut word, &mut word_chars, &mut emit);
                continue;
            }
            if is_chinese_char(c) {
                flush(&mut word, &mut word_chars, &mut emit);
                word.push(c);
                word_chars = 1;
                flush(&mut word, &mut word_chars, &mut emit);
                continue;
            }
            // strip_accents (NFD, drop non-spacing marks) then lowercase, as the normalizer does.
            for d in std::iter::once(c).nfd() {
                if d.is_mark_nonspacing() {
                    continue;
                }
                for l in d.to_lowercase() {
                    if l.is_whitespace() {
                        flush(&mut word, &mut word_chars, &mut emit);
                    } else if is_punctuation(l) {
                        flush(&mut word, &mut word_chars, &mut emit);
                        word.push(l);
                        word_chars = 1;
                        flush(&mut word, &mut word_chars, &mut emit);
                    } else {
                        word.push(l);
                        word_chars += 1;
                    }
                }
            }
        }
        flush(&mut word, &mut word_chars, &mut emit);
    }

    /// Token ids of `text` as a vector (tests and debugging; the hot path uses `for_each_id`).
    pub fn ids(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        self.for_each_id(text, |id| out.push(id));
        out
    }

    /// Greedy longest-match-first WordPiece over one pre-tokenized, normalised word.
    fn word_ids(&self, word: &str, chars: usize, emit: &mut dyn FnMut(u32)) {
        if chars > self.max_chars_per_word {
            emit(self.unk_id);
            return;
        }
        // Ids are buffered so that a word with an unmatched remainder becomes one [UNK], as in `tokenizers`.
        let mut buf = [0u32; 32];
        let mut spill: Vec<u32> = Vec::new();
        let mut n = 0usize;
        let mut start = 0usize;
        while start < word.len() {
            let map = if start == 0 { &self.start } else { &self.cont };
            let mut end = word.len().min(start + self.max_piece_bytes);
            let mut found = None;
            while end > start {
                if word.is_char_boundary(end) {
                    if let Some(&id) = map.get(&word[start..end]) {
                        found = Some(id);
                        break;
                    }
                }
                end -= 1;
            }
            match found {
                Some(id) => {
                    if n < buf.len() {
                        buf[n] = id;
                    } else {
                        spill.push(id);
                    }
                    n += 1;
                    start = end;
                }
                None => {
                    emit(self.unk_id);
                    return;
                }
            }
        }
        for &id in buf.iter().take(n.min(buf.len())) {
            emit(id);
        }
        for id in spill {
            emit(id);
        }
    }
}

/// BERT's `_is_control`: other-category characters except tab, newline and carriage return.
fn is_control(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => false,
        '\0' => true,
        _ => c.is_other(),
    }
}

/// BERT's punctuation: every ASCII non-alphanumeric printable character plus Unicode P* categories.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK ideograph blocks that BERT isolates as single-character words.
fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

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

/// A WordPiece tokenizer plus a `vocab x dim` table: text -> unit vector, in microseconds.
pub struct StaticEmbedder {
    tokenizer: WordPiece,
    table: Vec<f32>,
    dim: usize,
    rows: usize,
}

impl StaticEmbedder {
    /// Builds the embedder from a `tokenizer.json` and a row-major fp16 little-endian table of `dim` columns.
    ///
    /// Row weighting (e.g. Zipf / frequency) is expected to be baked into the table at distillation time.
    pub fn from_bytes(
        tokenizer_json: &[u8],
        table_f16_le: &[u8],
        dim: usize,
    ) -> Result<StaticEmbedder, String> {
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
        let table = table_f16_le
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect();
        Ok(StaticEmbedder {
            tokenizer,
            table,
            dim,
            rows,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn tokenizer(&self) -> &WordPiece {
        &self.tokenizer
    }

    /// Writes the L2-normalised mean of the token rows of `text` into `out` (all zeros if no known token).
    ///
    /// # Panics
    /// If `out.len() != self.dim()`.
    pub fn embed_into(&self, text: &str, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim, "output buffer has the wrong length");
        out.fill(0.0);
        let unk = self.tokenizer.unk_id();
        let dim = self.dim;
        let table = &self.table;
        let rows = self.rows;
        self.tokenizer.for_each_id(text, |id| {
            let id = id as usize;
            if id as u32 == unk || id >= rows {
                return;
            }
            let row = &table[id * dim..(id + 1) * dim];
            for (o, r) in out.iter_mut().zip(row) {
                *o += *r;
            }
        });
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_tokenizer() -> Vec<u8> {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "un", "##aff", "##able", ",",
            "!", "cafe", "中", "the", "##s",
        ];
        let entries: Vec<String> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| format!("\"{t}\": {i}"))
            .collect();
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

    fn f32_to_f16_test(v: f32) -> u16 {
        // Only for positive normal values used above.
        let bits = v.to_bits();
        let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
        ((exp as u16) << 10) | ((bits >> 13) & 0x3ff) as u16
    }
}
