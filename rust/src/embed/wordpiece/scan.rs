//! The WordPiece pass over a text: ASCII words by the fast path, everything else through BERT's normaliser.

use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

use super::classes::{alnum_and_letter_masks, alnum_mask, is_chinese_char, is_control, is_punctuation};
use super::classes::{ASCII_CLASS, HIGH, PUNCT, SPACE, WORD};
use super::{Word, WordPiece, TINY_MAX};
use crate::tokens::{loaded_key, lowercase_key, short_key_at, SHORT_MAX};

/// Bytes a limited scan reads between two looks at how many ids it has (`WordPieceScan::finish`).
const STRETCH: usize = 256;

/// WordPiece over one text in stages, for a caller that finds most of its words itself
/// (`Analyzer::analyze` takes them from the token count's scan): `spaced_word` takes such a word, `finish`
/// tokenises whatever the caller did not hand over. The ids equal the first `limit` of `WordPiece::ids_into`'s:
/// a word's ids are pushed only once the word is complete, so the ids out so far are always a prefix of the
/// whole text's, and the scan stops reading once `limit` are out.
pub struct WordPieceScan<'a> {
    wp: &'a WordPiece,
    text: &'a str,
    /// Bytes before `at` are tokenised (their ids pushed, or the word under way in `word`).
    at: usize,
    word: Word,
    /// How many ids the caller wants (`usize::MAX`: all), counted in the `ids` buffer, which starts empty.
    limit: usize,
}

impl<'a> WordPieceScan<'a> {
    /// Tokenises `text[start..]` (`start` a char boundary) into at most `limit` ids.
    pub fn new(wp: &'a WordPiece, text: &'a str, start: usize, limit: usize) -> WordPieceScan<'a> {
        WordPieceScan {
            wp,
            text,
            at: start,
            word: Word {
                bytes: Vec::with_capacity(64),
                chars: 0,
            },
            limit,
        }
    }

    /// Whether `limit` ids are out: the rest of the text cannot change them.
    #[inline(always)]
    pub fn is_full(&self, ids: &[u32]) -> bool {
        ids.len() >= self.limit
    }

    /// The `len` ASCII letters at `start`, just after a space, whose lower-cased `short_key` is `key`: tokenises
    /// the text up to them, then the word when it ends there (white space or punctuation follows): `whole` if
    /// the caller knows it (`WordPiece::whole_word`), else looked up or split from `key`. Starts before the
    /// scan's own start are ignored; calls come in text order.
    #[inline(always)]
    pub fn spaced_word(&mut self, start: usize, len: usize, key: u128, whole: Option<u32>, ids: &mut Vec<u32>) {
        let bytes = self.text.as_bytes();
        debug_assert!(start > 0 && bytes[start - 1] == b' ' && len <= SHORT_MAX);
        let Some(&next) = bytes.get(start + len) else { return };
        if ids.len() >= self.limit || start < self.at || next >= 0x80 || !matches!(ASCII_CLASS[usize::from(next)], SPACE | PUNCT) {
            return;
        }
        let wp = self.wp;
        // The space before `start` ends any word under way, so the word starts with an empty buffer, as in
        // `ascii_word`. When that space is all that is left (most words), the last word was flushed already.
        if self.at + 1 != start || self.word.chars != 0 {
            wp.ids_until(self.text, &mut self.at, start, &mut self.word, ids);
        }
        debug_assert!(self.word.chars == 0);
        self.at = start;
        if len > wp.max_chars_per_word {
            return;
        }
        match whole.or_else(|| wp.whole_word(key, len)) {
            Some(id) => ids.push(id),
            None => wp.short_ascii_word_ids(key, len, ids),
        }
        self.at = start + len;
    }

    /// Tokenises the rest of the text (up to `limit` ids in all) and leaves `ids` at most `limit` long.
    pub fn finish(mut self, ids: &mut Vec<u32>) {
        let end = self.text.len();
        if self.limit != usize::MAX && end - self.at > STRETCH {
            self.stretches(ids);
        }
        if ids.len() < self.limit {
            self.wp.ids_until(self.text, &mut self.at, end, &mut self.word, ids);
            self.wp.flush(&mut self.word, ids);
        }
        ids.truncate(self.limit);
    }

    /// Tokenises a long rest in stretches of about `STRETCH` bytes that end after a space (no word runs
    /// across), until `limit` ids are out or a stretch's worth is left: a long text stops soon after its
    /// `limit`th id without a test in the per-byte loop. Apart from `finish`'s own call, so that a short text
    /// (most) goes through one plain `ids_until` as an unlimited scan does.
    #[inline(never)]
    fn stretches(&mut self, ids: &mut Vec<u32>) {
        let bytes = self.text.as_bytes();
        let end = bytes.len();
        while ids.len() < self.limit && end - self.at > STRETCH {
            let from = self.at + STRETCH;
            let to = memchr::memchr(b' ', &bytes[from..]).map_or(end, |k| from + k + 1);
            self.wp.ids_until(self.text, &mut self.at, to, &mut self.word, ids);
        }
    }
}

