//! Content rules: which named rules (keyword lists and regular expressions) fire on a text, in one pass.
//!
//! Pure: no I/O, no environment, no Python. Every rule's keywords go into one Aho-Corasick automaton
//! (ASCII case-insensitive, whole words) and every rule's regexes into one `RegexSet`, both built once.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::{RegexSet, RegexSetBuilder};
use std::fmt;

/// One rule's definition: its keywords (whole-word, ASCII case-insensitive) and regexes (as written).
#[derive(Debug, Clone, Default)]
pub struct RuleSpec {
    pub keywords: Vec<String>,
    pub regexes: Vec<String>,
}

/// A rule could not be compiled (names the rule's position and the pattern's problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(pub String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

/// All rules compiled together; `scan` says which fire on a text.
pub struct ContentRules {
    rules: usize,
    keywords: Option<AhoCorasick>,
    keyword_rule: Vec<usize>,
    regexes: Option<RegexSet>,
    regex_rule: Vec<usize>,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

impl ContentRules {
    /// Compiles `rules` (index = rule id). Empty keywords are refused; regexes use the `regex` crate syntax.
    pub fn new(rules: &[RuleSpec]) -> Result<Self, RuleError> {
        let mut words: Vec<String> = Vec::new();
        let mut keyword_rule = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut regex_rule = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            for (k, word) in rule.keywords.iter().enumerate() {
                let trimmed = word.trim();
                if trimmed.is_empty() {
                    return Err(RuleError(format!("rule {i}: keyword {k} is empty")));
                }
                words.push(trimmed.to_string());
                keyword_rule.push(i);
            }
            for (k, pattern) in rule.regexes.iter().enumerate() {
                if let Err(e) = regex::Regex::new(pattern) {
                    return Err(RuleError(format!("rule {i}: regex {k}: {e}")));
                }
                patterns.push(pattern.clone());
                regex_rule.push(i);
            }
        }
        let keywords = if words.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    // A full DFA: a few hundred KB for hundreds of keywords, and one table lookup per byte.
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&words)
                    .map_err(|e| RuleError(format!("keywords: {e}")))?,
            )
        };
        let regexes = if patterns.is_empty() {
            None
        } else {
            Some(
                RegexSetBuilder::new(&patterns)
                    .size_limit(64 << 20)
                    .dfa_size_limit(16 << 20)
                    .build()
                    .map_err(|e| RuleError(format!("regexes: {e}")))?,
            )
        };
        Ok(ContentRules {
            rules: rules.len(),
            keywords,
            keyword_rule,
            regexes,
            regex_rule,
        })
    }

    /// How many rules were compiled.
    pub fn len(&self) -> usize {
        self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules == 0
    }

    /// The ids of the rules that fire on `text`, ascending, each once.
    pub fn scan(&self, text: &str) -> Vec<usize> {
        let mut fired = vec![false; self.rules];
        let bytes = text.as_bytes();
        if let Some(ac) = &self.keywords {
            for m in ac.find_overlapping_iter(text) {
                let rule = self.keyword_rule[m.pattern().as_usize()];
                if fired[rule] {
                    continue;
                }
                let (s, e) = (m.start(), m.end());
                // Whole words only: a word-character edge of the keyword must not touch another one.
                let starts_ok = s == 0 || !is_word_byte(bytes[s]) || !is_word_byte(bytes[s - 1]);
                let ends_ok = e == bytes.len() || !is_word_byte(bytes[e - 1]) || !is_word_byte(bytes[e]);
                if starts_ok && ends_ok {
                    fired[rule] = true;
                }
            }
        }
        if let Some(set) = &self.regexes {
            for p in set.matches(text).iter() {
                fired[self.regex_rule[p]] = true;
            }
        }
        fired
            .iter()
            .enumerate()
            .filter_map(|(i, &f)| f.then_some(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(keywords: &[&str], regexes: &[&str]) -> RuleSpec {
        RuleSpec {
            keywords: keywords.iter().map(|s| s.to_string()).collect(),
            regexes: regexes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn keywords_are_whole_words_and_case_insensitive() {
        let r = ContentRules::new(&[spec(&["diagnosis"], &[]), spec(&["lawsuit", "sue"], &[])]).unwrap();
        assert_eq!(r.scan("My DIAGNOSIS is..."), vec![0]);
        assert_eq!(r.scan("pursue the issue"), Vec::<usize>::new());
        assert_eq!(r.scan("Can I sue them?"), vec![1]);
        assert_eq!(r.scan("diagnosis_code and lawsuits"), Vec::<usize>::new());
        assert_eq!(r.scan("lawsuit; diagnosis"), vec![0, 1]);
    }

    #[test]
    fn overlapping_keywords_of_different_rules_both_fire() {
        let r = ContentRules::new(&[spec(&["tax"], &[]), spec(&["tax return"], &[])]).unwrap();
        assert_eq!(r.scan("my tax return"), vec![0, 1]);
        assert_eq!(r.scan("my tax"), vec![0]);
    }

    #[test]
    fn regexes_fire_their_rule() {
        let r = ContentRules::new(&[spec(&[], &[r"\bICD-10\b"]), spec(&["x"], &[r"(?i)project\s+falcon"])]).unwrap();
        assert_eq!(r.scan("code ICD-10 here"), vec![0]);
        assert_eq!(r.scan("about Project  FALCON"), vec![1]);
        assert_eq!(r.scan("nothing"), Vec::<usize>::new());
    }

    #[test]
    fn non_ascii_text_and_keywords() {
        let r = ContentRules::new(&[spec(&["café"], &[]), spec(&["ok"], &[])]).unwrap();
        assert_eq!(r.scan("un café noir"), vec![0]);
        assert_eq!(r.scan("éok"), Vec::<usize>::new());
        assert_eq!(r.scan("→ ok ←"), vec![1]);
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(ContentRules::new(&[spec(&[], &["("])]).is_err());
        assert!(ContentRules::new(&[spec(&[" "], &[])]).is_err());
        let empty = ContentRules::new(&[]).unwrap();
        assert!(empty.is_empty());
        assert!(empty.scan("anything").is_empty());
    }
}
