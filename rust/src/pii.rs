//! One-pass PII scanner (e-mail, phone, card with Luhn, IBAN with mod-97, US SSN, IPv4/IPv6, API keys and
//! private keys, plus configured extra patterns) and redaction with typed placeholders.
//!
//! Pure: no I/O, no environment, no Python. All built-in kinds and extra patterns are one alternation
//! compiled once; each candidate is then checked by its kind's validator (Luhn, mod-97, octet ranges...).

use regex::{CaptureLocations, Regex, RegexBuilder};
use std::fmt;
use std::net::Ipv6Addr;

/// The built-in kinds, in priority order (earlier wins when two start at the same place).
pub const BUILTIN_KINDS: [&str; 8] = [
    "secret",
    "email",
    "iban",
    "credit_card",
    "ssn",
    "phone",
    "ipv6",
    "ipv4",
];

const B: &str = r"(?-u:\b)";

fn builtin_pattern(kind: &str) -> String {
    match kind {
        "secret" => [
            r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----(?s:.*?)-----END (?:[A-Z]+ )*PRIVATE KEY-----",
            r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----",
            &format!(r"{B}sk-(?:proj-|ant-|live-)?[A-Za-z0-9_\-]{{20,}}"),
            &format!(r"{B}(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{{16,}}"),
            &format!(r"{B}(?:AKIA|ASIA)[0-9A-Z]{{16}}{B}"),
            &format!(r"{B}gh[pousr]_[A-Za-z0-9]{{36,255}}"),
            &format!(r"{B}github_pat_[A-Za-z0-9_]{{22,255}}"),
            &format!(r"{B}xox[abposr]-[A-Za-z0-9\-]{{10,}}"),
            &format!(r"{B}AIza[0-9A-Za-z_\-]{{35}}"),
            &format!(
                r"{B}eyJ[A-Za-z0-9_\-]{{10,}}\.eyJ[A-Za-z0-9_\-]{{10,}}\.[A-Za-z0-9_\-]{{10,}}"
            ),
        ]
        .join("|"),
        "email" => format!(
            // Unicode letters allowed (internationalised addresses); no leading boundary needed: the
            // leftmost match already starts at the first character of the local part.
            r"[\w.%+\-]+@[\w](?:[\w\-]*[\w])?(?:\.[\w](?:[\w\-]*[\w])?)*\.\p{{L}}{{2,24}}{B}"
        ),
        "iban" => {
            format!(r"{B}[A-Z]{{2}}[0-9]{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,3}})?{B}")
        }
        "credit_card" => format!(
            r"{B}(?:[0-9]{{13,19}}|[0-9]{{4}}[ \-][0-9]{{4}}[ \-][0-9]{{4}}[ \-][0-9]{{1,7}}|[0-9]{{4}}[ \-][0-9]{{6}}[ \-][0-9]{{4,5}}){B}"
        ),
        "ssn" => format!(r"{B}[0-9]{{3}}-[0-9]{{2}}-[0-9]{{4}}{B}"),
        "phone" => [
            r"\+[0-9]{1,3}[ .\-]?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,4}(?:[ .\-]?[0-9]{2,4}){1,5}",
            &format!(r"(?:\([0-9]{{3}}\) ?|{B}[0-9]{{3}}[.\- ])[0-9]{{3}}[.\- ][0-9]{{4}}"),
        ]
        .join("|")
            + B,
        "ipv6" => [
            r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
            r"(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?",
            r"::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})",
        ]
        .iter()
        .map(|p| format!("{B}{p}"))
        .collect::<Vec<_>>()
        .join("|"),
        "ipv4" => format!(r"{B}(?:[0-9]{{1,3}}\.){{3}}[0-9]{{1,3}}{B}"),
        _ => unreachable!("unknown built-in kind"),
    }
}

/// A configured extra pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

/// One finding: byte span in the scanned text and the index of its kind in `PiiScanner::kinds()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub start: usize,
    pub end: usize,
    pub kind: usize,
}

pub struct PiiScanner {
    regex: Regex,
    kinds: Vec<String>,
    placeholders: Vec<String>,
    groups: Vec<usize>,
    builtin: usize,
}

