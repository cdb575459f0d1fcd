//! Tests of the verifier (rules, numbers, entities) and a timing probe.

use super::*;
use super::code::split_code;
use super::entities::{anchors, entities};
use super::lexicon::{packed, LEXICON};
use super::numbers::{digit_numbers, numbers_in, word_numbers};
use super::options::options;
use super::tokens::tokens;
use super::unit::Unit;
use super::words::{hash_packed, stem, stem_packed, word_hash};

fn check(a: &str, b: &str) -> Option<&'static str> {
    verify(&signature(a), &signature(b))
}

#[test]
fn ellipsis_before_a_number_terminates() {
    // A dot, a dot and a digit once made the number scanner stand still (a hung lookup).
    for text in [
        "price ..5 dollars",
        "\u{2026}..10 or 15,000",
        "..5",
        "a . ..5%",
    ] {
        let sig = signature(text);
        assert_eq!(verify(&sig, &sig), None, "{text}");
    }
    assert_eq!(
        digit_numbers(&"x ..5 and -.5".chars().collect::<Vec<_>>()),
        vec![(10, -0.5)]
    );
}

#[test]
fn digit_numbers_keep_their_signs_fractions_and_percentages() {
    let values = |text: &str| -> Vec<f64> {
        let chars: Vec<char> = text.chars().collect();
        let on_chars: Vec<f64> = digit_numbers(&chars).into_iter().map(|(_, v)| v).collect();
        assert_eq!(signature(text).numbers, on_chars, "{text}");
        on_chars
    };
    assert_eq!(values("-3/4 and \u{2212}1,234.5% or 1/0"), vec![-0.75, -12.345, 1.0]);
    assert_eq!(values("-.5, .25% and 3/4/5 then 1.2.3"), vec![-0.5, 0.0025]);
    assert_eq!(values("x-1 a.5 1,000,000 2,5"), vec![1.0, 1_000_000.0, 25.0]);
}

#[test]
fn number_words_join_only_adjacent_words() {
    let values = |text: &str| -> Vec<f64> {
        word_numbers(&text.chars().collect::<Vec<_>>())
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    };
    assert_eq!(values("three hundred and five apples"), vec![305.0]);
    assert_eq!(values("three big hundred"), vec![3.0]); // "big" breaks the number
    assert_eq!(values("a dozen eggs, and the dozen"), vec![12.0, 12.0]);
    assert_eq!(values("twenty one apples and two"), vec![21.0, 2.0]);
    assert_eq!(values("one and the two"), vec![1.0, 2.0]); // "and" joins only a following unit
    assert_eq!(values("a hundred"), vec![100.0]);
    assert!(values("a big hundred").is_empty()); // a scale counts only after "a" / "one" or a unit
    assert_eq!(values("the second half"), vec![0.5]);
    assert_eq!(values("Twenty-Five"), vec![25.0]);
}

#[test]
fn lazy_signatures_give_the_same_verdicts() {
    let texts = [
        "What is 7 times 8?",
        "What is seven times eight?",
        "What is 8 times 7?",
        "Is it hot?",
        "Isn't it hot?",
        "Q\nA. cat\nB. dog",
        "Q\nA. dog\nB. cat",
        "What is the capital of France?",
        "What is the capital of Germany?",
        "convert celsius to kelvin",
        "convert kelvin to celsius",
        "I have twenty-one apples and a dozen pears",
        "I have 21 apples and 12 pears",
        "run `ls -la` please",
        "run `ls -l` please",
    ];
    let long = "x".repeat(MAX_VERIFIABLE_CHARS + 1);
    let all: Vec<&str> = texts.iter().copied().chain([long.as_str()]).collect();
    for a in &all {
        for b in &all {
            let (la, lb) = (
                LazySignature::new(a.to_string()),
                LazySignature::new(b.to_string()),
            );
            let expected = verify(&signature(a), &signature(b));
            assert_eq!(verify_lazy(&la, &lb), expected, "{a:?} vs {b:?}");
            // Again, now that some stages are computed.
            assert_eq!(verify_lazy(&la, &lb), expected, "{a:?} vs {b:?} (second)");
        }
    }
    // A numbers mismatch never needs the whole signature.
    let (a, b) = (
        LazySignature::new("add 2 and 3".into()),
        LazySignature::new("add 2 and 4".into()),
    );
    assert_eq!(verify_lazy(&a, &b), Some("R1-numbers"));
    assert!(a.full.get().is_none() && b.full.get().is_none());
    // The whole signature built after the numbers equals one built from scratch.
    assert_eq!(*a.full(), signature("add 2 and 3"));
}

