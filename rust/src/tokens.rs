//! Exact token counts for OpenAI's cl100k_base and o200k_base encodings, and an estimate for other models.
//!
//! Pure: the BPE rank tables are compiled in from `rust/data/*.ranks` (written from tiktoken's published
//! rank files by `rust/data/make_rank_tables.py`, SHA-256 checked); nothing is read or downloaded at run
//! time. Counts equal tiktoken's `encode_ordinary` (special-token text such as `<|endoftext|>` counts as
//! ordinary text); chat-format overhead is not added here.

mod chunk;
mod flat_map;
mod pretokenize;

pub(crate) use chunk::Chunk;
pub(crate) use flat_map::FlatMap;

pub(crate) use pretokenize::ascii_range_mask;
use pretokenize::{cl100k_ascii_word, Pattern, Pieces};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;

/// Pieces longer than this merge with a heap (O(n log n)) instead of tiktoken's O(n^2) scan.
const HEAP_MERGE_MIN_LEN: usize = 128;

/// A supported tiktoken encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncodingName {
    Cl100kBase,
    O200kBase,
}

impl EncodingName {
    /// Parses `"cl100k_base"` or `"o200k_base"`.
    pub fn parse(name: &str) -> Result<EncodingName, String> {
        match name {
            "cl100k_base" => Ok(EncodingName::Cl100kBase),
            "o200k_base" => Ok(EncodingName::O200kBase),
            other => Err(format!(
                "unknown encoding {other:?}; expected \"cl100k_base\" or \"o200k_base\""
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EncodingName::Cl100kBase => "cl100k_base",
            EncodingName::O200kBase => "o200k_base",
        }
    }
}

/// A BPE vocabulary (token bytes -> rank) with its pre-tokenizer.
pub struct Encoding {
    name: EncodingName,
    pattern: Pattern,
    /// Tokens of at most `SHORT_MAX` bytes, keyed by `short_key` (integer compare, no memcmp); a flat table,
    /// so a hit is one memory access (most lookups miss L1: the vocabulary is large).
    short: FlatMap<u128, u32>,
    /// Longer tokens.
    long: FxHashMap<&'static [u8], u32>,
}

/// Longest token kept in the integer-keyed map.
pub(crate) const SHORT_MAX: usize = 15;

/// `short_key` of the ASCII-lower-cased bytes, from the key of ASCII bytes (the length byte, <= 15, and the
/// zero padding are not letters and stay as they are).
#[inline(always)]
pub(crate) fn lowercase_key(key: u128) -> u128 {
    u128::from(ascii_lowercase_lanes(key as u64)) | u128::from(ascii_lowercase_lanes((key >> 64) as u64)) << 64
}

/// ASCII lower-casing of eight ASCII bytes at once (every byte < 0x80, so no addition carries into the
/// next byte).
#[inline(always)]
pub(crate) fn ascii_lowercase_lanes(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let at_least_a = x + (0x80 - u64::from(b'A')) * ONES;
    let above_z = x + (0x80 - u64::from(b'Z') - 1) * ONES;
    x | ((at_least_a & !above_z & HIGH) >> 2)
}

/// The bytes (at most 15) zero-padded little-endian, with the length in the top byte: one u128 per
/// distinct byte string. Built from overlapping unaligned loads rather than a byte copy.
#[inline(always)]
pub(crate) fn short_key(b: &[u8]) -> u128 {
    let n = b.len();
    let word = |at: usize| -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |at: usize| -> u64 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[at..at + 4]);
        u32::from_le_bytes(w) as u64
    };
    let (lo, hi) = if n >= 8 {
        let hi = if n == 8 { 0 } else { word(n - 8) >> (8 * (16 - n)) };
        (word(0), hi)
    } else if n >= 4 {
        (half(0) | ((half(n - 4) >> (8 * (8 - n))) << 32), 0)
    } else {
        let mut lo = 0u64;
        for (k, &byte) in b.iter().enumerate() {
            lo |= (byte as u64) << (8 * k);
        }
        (lo, 0)
    };
    lo as u128 | (hi as u128) << 64 | (n as u128) << 120
}

/// Number of tokens of at most `SHORT_MAX` bytes in a rank table (see `Encoding::from_table`).
fn short_tokens(table: &[u8]) -> usize {
    let (mut pos, mut n) = (0, 0);
    while let Some(&len) = table.get(pos) {
        n += usize::from(usize::from(len) <= SHORT_MAX);
        pos += 1 + usize::from(len);
    }
    n
}

