//! Ignored timing probes for token counting (run by hand, never in the test run).

mod timing {
    use super::super::*;

    fn best_of(mut f: impl FnMut() -> usize) -> (std::time::Duration, usize) {
        let mut best = std::time::Duration::MAX;
        let mut out = 0;
        for _ in 0..30 {
            let t = std::time::Instant::now();
            for _ in 0..100 {
                out = std::hint::black_box(f());
            }
            best = best.min(t.elapsed() / 100);
        }
        (best, out)
    }

    /// `cargo test --release tokens::probes::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn time_count() {
        let words = "The quick brown fox jumps over the lazy dog while developers write functions, \
                     e.g. parse_json(x) -> Result<T, E>; it's 2026 and we're counting 12345 tokens.\n";
        let text: String = words.repeat(25);
        for name in [EncodingName::Cl100kBase, EncodingName::O200kBase] {
            let e = Encoding::get(name);
            let (split, pieces) = best_of(|| Pieces::new(&text, e.pattern).count());
            let (total, tokens) = best_of(|| e.count(&text));
            println!(
                "{name:?}: {} bytes, {pieces} pieces, {tokens} tokens: split {split:?}, count {total:?}",
                text.len()
            );
        }
    }
}

mod perf_probe {
    use super::super::*;

    fn text() -> String {
        "The quick brown fox jumps over the lazy dog while developers write functions, \
         e.g. parse_json(x) -> Result<T, E>; it's 2026 and we're counting 12345 tokens.\n"
            .repeat(25)
    }

    #[test]
    #[ignore]
    fn probe_count_cl100k() {
        let e = Encoding::get(EncodingName::Cl100kBase);
        let t = text();
        let n: usize = std::env::var("PROBE_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut s = 0;
        for _ in 0..n {
            s += std::hint::black_box(e.count(std::hint::black_box(&t)));
        }
        println!("{s}");
    }
}
