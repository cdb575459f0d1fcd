//! The verifier's word tables (number words, negations, polarity, directional words, stop words).

use std::sync::LazyLock;

use rustc_hash::FxHashMap;

use super::words::hash_packed;

pub(super) const UNITS: &[(&str, u64)] = &[
    ("zero", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
];
pub(super) const TENS: &[(&str, u64)] = &[
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
];
pub(super) const SCALES: &[(&str, u64)] = &[
    ("hundred", 100),
    ("thousand", 1000),
    ("million", 1_000_000),
    ("billion", 1_000_000_000),
    ("trillion", 1_000_000_000_000),
];
pub(super) const ORDINALS: &[(&str, f64)] = &[
    ("first", 1.0),
    ("second", 2.0),
    ("third", 3.0),
    ("fourth", 4.0),
    ("fifth", 5.0),
    ("sixth", 6.0),
    ("seventh", 7.0),
    ("eighth", 8.0),
    ("ninth", 9.0),
    ("tenth", 10.0),
    ("eleventh", 11.0),
    ("twelfth", 12.0),
    ("twentieth", 20.0),
    ("hundredth", 100.0),
];
pub(super) const SPECIAL: &[(&str, f64)] = &[
    ("half", 0.5),
    ("quarter", 0.25),
    ("third", 1.0 / 3.0),
    ("dozen", 12.0),
    ("twice", 2.0),
    ("double", 2.0),
    ("thrice", 3.0),
    ("triple", 3.0),
    ("once", 1.0),
    ("pair", 2.0),
    ("couple", 2.0),
    ("score", 20.0),
];
pub(super) const NEGATIONS: &[&str] = &[
    "not",
    "no",
    "never",
    "none",
    "nothing",
    "nobody",
    "nowhere",
    "neither",
    "nor",
    "without",
    "cannot",
    "except",
    "excluding",
    "unless",
    "hardly",
    "barely",
];
pub(super) const POLARITY: &[&str] = &[
    "most",
    "least",
    "more",
    "less",
    "fewer",
    "greater",
    "smaller",
    "larger",
    "largest",
    "smallest",
    "highest",
    "lowest",
    "maximum",
    "minimum",
    "max",
    "min",
    "true",
    "false",
    "correct",
    "incorrect",
    "wrong",
    "right",
    "increase",
    "decrease",
    "before",
    "after",
    "above",
    "below",
    "first",
    "last",
    "best",
    "worst",
    "earliest",
    "latest",
    "positive",
    "negative",
    "always",
    "sometimes",
    "all",
    "any",
    "only",
    "odd",
    "even",
    "higher",
    "lower",
    "longest",
    "shortest",
    "faster",
    "slower",
    "older",
    "younger",
    "add",
    "subtract",
    "multiply",
    "divide",
    "plus",
    "minus",
    "times",
    "sum",
    "difference",
    "product",
    "quotient",
    "inside",
    "outside",
    "left",
    "up",
    "down",
    "north",
    "south",
    "east",
    "west",
];
pub(super) const DIRECTIONAL: &[&str] = &[
    "to", "from", "into", "than", "vs", "versus", "over", "per", "minus", "by", "against",
    "toward", "towards", "between", "and", "or", "divided", "before", "after",
];
pub(super) const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "of",
    "in",
    "on",
    "at",
    "for",
    "to",
    "and",
    "or",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "with",
    "as",
    "by",
    "from",
    "do",
    "does",
    "did",
    "what",
    "which",
    "who",
    "whom",
    "how",
    "why",
    "when",
    "where",
    "there",
    "their",
    "they",
    "them",
    "i",
    "me",
    "my",
    "we",
    "our",
    "you",
    "your",
    "he",
    "she",
    "his",
    "her",
    "s",
    "about",
    "into",
    "than",
    "so",
    "if",
    "then",
    "can",
    "could",
    "would",
    "should",
    "will",
    "shall",
    "may",
    "might",
    "must",
    "have",
    "has",
    "had",
    "please",
    "kindly",
    "tell",
    "explain",
    "give",
    "know",
    "want",
    "like",
    "need",
    "help",
    "hi",
    "hey",
    "hello",
    "thanks",
    "thank",
    "just",
    "also",
    "some",
    "us",
    "let",
    "lets",
    "describe",
    "briefly",
    "quick",
    "quickly",
    "question",
    "answer",
    "user",
    "system",
    "assistant",
    "whats",
    "mean",
    "means",
    "meaning",
    "define",
    "definition",
    "show",
    "provide",
    "write",
    "make",
    "get",
    "use",
    "used",
];

/// Word classes (bit flags): a token is looked up once and tested against every list.
pub(super) const NEGATION_OR_POLARITY: u8 = 1;
pub(super) const DIRECTION: u8 = 2;
pub(super) const STOPWORD: u8 = 4;
pub(super) const NUMBER_WORD: u8 = 8;