impl WordPiece {
    /// Tokenises `text[*at..to]` into `ids`, `word` holding the word under way; `*at` ends at `to`. `to` is the
    /// text's end or follows a space (no word runs across it).
    #[inline(always)]
    fn ids_until(&self, text: &str, at: &mut usize, to: usize, word: &mut Word, ids: &mut Vec<u32>) {
        let bytes = text.as_bytes();
        debug_assert!(to == bytes.len() || bytes[to - 1] == b' ');
        let mut i = *at;
        while i < to {
            let b = bytes[i];
            if b < 0x80 {
                let class = ASCII_CLASS[usize::from(b)];
                if class == WORD && word.chars == 0 {
                    i = self.ascii_word(bytes, i, word, ids);
                    // Words separated by single spaces, one after the other (a space between whole words
                    // only ends a word that is already flushed).
                    while word.chars == 0
                        && i + 1 < to
                        && bytes[i] == b' '
                        && bytes[i + 1] < 0x80
                        && ASCII_CLASS[usize::from(bytes[i + 1])] == WORD
                    {
                        i = self.ascii_word(bytes, i + 1, word, ids);
                    }
                    continue;
                }
                match class {
                    WORD => self.push(word, b.to_ascii_lowercase()),
                    SPACE => self.flush(word, ids),
                    PUNCT => {
                        self.flush(word, ids);
                        ids.push(self.ascii_single[usize::from(b)]);
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            let Some(c) = text[i..].chars().next() else { break };
            i += c.len_utf8();
            self.non_ascii(c, word, ids);
        }
        *at = i;
    }

    /// The fast path for a word that starts with an ASCII letter or digit at `start`: when the whole word is
    /// an ASCII run that is a vocabulary piece, its id is looked up straight from the text (lower-cased
    /// inside the integer key, nothing copied). Otherwise the run goes into `word` for the general path.
    /// Returns where scanning resumes.
    #[inline(always)]
    fn ascii_word(&self, bytes: &[u8], start: usize, word: &mut Word, ids: &mut Vec<u32>) -> usize {
        // A run shorter than 16 bytes with 16 readable: its end, its key and what follows it from one load,
        // without a loop or a branch on its length.
        if let Some(chunk) = bytes.get(start..start + 16) {
            let mut w = [0u8; 16];
            w.copy_from_slice(chunk);
            let w = u128::from_le_bytes(w);
            let (alnum_lo, letters_lo) = alnum_and_letter_masks(w as u64);
            let (alnum_hi, letters_hi) = alnum_and_letter_masks((w >> 64) as u64);
            let alnum = u128::from(alnum_lo) | u128::from(alnum_hi) << 64;
            // Setting a letter's 0x20 bit lower-cases it (the letter lanes' high bits, shifted down to 0x20).
            let lower = w | (u128::from(letters_lo) | u128::from(letters_hi) << 64) >> 2;
            let others = !alnum & (u128::from(HIGH) << 64 | u128::from(HIGH));
            if others != 0 {
                let n = (others.trailing_zeros() / 8) as usize;
                let next = chunk[n];
                if next < 0x80 && matches!(ASCII_CLASS[usize::from(next)], SPACE | PUNCT) && n <= self.max_chars_per_word
                {
                    let key = loaded_key(lower, n);
                    let found = if n <= TINY_MAX {
                        self.tiny.get(key as u64 | (n as u64) << 56)
                    } else {
                        self.short.get(key)
                    };
                    match found {
                        Some(id) => ids.push(id),
                        None => self.short_ascii_word_ids(key, n, ids),
                    }
                    return start + n;
                }
                for &b in &chunk[..n] {
                    self.push(word, b.to_ascii_lowercase());
                }
                return start + n;
            }
        }
        let mut end = start + 1;
        // Eight bytes at a time while they are all ASCII letters or digits, then byte by byte.
        while let Some(chunk) = bytes.get(end..end + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let hits = alnum_mask(u64::from_le_bytes(w));
            if hits != HIGH {
                end += ((!hits & HIGH).trailing_zeros() / 8) as usize;
                break;
            }
            end += 8;
        }
        while end < bytes.len() && bytes[end] < 0x80 && ASCII_CLASS[usize::from(bytes[end])] == WORD {
            end += 1;
        }
        let run = &bytes[start..end];
        // The word ends here only if white space, punctuation or the text's end follows (a dropped control
        // char or a non-ASCII char may continue it).
        let ends = bytes
            .get(end)
            .is_none_or(|&n| n < 0x80 && matches!(ASCII_CLASS[usize::from(n)], SPACE | PUNCT));
        if ends && run.len() <= SHORT_MAX && run.len() <= self.max_chars_per_word {
            let key = lowercase_key(short_key_at(bytes, start, run.len()));
            let found = if run.len() <= TINY_MAX {
                self.tiny.get(key as u64 | (run.len() as u64) << 56)
            } else {
                self.short.get(key)
            };
            if let Some(id) = found {
                ids.push(id);
                return end;
            }
        }
        for &b in run {
            self.push(word, b.to_ascii_lowercase());
        }
        end
    }

    /// One non-ASCII char through clean_text, Chinese isolation, accent stripping, lowercasing and splitting.
    fn non_ascii(&self, c: char, word: &mut Word, ids: &mut Vec<u32>) {
        // clean_text: drop U+FFFD and control/format characters; white space ends the word.
        if c == '\u{fffd}' || is_control(c) {
            return;
        }
        if c.is_whitespace() {
            self.flush(word, ids);
            return;
        }
        if is_chinese_char(c) {
            self.flush(word, ids);
            self.push_char(word, c);
            self.flush(word, ids);
            return;
        }
        // strip_accents (NFD, drop non-spacing marks) then lowercase, as the normalizer does.
        for d in std::iter::once(c).nfd() {
            if d.is_mark_nonspacing() {
                continue;
            }
            for l in d.to_lowercase() {
                if l.is_whitespace() {
                    self.flush(word, ids);
                } else if is_punctuation(l) {
                    self.flush(word, ids);
                    self.push_char(word, l);
                    self.flush(word, ids);
                } else {
                    self.push_char(word, l);
                }
            }
        }
    }

    /// Adds one ASCII byte to the word; bytes past the char limit are only counted (the word is [UNK]).
    #[inline(always)]
    fn push(&self, word: &mut Word, b: u8) {
        word.chars += 1;
        if word.chars <= self.max_chars_per_word {
            word.bytes.push(b);
        }
    }

    fn push_char(&self, word: &mut Word, c: char) {
        word.chars += 1;
        if word.chars <= self.max_chars_per_word {
            let mut buf = [0u8; 4];
            word.bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }

    #[inline(always)]
    fn flush(&self, word: &mut Word, ids: &mut Vec<u32>) {
        if word.chars > 0 {
            self.word_ids(word, ids);
            word.bytes.clear();
            word.chars = 0;
        }
    }
}
