//! Token counting tests: known strings, the three merge paths agreeing, short keys, names.

use super::*;

#[test]
fn counts_known_strings() {
    let cl = Encoding::get(EncodingName::Cl100kBase);
    assert_eq!(cl.vocab_size(), 100_256);
    assert_eq!(cl.encode("hello world"), [15339, 1917]);
    assert_eq!(cl.count(""), 0);
    let o = Encoding::get(EncodingName::O200kBase);
    assert_eq!(o.vocab_size(), 199_998);
    assert_eq!(o.count("hello world"), 2);
}

#[test]
fn heap_merge_equals_scan_merge() {
    let mut rng = crate::xorshift::XorShift::new(0x9e37_79b9_7f4a_7c15);
    let alphabet: Vec<char> = "ab cde\n\t.!{}()=_-+*0123456789éü日本🎉ſ'"
        .chars()
        .collect();
    for enc in [EncodingName::Cl100kBase, EncodingName::O200kBase] {
        let e = Encoding::get(enc);
        for len in [2usize, 3, 7, 40, 130, 300] {
            for _ in 0..20 {
                let s: String = (0..len)
                    .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                    .collect();
                assert_eq!(
                    e.merge_heap(s.as_bytes()),
                    e.merge_scan(s.as_bytes()),
                    "{s:?}"
                );
            }
        }
    }
}

#[test]
fn short_merge_count_equals_scan_merge() {
    let mut rng = crate::xorshift::XorShift::new(0x2545_f491_4f6c_dd1d);
    let alphabet: Vec<char> = "ab cde\n\t.!{}()=_-+*0123456789éü日本🎉ſ'<>xyzqQZ"
        .chars()
        .collect();
    for enc in [EncodingName::Cl100kBase, EncodingName::O200kBase] {
        let e = Encoding::get(enc);
        for round in 0..20_000 {
            let s: String = (0..1 + round % 15)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            let mut bytes = s.as_bytes();
            if bytes.len() > SHORT_MAX {
                bytes = &bytes[..SHORT_MAX];
            }
            assert_eq!(
                e.merge_count_short(bytes),
                e.merge_scan(bytes).len() - 1,
                "{bytes:?}"
            );
        }
        for piece in [
            "<system",
            " concisely",
            "<user",
            " antidisestablish",
            "zzzzzzzzzzzzzzz",
        ] {
            let bytes = &piece.as_bytes()[..piece.len().min(SHORT_MAX)];
            assert_eq!(
                e.merge_count_short(bytes),
                e.merge_scan(bytes).len() - 1,
                "{piece:?}"
            );
        }
    }
}

#[test]
fn estimate_scales_the_exact_count() {
    let text = "The quick brown fox jumps over the lazy dog.";
    let exact = count(text, EncodingName::Cl100kBase);
    assert_eq!(estimate(text, 1.0), exact);
    assert_eq!(estimate(text, 2.0), exact * 2);
    assert_eq!(estimate(text, f64::NAN), exact);
}

#[test]
fn short_keys_are_distinct_per_byte_string() {
    let mut seen = std::collections::HashMap::new();
    let samples: Vec<Vec<u8>> = (0..=15usize)
        .flat_map(|n| {
            [
                vec![0u8; n],
                vec![0xffu8; n],
                (0..n as u8).collect(),
                (0..n as u8).rev().collect(),
            ]
        })
        .collect();
    for s in samples {
        if let Some(prev) = seen.insert(short_key(&s), s.clone()) {
            assert_eq!(prev, s);
        }
    }
    assert_eq!(
        short_key(b"ab") & 0xffff,
        u128::from(u16::from_le_bytes(*b"ab"))
    );
    assert_ne!(short_key(b"a"), short_key(b"a\0"));
}

#[test]
fn short_key_at_equals_short_key() {
    let text: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(37) ^ 0x5a).collect();
    for start in 0..text.len() {
        for n in 0..=SHORT_MAX.min(text.len() - start) {
            assert_eq!(
                short_key_at(&text, start, n),
                short_key(&text[start..start + n]),
                "{start} {n}"
            );
        }
    }
}

#[test]
fn parses_names() {
    assert_eq!(
        EncodingName::parse("o200k_base"),
        Ok(EncodingName::O200kBase)
    );
    assert!(EncodingName::parse("p50k_base").is_err());
}