/// Distinct negation and polarity words the tables can hold: a signature counts each in its own slot.
pub(super) const POLARITY_SLOTS: usize = 128;

/// Slots of the word table (a power of two, over three times the words, so most probes end at once).
const TABLE_SLOTS: usize = 1024;

/// Word lists as one table from word to its classes, built once (immutable tables, not state).
pub(super) struct Lexicon {
    /// The tables' words and their classes (the tests check `classify` against it).
    #[cfg(test)]
    classes: FxHashMap<&'static str, u8>,
    /// Open addressing by the top bits of the word's `hash_packed` (every word of the tables has at most
    /// 16 letters and is packed): a token's hash, which its signature keeps anyway, finds its slot, and
    /// one comparison of packed words tells. Keys are 0 in empty slots (no token is empty).
    keys: Box<[u128]>,
    /// Per slot: the word, its classes and, for a negation or polarity word, its `POLARITY_SLOTS` index.
    entries: Box<[(&'static str, u8, u8)]>,
    /// The negation and polarity words by their index.
    #[cfg(test)]
    pub(super) polarity_words: Vec<&'static str>,
    /// Indexed by the low five bits of a word's first two letters (0: no second letter), bit `n` set when
    /// a number word (or "and") starting with them has `n` letters: most words are ruled out without
    /// hashing them ("the", "for", "on" and "an" too).
    number_shapes: [u16; 32 * 32],
}

pub(super) static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| {
    let mut classes: FxHashMap<&'static str, u8> = FxHashMap::default();
    let mut order: Vec<&'static str> = Vec::new();
    let mut add = |words: &[&'static str], class: u8| {
        for w in words {
            let c = classes.entry(w).or_insert_with(|| {
                order.push(w);
                0
            });
            *c |= class;
        }
    };
    add(NEGATIONS, NEGATION_OR_POLARITY);
    add(POLARITY, NEGATION_OR_POLARITY);
    add(DIRECTIONAL, DIRECTION);
    add(STOPWORDS, STOPWORD);
    add(&["a"], NUMBER_WORD);
    for table in [UNITS, TENS, SCALES] {
        add(&table.iter().map(|p| p.0).collect::<Vec<_>>(), NUMBER_WORD);
    }
    for table in [ORDINALS, SPECIAL] {
        add(&table.iter().map(|p| p.0).collect::<Vec<_>>(), NUMBER_WORD);
    }
    let mut number_shapes = [0u16; 32 * 32];
    let mut keys = vec![0u128; TABLE_SLOTS].into_boxed_slice();
    let mut entries = vec![("", 0u8, 0u8); TABLE_SLOTS].into_boxed_slice();
    let mut polarity_words: Vec<&'static str> = Vec::new();
    for w in order {
        let class = classes[w];
        let b = w.as_bytes();
        if class & NUMBER_WORD != 0 || w == "and" {
            number_shapes[shape_slot(b[0], b.get(1).copied().unwrap_or(0))] |= 1 << w.len();
        }
        let mut polarity = 0;
        if class & NEGATION_OR_POLARITY != 0 {
            polarity = polarity_words.len() as u8;
            polarity_words.push(w);
        }
        let Some(p) = packed(b) else { continue };
        let mut slot = table_slot(hash_packed(p));
        while keys[slot] != 0 {
            slot = (slot + 1) % TABLE_SLOTS;
        }
        keys[slot] = p;
        entries[slot] = (w, class, polarity);
    }
    assert!(polarity_words.len() <= POLARITY_SLOTS);
    Lexicon {
        #[cfg(test)]
        classes,
        keys,
        entries,
        #[cfg(test)]
        polarity_words,
        number_shapes,
    }
});

fn table_slot(hash: u64) -> usize {
    (hash >> (64 - TABLE_SLOTS.trailing_zeros())) as usize
}

impl Lexicon {
    /// The word as stored in the tables and its classes; `("", 0)` for other words.
    #[cfg(test)]
    pub(super) fn classify(&self, w: &str) -> (&'static str, u8) {
        // No NUL in words, so packing is one-to-one; a word too long to pack is in no table.
        packed(w.as_bytes()).map_or(("", 0), |p| self.classify_packed(p))
    }

    /// `classify` of a word given `packed`.
    pub(super) fn classify_packed(&self, p: u128) -> (&'static str, u8) {
        let (word, class, _) = self.classify_hashed(p, hash_packed(p));
        (word, class)
    }