impl PiiScanner {
    /// Built-in kinds plus `extra` (name, regex) patterns; names become kinds and `[NAME]` placeholders.
    pub fn new(extra: &[(String, String)]) -> Result<Self, PatternError> {
        let mut kinds: Vec<String> = BUILTIN_KINDS.iter().map(|k| k.to_string()).collect();
        let mut parts: Vec<String> = BUILTIN_KINDS
            .iter()
            .map(|k| format!("({})", builtin_pattern(k)))
            .collect();
        for (name, pattern) in extra {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(PatternError(format!(
                    "pattern name {name:?} must be letters, digits or '_'"
                )));
            }
            Regex::new(pattern)
                .map_err(|e| PatternError(format!("pattern {name:?} is invalid: {e}")))?;
            kinds.push(name.clone());
            parts.push(format!("({pattern})"));
        }
        // A roomier lazy-DFA cache: the union of all kinds is a large automaton, and a cache that keeps
        // filling up makes the regex engine give up on the DFA and fall back to a slower one.
        let regex = RegexBuilder::new(&parts.join("|"))
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|e| PatternError(format!("pattern set is invalid: {e}")))?;
        // Each kind is one outer group; groups inside extra patterns shift the numbering, so count them.
        let mut groups = Vec::with_capacity(parts.len());
        let mut next = 1;
        for part in &parts {
            groups.push(next);
            next += Regex::new(part).map(|r| r.captures_len() - 1).unwrap_or(1);
        }
        let placeholders = kinds
            .iter()
            .map(|k| format!("[{}]", k.to_ascii_uppercase()))
            .collect();
        Ok(Self {
            regex,
            kinds,
            placeholders,
            groups,
            builtin: BUILTIN_KINDS.len(),
        })
    }

    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    pub fn placeholder(&self, kind: usize) -> &str {
        &self.placeholders[kind]
    }

    /// Every validated finding, left to right, non-overlapping.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut locs = self.regex.capture_locations();
        let mut out = Vec::new();
        let mut at = 0;
        while at <= text.len() {
            let Some((start, end, kind)) = self.next_candidate(text, at, &mut locs) else {
                break;
            };
            if end > start && self.valid(kind, &text[start..end]) {
                out.push(Finding { start, end, kind });
                at = end;
            } else {
                at = next_char(text, start);
            }
        }
        out
    }

    fn next_candidate(
        &self,
        text: &str,
        at: usize,
        locs: &mut CaptureLocations,
    ) -> Option<(usize, usize, usize)> {
        let m = self.regex.captures_read_at(locs, text, at)?;
        let kind = self
            .groups
            .iter()
            .position(|&g| locs.get(g).is_some())
            .unwrap_or(0);
        Some((m.start(), m.end(), kind))
    }

    fn valid(&self, kind: usize, s: &str) -> bool {
        if kind >= self.builtin {
            return true;
        }
        match BUILTIN_KINDS[kind] {
            "credit_card" => valid_card(s),
            "iban" => valid_iban(s),
            "ssn" => valid_ssn(s),
            "phone" => {
                let digits = s.bytes().filter(u8::is_ascii_digit).count();
                (if s.starts_with('+') { 8..=15 } else { 10..=10 }).contains(&digits)
            }
            "ipv4" => s.split('.').all(|o| {
                o.parse::<u16>().is_ok_and(|v| v <= 255) && (o.len() == 1 || !o.starts_with('0'))
            }),
            "ipv6" => valid_ipv6(s),
            _ => true,
        }
    }

    /// `text` with every finding replaced by its placeholder, and the findings (spans in the input).
    pub fn redact(&self, text: &str) -> (String, Vec<Finding>) {
        let findings = self.scan(text);
        (self.replace(text, &findings), findings)
    }

    /// `text` with `findings` (from `scan(text)`) replaced by their placeholders.
    pub fn replace(&self, text: &str, findings: &[Finding]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for f in findings {
            out.push_str(&text[last..f.start]);
            out.push_str(&self.placeholders[f.kind]);
            last = f.end;
        }
        out.push_str(&text[last..]);
        out
    }
}

fn next_char(text: &str, i: usize) -> usize {
    let mut j = i + 1;
    while j < text.len() && !text.is_char_boundary(j) {
        j += 1;
    }
    j
}