#[test]
fn one_walk_finds_what_the_separate_passes_find() {
    // `analyse_prose` finds tokens, numbers and capitalised phrases in one walk; each must equal what the
    // separate passes find, on the byte path (ASCII) and the char path (the same texts with an "é").
    let texts = [
        "Don't add O'Brien's 3/4 cup; can't, cannot, n't. x1,5 and 1.2.3 or -.5 and ..5%",
        "The Eiffel Tower in Paris vs. the \"Big Apple\" (a) NASA (b) the EU, twenty-one apples and a dozen",
        "I said: New York City's mayor met J.R.R. Tolkien\n- Mary Ann went to St. Louis? Yes! USA.",
        "one hundred and five, the second half, y'a, it's 10% of 1,000.50 and 3rd of 4th",
        "\u{201c}Quoted\u{201d} text \u{2019}s McDonald X-Men COVID-19 A&W \u{2212}5 and _Hidden",
        "",
        "'",
        "A",
        "a'B c'd'e Z",
        "Caf\u{e9} 5 and \u{e9}5, New\u{a0}York\u{2003}City \u{201c}na\u{ef}ve Caf\u{e9}\u{201d} (a) th\u{e9} \u{2014} (b) \u{2212}3 caf\u{e9}",
        "Which is right?\n(A) \u{201c}\u{e0} la carte\u{201d}\nB) cr\u{e8}me br\u{fb}l\u{e9}e \u{2026} 1\u{2009}000",
    ];
    for t in texts {
        for text in [t.to_string(), format!("{t} \u{e9}")] {
            let sig = signature(&text);
            let chars: Vec<char> = text.chars().collect();
            let (buf, spans) = tokens(&chars);
            let hashes: Vec<u64> = spans.iter().map(|&(a, b)| word_hash(&buf[a..b])).collect();
            assert_eq!(sig.words, hashes, "{text:?}");
            let mut ents = entities(&chars);
            ents.sort();
            ents.dedup();
            assert_eq!(sig.entities, ents, "{text:?}");
            assert_eq!(sig.numbers, numbers_in(&chars), "{text:?}");
            let (prose, _) = split_code(&text);
            let parens: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] == '(').collect();
            let span = |a: usize, b: usize| chars[a..b].iter().collect::<String>().into();
            assert_eq!(sig.options, options(&prose, &chars, &parens, &span), "{text:?}");
        }
    }
}

#[test]
fn packed_stems_and_hashes_equal_the_byte_ones() {
    for w in [
        "running", "ring", "sing", "walked", "bed", "boxes", "yes", "cats", "is", "s", "ed", "ing", "things",
        "abcdefghijklmnop", "abcdefghijklming", "a", "",
    ] {
        let p = packed(w.as_bytes()).unwrap();
        let s = stem(w.as_bytes());
        assert_eq!(stem_packed(p, w.len()), packed(s).unwrap(), "{w}");
        assert_eq!(hash_packed(p), word_hash(w), "{w}");
        assert_eq!(<u8 as Unit>::pack_lower(w.to_ascii_uppercase().as_bytes()), Some(p), "{w}");
        let chars: Vec<char> = w.to_ascii_uppercase().chars().collect();
        assert_eq!(<char as Unit>::pack_lower(&chars), Some(p), "{w}");
    }
    assert_eq!(<u8 as Unit>::pack_lower(&[b'a'; 17]), None);
    assert_ne!(word_hash("abcdefghijklmnopq"), word_hash("abcdefghijklmnop"));
}