    /// `classify` of a non-empty word given `packed` and its `hash_packed`, with its polarity index.
    #[inline]
    pub(super) fn classify_hashed(&self, p: u128, hash: u64) -> (&'static str, u8, u8) {
        let mut slot = table_slot(hash);
        loop {
            let key = self.keys[slot];
            if key == p {
                return self.entries[slot];
            }
            if key == 0 {
                return ("", 0, 0);
            }
            slot = (slot + 1) % TABLE_SLOTS;
        }
    }

    /// False when no number word (nor "and") has `len` letters and starts with `first` and `second`
    /// (ASCII letters, either case; `second` is 0 for a one-letter word).
    #[inline]
    pub(super) fn may_be_number_word(&self, first: u8, second: u8, len: usize) -> bool {
        len < 16 && self.number_shapes[shape_slot(first, second)] & (1 << len) != 0
    }

    /// The word as stored in the tables when it is a number word (or "and", which joins them); `""`
    /// for every other word. Callers check `may_be_number_word` first (most words need no hashing).
    pub(super) fn number_key(&self, packed: u128) -> &'static str {
        match self.classify_packed(packed) {
            (k, c) if c & NUMBER_WORD != 0 || k == "and" => k,
            _ => "",
        }
    }
}

/// The `number_shapes` slot of a word's first two letters (ASCII letters of either case; `second` 0:
/// none): their low five bits, which are 1 to 26 for a letter and the same for both cases.
#[inline]
fn shape_slot(first: u8, second: u8) -> usize {
    ((first & 31) as usize) << 5 | (second & 31) as usize
}

/// Per length up to 16: the bytes a packed word of that length keeps.
pub(super) const KEEP: [u128; 17] = {
    let mut keep = [0u128; 17];
    let mut n = 1;
    while n <= 16 {
        keep[n] = if n == 16 { u128::MAX } else { (1u128 << (8 * n)) - 1 };
        n += 1;
    }
    keep
};

/// Up to 16 bytes as one integer (zero-padded), `None` for longer words.
///
/// Built from loads of the word itself: copying it into a zeroed array first made the CPU wait for the
/// byte stores before it could read the array back as one number.
pub(super) fn packed(w: &[u8]) -> Option<u128> {
    match w.len() {
        0..=8 => Some(packed_short(w) as u128),
        9..=16 => {
            let (lo, hi) = w.split_at(8);
            let lo = u64::from_le_bytes(lo.try_into().unwrap_or_default());
            Some(lo as u128 | (packed_short(hi) as u128) << 64)
        }
        _ => None,
    }
}

/// Up to 8 bytes as one integer (zero-padded): two loads that may overlap (the bytes they share are the
/// same, so or-ing them is exact).
fn packed_short(w: &[u8]) -> u64 {
    let n = w.len();
    if n >= 4 {
        let a = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as u64;
        let b = u32::from_le_bytes([w[n - 4], w[n - 3], w[n - 2], w[n - 1]]) as u64;
        a | b << (8 * (n - 4))
    } else if n > 0 {
        w[0] as u64 | (w[n / 2] as u64) << (8 * (n / 2)) | (w[n - 1] as u64) << (8 * (n - 1))
    } else {
        0
    }
}

pub(super) fn lookup<T: Copy>(table: &[(&str, T)], w: &str) -> Option<T> {
    table.iter().find(|(k, _)| *k == w).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_equals_the_zero_padded_bytes() {
        let word = b"abcdefghijklmnopq";
        for n in 0..=word.len() {
            let expected = (n <= 16).then(|| {
                let mut b = [0u8; 16];
                b[..n].copy_from_slice(&word[..n]);
                u128::from_le_bytes(b)
            });
            assert_eq!(packed(&word[..n]), expected, "{n}");
        }
    }

    #[test]
    fn packed_lookup_equals_the_string_map() {
        // Every word of the tables is packable, so `classify` finds all of them.
        assert_eq!(LEXICON.keys.iter().filter(|&&k| k != 0).count(), LEXICON.classes.len());
        let mut words: Vec<String> = LEXICON.classes.keys().map(|w| w.to_string()).collect();
        for w in LEXICON.classes.keys() {
            words.push(format!("{w}s"));
            words.push(w[..w.len() - 1].to_string());
            words.push(w.to_ascii_uppercase());
        }
        words
            .extend(["", "zebra", "12", "abcdefghijklmnop", "abcdefghijklmnopq"].map(String::from));
        for w in &words {
            let expected = match LEXICON.classes.get_key_value(w.as_str()) {
                Some((k, c)) => (*k, *c),
                None => ("", 0),
            };
            assert_eq!(LEXICON.classify(w), expected, "{w}");
            let number = match expected {
                (k, c) if c & NUMBER_WORD != 0 || k == "and" => k,
                _ => "",
            };
            if let Some(p) = packed(w.as_bytes()) {
                assert_eq!(LEXICON.number_key(p), number, "{w}");
            }
        }
    }
}
