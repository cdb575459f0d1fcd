//! The first, char-by-char WordPiece tokenizer, kept only as a reference for `wordpiece`'s parity tests.
//!
//! Test-only. It passed id-for-id parity with the `tokenizers` package (tests/native/test_embed.py).

use rustc_hash::FxHashMap;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

// BERT's character classes are the definition both tokenizers follow; the reference checks the algorithm.
use super::wordpiece::{is_chinese_char, is_control, is_punctuation};

/// BERT-style WordPiece tokenizer (uncased) built from a `tokenizer.json`.
pub(crate) struct WordPiece {
    /// Word-initial pieces.
    start: FxHashMap<Box<str>, u32>,
    /// Continuation pieces, stored without their `##` prefix.
    cont: FxHashMap<Box<str>, u32>,
    unk_id: u32,
    max_chars_per_word: usize,
    /// Longest piece in bytes (bounds the greedy search).
    max_piece_bytes: usize,
}

impl WordPiece {
    /// Parses the `model` section of a Hugging Face `tokenizer.json` (WordPiece only).
    pub(crate) fn from_tokenizer_json(bytes: &[u8]) -> Result<WordPiece, String> {
        let root: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("tokenizer.json is not valid JSON: {e}"))?;
        let model = root.get("model").ok_or("tokenizer.json has no `model`")?;
        if model.get("type").and_then(|t| t.as_str()) != Some("WordPiece") {
            return Err("tokenizer.json model is not WordPiece".into());
        }
        let prefix = model
            .get("continuing_subword_prefix")
            .and_then(|p| p.as_str())
            .unwrap_or("##");
        let unk = model.get("unk_token").and_then(|p| p.as_str()).unwrap_or("[UNK]");
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
        for (piece, id) in vocab {
            let id = id.as_u64().ok_or("vocab id is not an integer")? as u32;
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
        })
    }

    /// Calls `emit` with each token id of `text` (no `[CLS]`/`[SEP]`).
    pub(crate) fn for_each_id(&self, text: &str, mut emit: impl FnMut(u32)) {
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
    pub(crate) fn ids(&self, text: &str) -> Vec<u32> {
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