#[test]
fn letter_runs_end_where_the_chars_say() {
    // The byte version reads eight bytes at a time; it must stop where the char version stops.
    let text = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ@[`{ 09 z.Zq_aa'b\x7f\x01xyzzyabcdefgh";
    let bytes = text.as_bytes();
    let chars: Vec<char> = text.chars().collect();
    for i in 0..bytes.len() {
        assert_eq!(<u8 as Unit>::letters_end(bytes, i), <char as Unit>::letters_end(&chars, i), "{i}");
    }
    // Bytes from 0x80 on stand for non-ASCII chars (`Narrow`): never letters.
    let all: Vec<u8> = (0u8..=255).collect();
    for i in 0..all.len() {
        let expected = if all[i].is_ascii_alphabetic() { i + 1 } else { i };
        let end = <u8 as Unit>::letters_end(&all, i);
        assert!(end >= expected && all[i..end].iter().all(u8::is_ascii_alphabetic), "{i}");
    }
}

#[test]
fn different_number_digests_mean_the_numbers_rule_fails() {
    let texts = [
        "add 2 and 3", "add 2 and 4", "add 3 and 2", "add two and three", "no numbers here", "-0 or 0",
        "0 or 0", "1/2 cup", "half a cup", "", "1,000", "1000", "10%", "0.1",
    ];
    let long = "x ".repeat(MAX_VERIFIABLE_CHARS);
    for a in texts.iter().copied().chain([long.as_str()]) {
        for b in texts.iter().copied().chain([long.as_str()]) {
            let (da, db) = (numbers_digest(a), numbers_digest(b));
            let verdict = verify(&signature(a), &signature(b));
            if da != 0 && db != 0 && da != db {
                assert_eq!(verdict, Some("R1-numbers"), "{a:?} vs {b:?}");
            }
            if verdict != Some("R1-numbers") && verdict != Some("R7-size") {
                assert_eq!(da, db, "{a:?} vs {b:?}");
            }
        }
    }
    assert_eq!(numbers_digest(&long), 0);
    assert_ne!(numbers_digest("add 2 and 3"), numbers_digest("add 3 and 2"));
}

#[test]
fn rules_fire_and_paraphrases_pass() {
    assert_eq!(
        check("What is 7 times 8?", "What is seven times eight?"),
        None
    );
    assert_eq!(
        check(
            "I have twenty-one apples and a dozen pears",
            "I have 21 apples and 12 pears"
        ),
        None
    );
    assert_eq!(
        check("What is 10 minus 4?", "What is 4 minus 10?"),
        Some("R1-numbers")
    );
    assert_eq!(check("Increase it by 10%", "Increase it by 0.1"), None);
    assert_eq!(check("Is it hot?", "Isn't it hot?"), Some("R2-negation"));
    assert_eq!(
        check("Q\nA. cat\nB. dog", "Q\nA. dog\nB. cat"),
        Some("R3-options")
    );
    assert_eq!(
        check("Pick (a) tea (b) coffee", "Pick (a) coffee (b) tea"),
        Some("R3-options")
    );
    assert_eq!(
        check(
            "What is the capital of France?",
            "What is the capital of Germany?"
        ),
        Some("R4-entities")
    );
    assert_eq!(
        check("Convert celsius to kelvin", "Convert kelvin to celsius"),
        Some("R4-order")
    );
    assert_eq!(
        check("Why does `x = 1` fail?", "Why does `y = 1` fail?"),
        Some("R5-code")
    );
    assert_eq!(
        check(
            "Write a poem about the sea",
            "Write a short poem about the sea"
        ),
        Some("R6-refinement")
    );
    assert_eq!(
        check(&"w ".repeat(3000), &"w ".repeat(3000)),
        Some("R7-size")
    );
}

#[test]
fn a_different_ask_around_a_shared_document_is_a_miss() {
    let doc = "The deployment guide describes how releases roll out across regions. Each region keeps a queue \
               of pending releases and an operator approves each release once canary hosts report healthy \
               latency. A failed canary pauses the release, restores the previous build and pages the owning \
               team with the failing checks attached. ";
    let ask = |a: &str| format!("{doc}{a}");
    // Before R9 these passed R8 (two and three content words on one side only; its budget is six).
    assert_eq!(
        check(
            &ask("Summarize the text above for a manager."),
            &ask("List the risks that the text above mentions.")
        ),
        Some("R9-ask")
    );
    // The ask first, then the document: the shared part is the suffix.
    assert_eq!(
        check(
            &format!("Shorten this text: {doc}"),
            &format!("Find the spelling mistakes in: {doc}")
        ),
        Some("R9-ask")
    );
    // The same ask (filler added) is still served.
    assert_eq!(
        check(
            &ask("Summarize the text above for a manager."),
            &ask("Could you please summarize the text above for a manager?")
        ),
        None
    );
    assert_eq!(check(&ask("Summarize it."), &format!("  {}", ask("Summarize it."))), None);
    // Short texts share no long context: R8's budget still applies to them alone.
    assert_eq!(
        check("How do I reset my password?", "How do I change my password?"),
        None
    );
}

#[test]
fn arbitrary_text_never_panics() {
    for t in [
        "", "`", "```", "(a)", "\"", "“x", "-", "-.5", "1/0", "½ ² ٣", "A) ", "(", "I", "9,",
        "a'b'c",
    ] {
        let s = signature(t);
        let _ = verify(&s, &s);
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    const LONG: &str = "This question refers to the following information.\nWhether the question be to continue or to \
        discontinue the practice of sati, the decision is not equally surrounded by an awful responsibility. To \
        consent to the consignment year after year of hundreds of innocent victims to a cruel and untimely end, \
        when the power exists of preventing it, is a predicament which no conscience can contemplate without \
        horror. But, on the other hand, to put to hazard by a contrary course the very safety of the British \
        Empire in India is an alternative which itself may be considered a still greater evil.\nWilliam \
        Bentinck, Govenor-General of India, \"On the Suppression of Sati,\" 1829\nThe authors of both \
        passages served institutions associated with which of the following colonial techniques? ";

    /// `cargo test --release --lib verify::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn signature_cost_breakdown() {
        breakdown(&LONG.repeat(2));
        breakdown("Statement 1 | If a group has an element of order 15 it must have at least 8 elements of order 15. \
                    Statement 2 | If a group has more than 8 elements of order 15, it must have at least 16 elements of \
                    order 15. Which of these is True for Paris and \"New York\"?\nA. True, True\nB. False, False\n\
                    C. True, False\nD. False, True\nAnswer:");
    }

    /// Only signatures of a long text, for a profiler (`valgrind --tool=callgrind <test binary>
    /// verify::tests::timing::signature_profile --ignored`).
    #[test]
    #[ignore]
    fn signature_profile() {
        let text = LONG.repeat(2);
        for _ in 0..200 {
            std::hint::black_box(signature(&text));
        }
    }

    /// Signatures of the development set's prompts over 500 characters, best of 5 rounds, in ns a
    /// character; with `VERIFY_PROBE_ROUNDS` more rounds for a profiler. Skips without the data.
    #[test]
    #[ignore]
    fn signature_dev_texts() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benchmarks/data/cache_dev");
        let mut texts: Vec<String> = Vec::new();
        for name in ["cache.jsonl", "queries.jsonl"] {
            let Ok(data) = std::fs::read_to_string(format!("{dir}/{name}")) else {
                return;
            };
            for line in data.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                texts.push(v["text"].as_str().unwrap_or_default().to_string());
            }
        }
        texts.retain(|t| t.len() > 500);
        let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
        let rounds: usize = std::env::var("VERIFY_PROBE_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(5);
        let mut best = f64::MAX;
        for _ in 0..rounds {
            let t = Instant::now();
            for text in &texts {
                std::hint::black_box(signature(text));
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{} texts, {chars} chars: {:.1} ns a char, {:.2} us a text",
            texts.len(),
            best * 1e9 / chars as f64,
            best * 1e6 / texts.len() as f64
        );
    }

    fn breakdown(text: &str) {
        println!("{} chars", text.chars().count());
        // Best of 20 batches: the fastest batch is the one least disturbed by other processes.
        let n = 1_000;
        let time = |name: &str, f: &dyn Fn()| {
            let mut best = f64::MAX;
            for _ in 0..20 {
                let t = Instant::now();
                for _ in 0..n {
                    f();
                }
                best = best.min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
            }
            println!("{name}: {best:.2} us");
        };
        let (prose, _) = split_code(text);
        let chars: Vec<char> = prose.chars().collect();
        let (buf, spans) = tokens(&chars);
        let toks: Vec<&str> = spans.iter().map(|&(a, b)| &buf[a..b]).collect();
        let ents = entities(&chars);
        let classes: Vec<u8> = toks.iter().map(|t| LEXICON.classify(t).1).collect();
        let parens: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] == '(').collect();
        time("signature", &|| {
            let _ = std::hint::black_box(signature(text));
        });
        time("split_code", &|| {
            let _ = std::hint::black_box(split_code(text));
        });
        time("tokens", &|| {
            let _ = std::hint::black_box(tokens(&chars));
        });
        time("digit_numbers", &|| {
            let _ = std::hint::black_box(digit_numbers(&chars));
        });
        time("word_numbers", &|| {
            let _ = std::hint::black_box(word_numbers(&chars));
        });
        time("options", &|| {
            let _ = std::hint::black_box(options(&prose, &chars, &parens, &|a, b| chars[a..b].iter().collect::<String>().into()));
        });
        time("entities", &|| {
            let _ = std::hint::black_box(entities(&chars));
        });
        time("anchors", &|| {
            let _ = std::hint::black_box(anchors(
                &classes,
                &toks.iter().map(|t| word_hash(t)).collect::<Vec<_>>(),
                &ents,
            ));
        });
        let s = signature(text);
        time("verify", &|| {
            let _ = std::hint::black_box(verify(&s, &s));
        });
    }
}