/// `short_key` of the first `n` (<= 15) bytes of a little-endian 16-byte load `w`: its other lanes masked
/// off, the length in the top byte.
#[inline(always)]
pub(crate) fn loaded_key(w: u128, n: usize) -> u128 {
    debug_assert!(n <= SHORT_MAX);
    (w & ((1u128 << (8 * n)) - 1)) | (n as u128) << 120
}

/// `short_key(&text[start..start + n])` (`n` <= 15) without a branch on `n` when 16 bytes of `text` are
/// readable from `start`: one load, masked to `n` bytes (word lengths vary too much to predict).
#[inline(always)]
pub(crate) fn short_key_at(text: &[u8], start: usize, n: usize) -> u128 {
    debug_assert!(n <= SHORT_MAX);
    match text.get(start..start + 16) {
        Some(chunk) => {
            let mut w = [0u8; 16];
            w.copy_from_slice(chunk);
            loaded_key(u128::from_le_bytes(w), n)
        }
        None => short_key(&text[start..start + n]),
    }
}

impl Encoding {
    /// The encoding's tables, built from the compiled-in rank data on first use (~10-30 ms) and shared,
    /// immutable, by every caller and thread afterwards.
    pub fn get(name: EncodingName) -> &'static Encoding {
        static CL100K: OnceLock<Encoding> = OnceLock::new();
        static O200K: OnceLock<Encoding> = OnceLock::new();
        match name {
            EncodingName::Cl100kBase => CL100K.get_or_init(|| {
                Encoding::from_table(name, Pattern::Cl100k, include_bytes!("../data/cl100k_base.ranks"))
            }),
            EncodingName::O200kBase => O200K
                .get_or_init(|| Encoding::from_table(name, Pattern::O200k, include_bytes!("../data/o200k_base.ranks"))),
        }
    }

    /// Parses a rank table: for rank 0, 1, 2, ...: one length byte, then the token's bytes.
    fn from_table(name: EncodingName, pattern: Pattern, table: &'static [u8]) -> Encoding {
        // Dense: 131,072 slots (4 MB) for cl100k's ~99,000 short tokens, as hashbrown took.
        let mut short = FlatMap::dense(short_tokens(table));
        let mut long = FxHashMap::default();
        let mut pos = 0;
        let mut rank = 0u32;
        while pos < table.len() {
            let len = table[pos] as usize;
            let Some(token) = table.get(pos + 1..pos + 1 + len) else {
                break;
            };
            if len <= SHORT_MAX {
                short.insert(short_key(token), rank);
            } else {
                long.insert(token, rank);
            }
            pos += 1 + len;
            rank += 1;
        }
        Encoding {
            name,
            pattern,
            short,
            long,
        }
    }

    pub fn name(&self) -> EncodingName {
        self.name
    }

    /// The `short_key` of every token of at most `SHORT_MAX` bytes.
    pub(crate) fn short_token_keys(&self) -> impl Iterator<Item = u128> + '_ {
        self.short.iter().map(|(key, _)| key)
    }

    /// Number of tokens in the vocabulary (special tokens excluded).
    pub fn vocab_size(&self) -> usize {
        self.short.len() + self.long.len()
    }

    /// Exact number of tokens tiktoken's `encode_ordinary(text)` returns.
    pub fn count(&self, text: &str) -> usize {
        self.count_with(text, |_, _, _, _, _| false)
    }

    /// `count`, also handing every piece that is one space and a run of ASCII letters (most cl100k pieces) to
    /// `spaced_word(start, len, letters, lower, piece)`: where the letters start, how many there are, their
    /// bytes (little-endian, zero-padded), the `short_key` of the letters lower-cased and the piece's own
    /// `short_key` (the space included). It returns true when it knows the piece to be one token (the count
    /// then skips its own lookup). `Analyzer::analyze` counts and tokenises those words for the features and
    /// the embedding from here instead of finding them again. o200k pieces are not handed over.
    #[inline(always)]
    pub fn count_with(&self, text: &str, mut spaced_word: impl FnMut(usize, usize, u128, u128, u128) -> bool) -> usize {
        let bytes = text.as_bytes();
        let mut pieces = Pieces::new(text, self.pattern);
        let mut total = 0;
        if pieces.pattern() == Pattern::Cl100k {
            // Words (most pieces) split and keyed from one load; the general scanner takes the rest.
            loop {
                let at = pieces.pos();
                if let Some((n, key, spaced)) = cl100k_ascii_word(bytes, at) {
                    // A letter piece with a space first (n >= 2).
                    if spaced {
                        // The key without its space and its length byte (constant shifts: a mask of `n - 1`
                        // lanes is a dozen instructions on u128).
                        let letters = (key << 8) >> 16;
                        // Every byte after the space is an ASCII letter, which has its 0x40 bit set: moved down
                        // to 0x20, that bit lower-cases the letter (zero lanes stay zero).
                        let lower = letters | ((letters >> 1) & 0x2020_2020_2020_2020_2020_2020_2020_2020);
                        if spaced_word(at + 1, n - 1, letters, lower | ((n - 1) as u128) << 120, key) {
                            total += 1;
                            pieces.resume_at(at + n);
                            continue;
                        }
                    }
                    total += self.count_keyed(key, &bytes[at..at + n]);
                    pieces.resume_at(at + n);
                    continue;
                }
                let Some((start, end)) = pieces.next_range() else {
                    return total;
                };
                total += self.count_range(bytes, start, end);
            }
        }
        while let Some((start, end)) = pieces.next_range() {
            total += self.count_range(bytes, start, end);
        }
        total
    }

    /// Tokens of the piece `bytes[start..end]`.
    #[inline(always)]
    fn count_range(&self, bytes: &[u8], start: usize, end: usize) -> usize {
        let n = end - start;
        if n <= SHORT_MAX {
            // A key read straight from the text.
            self.count_keyed(short_key_at(bytes, start, n), &bytes[start..end])
        } else {
            self.count_piece(&bytes[start..end])
        }
    }

    /// Tokens of a piece of at most `SHORT_MAX` bytes whose `short_key` is `key`: most pieces are whole
    /// tokens, found by one lookup.
    #[inline(always)]
    fn count_keyed(&self, key: u128, piece: &[u8]) -> usize {
        if self.short.get(key).is_some() {
            1
        } else {
            self.merge_count_short(piece)
        }
    }

    /// `merge_scan(piece).len() - 1` for a piece of at most `SHORT_MAX` bytes: the same merges (lowest rank
    /// first, then leftmost) on fixed arrays, each part's key cut from the piece's bytes held as one integer.
    /// `merge_scan` allocated two vectors per piece and built every key byte by byte.
    #[inline(never)]
    fn merge_count_short(&self, piece: &[u8]) -> usize {
        let n = piece.len();
        if n <= 1 {
            return n;
        }
        let mut bytes = [0u8; 16];
        bytes[..n].copy_from_slice(&piece[..n.min(SHORT_MAX)]);
        let w = u128::from_le_bytes(bytes);
        // Rank of the bytes `a..b` (at most 15 of them), u32::MAX when they are no token.
        let rank = |a: u8, b: u8| -> u32 {
            let key = loaded_key(w >> (8 * u32::from(a)), usize::from(b - a));
            self.short.get(key).unwrap_or(u32::MAX)
        };
        // Part k covers `starts[k]..starts[k + 1]` (m parts); `ranks[k]` is the rank of parts k and k + 1 merged.
        let mut starts = [0u8; SHORT_MAX + 1];
        for (k, start) in starts.iter_mut().enumerate() {
            *start = k as u8;
        }
        let mut ranks = [u32::MAX; SHORT_MAX];
        // Indexed: the iterator form of this loop gave a call of 1.9k more instructions (callgrind, 500 tokens).
        #[allow(clippy::needless_range_loop)]
        for k in 0..n - 1 {
            ranks[k] = rank(k as u8, k as u8 + 2);
        }
        let mut m = n;
        loop {
            let (mut min, mut at) = (u32::MAX, 0);
            for (k, &r) in ranks[..m - 1].iter().enumerate() {
                if r < min {
                    (min, at) = (r, k);
                }
            }
            if min == u32::MAX {
                return m;
            }
            // Parts `at` and `at + 1` become one: the later starts and pair ranks move down a place.
            starts.copy_within(at + 2..=m, at + 1);
            ranks.copy_within(at + 2..(m - 1).max(at + 2), at + 1);
            m -= 1;
            ranks[at] = if at + 1 < m { rank(starts[at], starts[at + 2]) } else { u32::MAX };
            if at > 0 {
                ranks[at - 1] = rank(starts[at - 1], starts[at + 1]);
            }
        }
    }

    /// The pre-token pieces of `text` (tiktoken's regex split), for tests and debugging.
    pub fn pieces<'a>(&self, text: &'a str) -> Vec<&'a str> {
        Pieces::new(text, self.pattern).collect()
    }

    /// Token ids of `text` (tiktoken's `encode_ordinary`); slower than `count`, for tests and debugging.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for piece in Pieces::new(text, self.pattern) {
            let bytes = piece.as_bytes();
            let bounds = self.merge(bytes);
            out.extend(bounds.windows(2).filter_map(|w| self.rank(&bytes[w[0]..w[1]])));
        }
        out
    }

    #[inline]
    fn rank(&self, bytes: &[u8]) -> Option<u32> {
        if bytes.len() <= SHORT_MAX {
            self.short.get(short_key(bytes))
        } else {
            self.long.get(bytes).copied()
        }
    }

    #[inline]
    fn count_piece(&self, piece: &[u8]) -> usize {
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return piece.len().min(1);
        }
        self.merge(piece).len() - 1
    }

    /// Byte-pair merge of one piece; returns the token boundaries (first 0, last `piece.len()`).
    fn merge(&self, piece: &[u8]) -> Vec<usize> {
        if piece.len() >= HEAP_MERGE_MIN_LEN {
            self.merge_heap(piece)
        } else {
            self.merge_scan(piece)
        }
    }

    /// tiktoken's `byte_pair_merge`: repeatedly merge the lowest-ranked adjacent pair, leftmost first.
    fn merge_scan(&self, piece: &[u8]) -> Vec<usize> {
        let n = piece.len();
        if n < 2 {
            return (0..=n).collect();
        }
        // parts[i] = (start, rank of the pair starting at parts[i]).
        let mut parts: Vec<(usize, u32)> = Vec::with_capacity(n + 1);
        let mut min = (u32::MAX, usize::MAX);
        for i in 0..n - 1 {
            let r = self.rank(&piece[i..i + 2]).unwrap_or(u32::MAX);
            if r < min.0 {
                min = (r, i);
            }
            parts.push((i, r));
        }
        parts.push((n - 1, u32::MAX));
        parts.push((n, u32::MAX));
        let pair_rank = |parts: &[(usize, u32)], i: usize| -> u32 {
            if i + 3 < parts.len() {
                self.rank(&piece[parts[i].0..parts[i + 3].0]).unwrap_or(u32::MAX)
            } else {
                u32::MAX
            }
        };
        while min.0 != u32::MAX {
            let i = min.1;
            if i > 0 {
                parts[i - 1].1 = pair_rank(&parts, i - 1);
            }
            parts[i].1 = pair_rank(&parts, i);
            parts.remove(i + 1);
            min = (u32::MAX, usize::MAX);
            for (j, &(_, r)) in parts[..parts.len() - 1].iter().enumerate() {
                if r < min.0 {
                    min = (r, j);
                }
            }
        }
        parts.into_iter().map(|(start, _)| start).collect()
    }

    /// The same merges as `merge_scan` (lowest rank, then leftmost), found with a heap over a linked list
    /// so that very long pieces (whitespace or symbol runs) stay O(n log n).
    fn merge_heap(&self, piece: &[u8]) -> Vec<usize> {
        let n = piece.len();
        // Part i covers piece[start[i]..start[next[i]]]; parts are merged into their left neighbour.
        let start: Vec<usize> = (0..=n).collect();
        let mut next: Vec<usize> = (1..=n + 1).collect();
        let mut prev: Vec<usize> = (0..=n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n + 1];
        let mut version = vec![0u32; n + 1];
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<_>, left: usize, next: &[usize], version: &[u32]| {
            let right = next[left];
            if right >= n {
                return;
            }
            let end = start[next[right]];
            if let Some(r) = self.rank(&piece[start[left]..end]) {
                heap.push(Reverse((r, start[left], left, version[left], version[right])));
            }
        };
        for i in 0..n - 1 {
            push(&mut heap, i, &next, &version);
        }
        while let Some(Reverse((_, _, left, v_left, v_right))) = heap.pop() {
            let right = next[left];
            if !alive[left] || right >= n || version[left] != v_left || version[right] != v_right {
                continue;
            }
            alive[right] = false;
            next[left] = next[right];
            if next[left] <= n {
                prev[next[left]] = left;
            }
            version[left] += 1;
            push(&mut heap, left, &next, &version);
            let p = prev[left];
            if p != usize::MAX {
                push(&mut heap, p, &next, &version);
            }
        }
        let mut bounds = Vec::new();
        let mut i = 0;
        while i <= n {
            bounds.push(start[i]);
            i = next[i];
        }
        bounds
    }
}

/// Exact token count of `text` under `encoding`.
pub fn count(text: &str, encoding: EncodingName) -> usize {
    Encoding::get(encoding).count(text)
}

/// Estimated token count for a model family without a public tokenizer: `ceil(cl100k count * factor)`.
///
/// The factor is the caller's (the Python wrapper keeps the per-family table and says where each value
/// comes from); a factor that is not finite and positive is treated as 1.
pub fn estimate(text: &str, factor: f64) -> usize {
    let exact = count(text, EncodingName::Cl100kBase);
    let factor = if factor.is_finite() && factor > 0.0 {
        factor
    } else {
        1.0
    };
    (exact as f64 * factor).ceil() as usize
}

#[cfg(test)]
mod probes;
#[cfg(test)]
mod tests;
