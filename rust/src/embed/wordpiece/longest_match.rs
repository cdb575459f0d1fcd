//! Greedy longest-match-first WordPiece over one word: its pieces' ids, or one [UNK].

use super::{Word, WordPiece, CONTINUATION, TINY_CONTINUATION, TINY_MAX};
use crate::tokens::SHORT_MAX;

impl WordPiece {
    /// `word_ids` for a whole ASCII word of `n` < 16 bytes that is not itself a vocabulary piece, given as the
    /// `short_key` of its lower-cased bytes: every candidate piece's key is cut from that one integer (no copy
    /// of the word, no key built byte by byte). The same greedy longest-match as `word_ids`.
    pub(super) fn short_ascii_word_ids(&self, word: u128, n: usize, ids: &mut Vec<u32>) {
        debug_assert!(n <= SHORT_MAX && n <= self.max_chars_per_word);
        let mark = ids.len();
        let mut start = 0;
        while start < n {
            let rest = word >> (8 * start);
            let mut len = (n - start).min(self.max_piece_bytes);
            if start == 0 && len == n {
                // The caller looked the whole word up already.
                len -= 1;
            }
            loop {
                if len == 0 {
                    ids.truncate(mark);
                    ids.push(self.unk_id);
                    return;
                }
                // Bytes above `len` (later letters, the length byte) are masked off.
                let bytes = rest & ((1u128 << (8 * len)) - 1);
                let found = if len <= TINY_MAX {
                    let flag = if start > 0 { TINY_CONTINUATION } else { 0 };
                    self.tiny.get(bytes as u64 | (len as u64) << 56 | flag)
                } else {
                    let flag = if start > 0 { CONTINUATION } else { 0 };
                    self.short.get(bytes | (len as u128) << 120 | flag)
                };
                if let Some(id) = found {
                    ids.push(id);
                    start += len;
                    break;
                }
                len -= 1;
            }
        }
    }

    /// Greedy longest-match-first WordPiece over one normalised word; an unmatched remainder makes the whole
    /// word one [UNK], as in `tokenizers`.
    pub(super) fn word_ids(&self, word: &Word, ids: &mut Vec<u32>) {
        if word.chars > self.max_chars_per_word {
            ids.push(self.unk_id);
            return;
        }
        let w = word.bytes.as_slice();
        // The commonest case: the whole word is a vocabulary piece.
        if let Some(id) = self.lookup(w, false) {
            ids.push(id);
            return;
        }
        let mark = ids.len();
        let mut start = 0usize;
        while start < w.len() {
            let mut end = w.len().min(start + self.max_piece_bytes);
            loop {
                if end == start {
                    ids.truncate(mark);
                    ids.push(self.unk_id);
                    return;
                }
                // A char boundary: the end of the word or a byte that is not a UTF-8 continuation byte.
                if end == w.len() || (w[end] as i8) >= -0x40 {
                    if let Some(id) = self.lookup(&w[start..end], start > 0) {
                        ids.push(id);
                        start = end;
                        break;
                    }
                }
                end -= 1;
            }
        }
    }
}
