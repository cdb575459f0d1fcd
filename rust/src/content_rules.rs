//! Content rules: which named rules (keyword lists and regular expressions) fire on a text, in one pass.
//!
//! Pure: no I/O, no environment, no Python. Every rule becomes patterns of one multi-pattern regex (its
//! keywords as one whole-word, ASCII case-insensitive alternation; its regexes as written), built once and
//! run as one forward scan of the text that reports every pattern that matches anywhere.

use regex_automata::meta;
use regex_automata::{Input, MatchKind, PatternSet};
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
    matcher: Option<meta::Regex>,
    pattern_rule: Vec<usize>,
}

/// A keyword as a pattern: literal, ASCII case-insensitive, with an ASCII word boundary on each edge
/// that is a word character (so `c++` or `.net` still match where they stand).
fn keyword_pattern(word: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let first = word.chars().next().is_some_and(is_word);
    let last = word.chars().next_back().is_some_and(is_word);
    format!(
        "{}{}{}",
        if first { r"\b" } else { "" },
        regex_syntax::escape(word),
        if last { r"\b" } else { "" }
    )
}

impl ContentRules {
    /// Compiles `rules` (index = rule id). Empty keywords are refused; regexes use the `regex` crate syntax.
    pub fn new(rules: &[RuleSpec]) -> Result<Self, RuleError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_rule = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let mut words = Vec::with_capacity(rule.keywords.len());
            for (k, word) in rule.keywords.iter().enumerate() {
                let trimmed = word.trim();
                if trimmed.is_empty() {
                    return Err(RuleError(format!("rule {i}: keyword {k} is empty")));
                }
                words.push(keyword_pattern(trimmed));
            }
            if !words.is_empty() {
                patterns.push(format!("(?i-u:{})", words.join("|")));
                pattern_rule.push(i);
            }
            for (k, pattern) in rule.regexes.iter().enumerate() {
                if let Err(e) = regex::Regex::new(pattern) {
                    return Err(RuleError(format!("rule {i}: regex {k}: {e}")));
                }
                patterns.push(pattern.clone());
                pattern_rule.push(i);
            }
        }
        let matcher = if patterns.is_empty() {
            None
        } else {
            // One lazy-DFA scan for every pattern. No literal prefilter: with hundreds of patterns the
            // extracted literal sets are large and hit often, which made scans several times slower.
            let config = meta::Config::new()
                .match_kind(MatchKind::All)
                .auto_prefilter(false)
                .nfa_size_limit(Some(64 << 20))
                .hybrid_cache_capacity(16 << 20);
            Some(
                meta::Builder::new()
                    .configure(config)
                    .build_many(&patterns)
                    .map_err(|e| RuleError(format!("rules: {e}")))?,
            )
        };
        Ok(ContentRules {
            rules: rules.len(),
            matcher,
            pattern_rule,
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
        let Some(matcher) = &self.matcher else {
            return Vec::new();
        };
        let mut set = PatternSet::new(matcher.pattern_len());
        matcher.which_overlapping_matches(&Input::new(text), &mut set);
        let mut fired: Vec<usize> = set.iter().map(|p| self.pattern_rule[p.as_usize()]).collect();
        fired.dedup(); // patterns of one rule are adjacent, so equal ids are neighbours
        fired
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
        let r = ContentRules::new(&[spec(&["café"], &[]), spec(&["ok"], &[]), spec(&["c++", ".net"], &[])]).unwrap();
        assert_eq!(r.scan("un CAFÉ noir"), Vec::<usize>::new()); // case-insensitive for ASCII letters only
        assert_eq!(r.scan("un Café noir"), vec![0]);
        assert_eq!(r.scan("→ ok ←"), vec![1]);
        assert_eq!(r.scan("okay"), Vec::<usize>::new());
        assert_eq!(r.scan("C++ and .NET"), vec![2]);
        assert_eq!(r.scan("so a.network"), Vec::<usize>::new());
    }

    #[test]
    fn keyword_metacharacters_are_literal() {
        let r = ContentRules::new(&[spec(&["a.b", "(x)"], &[])]).unwrap();
        assert_eq!(r.scan("axb"), Vec::<usize>::new());
        assert_eq!(r.scan("see a.b"), vec![0]);
        assert_eq!(r.scan("see (x) here"), vec![0]);
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
