//! Multiple-choice options of a prompt (rule R3): labelled lines, else inline "(a) ... (b) ..." marks.

use std::borrow::Cow;

use super::code::norm;
use super::unit::Unit;

/// Multiple-choice options: lines opening with a label, else inline "(a) ... (b) ..." marks
/// (`parens`: where the prose holds '('; `text`: the prose's own text of a span of `chars`).
pub(super) fn options<'t, U: Unit>(
    prose: &str,
    chars: &[U],
    parens: &[usize],
    text: &dyn Fn(usize, usize) -> Cow<'t, str>,
) -> Vec<(char, String)> {
    let mut lines = Vec::new();
    for line in prose.lines() {
        let t = line.trim_start();
        let t = t.strip_prefix(['(', '[']).unwrap_or(t);
        let mut cs = t.chars();
        if let (Some(label), Some(close)) = (cs.next(), cs.next()) {
            let rest = cs.as_str();
            if matches!(label, 'A'..='H' | 'a'..='h' | '1'..='8')
                && matches!(close, ')' | ']' | '.' | ':')
                && rest.starts_with(char::is_whitespace)
                && !rest.trim().is_empty()
            {
                lines.push((label.to_ascii_uppercase(), norm(rest)));
            }
        }
    }
    if lines.len() >= 2 {
        return lines;
    }
    // Inline "(a) tea (b) coffee" (`chars` are the prose's).
    let mut marks = Vec::new();
    for &i in parens {
        if i + 2 < chars.len()
            && matches!(chars[i + 1].ch(), 'A'..='H' | 'a'..='h')
            && chars[i + 2].ch() == ')'
            && (i == 0 || chars[i - 1].ch().is_whitespace())
        {
            marks.push(i);
        }
    }
    let mut inline = Vec::new();
    for (n, &m) in marks.iter().enumerate() {
        let end = marks.get(n + 1).copied().unwrap_or(chars.len());
        let body = text(m + 3, end);
        if !body.contains(['(', ')']) && !body.trim().is_empty() {
            inline.push((chars[m + 1].ch().to_ascii_uppercase(), norm(&body)));
        }
    }
    if inline.len() >= 2 {
        inline
    } else {
        Vec::new()
    }
}