/// A parseable IPv6 address with at least three groups, or two when one holds a digit (`fe80::1`), so
/// that `Foo::Bad` or `dead::beef` in code is not taken for an address.
pub fn valid_ipv6(s: &str) -> bool {
    let groups = s.split(':').filter(|g| !g.is_empty()).count();
    s.parse::<Ipv6Addr>().is_ok()
        && (groups >= 3 || (groups == 2 && s.bytes().any(|b| b.is_ascii_digit())))
}

/// Luhn checksum over the digits, 13-19 digits, a known issuer range, and one consistent separator.
pub fn valid_card(s: &str) -> bool {
    let digits: Vec<u32> = s
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .collect();
    if !(13..=19).contains(&digits.len()) || !(2..=6).contains(&digits[0]) {
        return false;
    }
    if s.contains(' ') && s.contains('-') {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616 mod-97 check (15-34 characters, spaces ignored).
pub fn valid_iban(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for &c in tail.iter().chain(head) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000.
pub fn valid_ssn(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3 {
        return false;
    }
    let area: u32 = parts[0].parse().unwrap_or(0);
    area != 0 && area != 666 && area < 900 && parts[1] != "00" && parts[2] != "0000"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_in(s: &PiiScanner, text: &str) -> Vec<String> {
        s.scan(text)
            .iter()
            .map(|f| s.kinds()[f.kind].clone())
            .collect()
    }

    #[test]
    fn finds_each_builtin_kind() {
        let s = PiiScanner::new(&[]).unwrap();
        let cases = [
            ("mail me at jane.doe+x@example.co.uk today", "email"),
            ("call +44 20 7946 0958 now", "phone"),
            ("call (415) 555-2671 now", "phone"),
            ("card 4111 1111 1111 1111 ok", "credit_card"),
            ("card 5500-0000-0000-0004 ok", "credit_card"),
            ("iban DE89 3704 0044 0532 0130 00 ok", "iban"),
            ("iban GB82WEST12345698765432 ok", "iban"),
            ("ssn 123-45-6789 ok", "ssn"),
            ("host 192.168.10.254 down", "ipv4"),
            ("host 2001:db8:85a3::8a2e:370:7334 down", "ipv6"),
            (
                "key sk-proj-abcdefghijklmnopqrstuvwxyz123456 leaked",
                "secret",
            ),
            ("aws AKIAIOSFODNN7EXAMPLE key", "secret"),
            (
                "gh ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ token",
                "secret",
            ),
            ("slack xoxb-1234567890-abcdefghij token", "secret"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "secret",
            ),
        ];
        for (text, kind) in cases {
            assert_eq!(kinds_in(&s, text), vec![kind.to_string()], "{text}");
        }
    }

    #[test]
    fn rejects_lookalikes() {
        let s = PiiScanner::new(&[]).unwrap();
        for text in [
            "card 4111 1111 1111 1112 fails luhn",
            "iban DE89 3704 0044 0532 0130 01 fails mod97",
            "ssn 000-12-3456 and 666-12-3456 are invalid",
            "version 1.2.300.4 is not an address",
            "on 2023-10-05 at 12:30:45 we met",
            "order #12345 costs 1,299.00 dollars",
            "std::vector<int> and Foo::Bar",
            "an @mention and a user@host without tld",
        ] {
            assert!(
                kinds_in(&s, text).is_empty(),
                "{text}: {:?}",
                kinds_in(&s, text)
            );
        }
    }

    #[test]
    fn redacts_with_placeholders_and_keeps_the_rest() {
        let s = PiiScanner::new(&[]).unwrap();
        let (out, found) = s.redact("Écrivez à jérôme.dü@exemple.fr ou 4111-1111-1111-1111, merci");
        assert_eq!(out, "Écrivez à [EMAIL] ou [CREDIT_CARD], merci");
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn extra_patterns_are_kinds() {
        let s = PiiScanner::new(&[("employee_id".into(), r"EMP-[0-9]{6}".into())]).unwrap();
        let (out, _) = s.redact("ticket for EMP-123456 and a@b.io");
        assert_eq!(out, "ticket for [EMPLOYEE_ID] and [EMAIL]");
        assert!(PiiScanner::new(&[("bad".into(), "(".into())]).is_err());
        let grouped =
            PiiScanner::new(&[("g".into(), r"(X)(Y)Z".into()), ("h".into(), "QQQ".into())])
                .unwrap();
        assert_eq!(
            kinds_in(&grouped, "XYZ QQQ"),
            vec!["g".to_string(), "h".to_string()]
        );
    }
}
