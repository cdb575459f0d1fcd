//! HNSW tests: recall against exact search (with deletes and slot reuse), bytes round trip, threads.

use super::kernels::dot;
use super::*;
use std::sync::{Arc, RwLock};

fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let centers: Vec<Vec<f32>> = (0..20)
        .map(|_| (0..dim).map(|_| next()).collect())
        .collect();
    (0..n)
        .map(|i| {
            let c = &centers[i % centers.len()];
            let mut v: Vec<f32> = c.iter().map(|x| x + 0.3 * next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect()
}

fn exact(data: &[Vec<f32>], alive: &[bool], q: &[f32]) -> u64 {
    let mut best = (f32::MIN, 0u64);
    for (i, v) in data.iter().enumerate() {
        if alive[i] {
            let d = dot(q, v);
            if d > best.0 {
                best = (d, i as u64);
            }
        }
    }
    best.1
}

#[test]
fn dot_kernels_agree() {
    let v = unit_vectors(2, 37, 1);
    assert!((dot(&v[0], &v[1]) - dot_portable(&v[0], &v[1])).abs() < 1e-5);
}

#[test]
fn recall_against_exact_search_with_deletes_and_reuse() {
    let dim = 32;
    let data = unit_vectors(3000, dim, 7);
    let mut h = Hnsw::new(dim, 16, 100, 10_000);
    for (i, v) in data.iter().enumerate() {
        h.insert(i as u64, v).unwrap();
    }
    let mut alive = vec![true; data.len()];
    for i in (0..data.len()).step_by(3) {
        assert!(h.delete(i as u64));
        alive[i] = false;
    }
    assert!(!h.delete(0));
    assert_eq!(h.len(), 2000);
    // Reuse freed slots with fresh vectors under new ids.
    let extra = unit_vectors(500, dim, 99);
    let mut all = data.clone();
    for (j, v) in extra.iter().enumerate() {
        h.insert((data.len() + j) as u64, v).unwrap();
        all.push(v.clone());
        alive.push(true);
    }
    assert_eq!(h.capacity_used(), 3000);
    let queries = unit_vectors(200, dim, 1234);
    let mut hits = 0;
    for q in &queries {
        let got = h.search(q, 1, 64).unwrap();
        assert!(alive[got[0].0 as usize], "deleted id returned");
        if got[0].0 == exact(&all, &alive, q) {
            hits += 1;
        }
    }
    // Queries come from clusters unlike the data, a hard case: compare with a fresh build of the same set.
    let mut fresh = Hnsw::new(dim, 16, 100, 10_000);
    for (i, v) in all.iter().enumerate() {
        if alive[i] {
            fresh.insert(i as u64, v).unwrap();
        }
    }
    let fresh_hits = queries
        .iter()
        .filter(|q| fresh.search(q, 1, 64).unwrap()[0].0 == exact(&all, &alive, q))
        .count();
    assert!(
        hits >= 170 && hits + 6 >= fresh_hits,
        "recall@1 {hits}/200, fresh build {fresh_hits}/200"
    );
    // In-distribution queries (perturbed live points) find their point almost always.
    let mut near = 0;
    for (i, v) in all.iter().enumerate().filter(|(i, _)| alive[*i]).take(300) {
        let q: Vec<f32> = v.iter().map(|x| x * 1.01).collect();
        if h.search(&q, 1, 64).unwrap()[0].0 == i as u64 {
            near += 1;
        }
    }
    assert!(near >= 297, "self-recall {near}/300");
}

#[test]
fn round_trip_bytes_and_reject_corrupt() {
    let dim = 16;
    let data = unit_vectors(300, dim, 3);
    let mut h = Hnsw::new(dim, 8, 50, 1000);
    for (i, v) in data.iter().enumerate() {
        h.insert(i as u64 * 10, v).unwrap();
    }
    h.delete(50);
    let bytes = h.to_bytes();
    let h2 = Hnsw::from_bytes(&bytes).unwrap();
    assert_eq!(h2.len(), h.len());
    for q in data.iter().take(20) {
        assert_eq!(h.search(q, 3, 30).unwrap(), h2.search(q, 3, 30).unwrap());
    }
    assert!(Hnsw::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(Hnsw::from_bytes(b"nonsense").is_err());
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] = 0xff;
    bad[last - 1] = 0xff;
    assert!(Hnsw::from_bytes(&bad).is_err() || !h.is_empty());
}

#[test]
fn full_and_dim_errors() {
    let mut h = Hnsw::new(4, 4, 10, 2);
    h.insert(1, &[1.0, 0.0, 0.0, 0.0]).unwrap();
    h.insert(2, &[0.0, 1.0, 0.0, 0.0]).unwrap();
    assert_eq!(h.insert(3, &[0.0, 0.0, 1.0, 0.0]), Err(IndexError::Full(2)));
    assert!(matches!(
        h.insert(3, &[0.0]),
        Err(IndexError::DimMismatch { .. })
    ));
    // Replacing an existing id reuses its slot.
    h.insert(2, &[0.0, 0.0, 1.0, 0.0]).unwrap();
    assert_eq!(h.search(&[0.0, 0.0, 1.0, 0.0], 1, 10).unwrap()[0].0, 2);
    assert!(h.search(&[0.0, 0.0, 1.0, 0.0], 1, 10).unwrap()[0].1 > 0.99);
}

#[test]
fn concurrent_search_from_threads() {
    let dim = 16;
    let data = unit_vectors(1000, dim, 5);
    let mut h = Hnsw::new(dim, 12, 60, 2000);
    for (i, v) in data.iter().enumerate() {
        h.insert(i as u64, v).unwrap();
    }
    let shared = Arc::new(RwLock::new(h));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let idx = Arc::clone(&shared);
            let qs = data.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                for (i, q) in qs.iter().enumerate().skip(t).step_by(4) {
                    if idx.read().unwrap().search(q, 1, 32).unwrap()[0].0 == i as u64 {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(total >= 990, "self-recall {total}/1000");
}

#[test]
fn half_precision_index_finds_the_same_neighbours_and_round_trips() {
    let dim = 33; // odd: the last word holds one half
    let data = unit_vectors(2000, dim, 11);
    let mut full = Hnsw::new(dim, 16, 100, 4000);
    let mut half = Hnsw::with_precision(dim, 16, 100, 4000, true);
    for (i, v) in data.iter().enumerate() {
        full.insert(i as u64, v).unwrap();
        half.insert(i as u64, v).unwrap();
    }
    assert!(half.is_half() && !full.is_half());
    assert_eq!((half.stride0, full.stride0), (1 + 32 + 17, 1 + 32 + 33));
    assert_eq!(half.data0.len() * 66, full.data0.len() * 50);
    let alive = vec![true; data.len()];
    let queries = unit_vectors(300, dim, 12);
    let (mut hits_full, mut hits_half) = (0, 0);
    for q in &queries {
        let truth = exact(&data, &alive, q);
        hits_full += (full.search(q, 1, 64).unwrap()[0].0 == truth) as usize;
        let (id, sim) = half.search(q, 1, 64).unwrap()[0];
        hits_half += (id == truth) as usize;
        assert!((sim - dot(q, &data[id as usize])).abs() < 2e-3);
    }
    assert!(
        hits_half + 6 >= hits_full,
        "f16 recall {hits_half} vs f32 {hits_full} of 300"
    );
    let again = Hnsw::from_bytes(&half.to_bytes()).unwrap();
    assert!(again.is_half());
    for q in queries.iter().take(20) {
        assert_eq!(
            again.search(q, 3, 30).unwrap(),
            half.search(q, 3, 30).unwrap()
        );
    }
}

#[test]
fn int8_index_finds_the_same_neighbours_in_a_quarter_of_the_memory_and_round_trips() {
    let dim = 34; // not a multiple of 4: the last word holds two bytes
    let data = unit_vectors(2000, dim, 21);
    let mut full = Hnsw::new(dim, 16, 100, 4000);
    let mut small = Hnsw::with_storage(dim, 16, 100, 4000, Precision::I8);
    for (i, v) in data.iter().enumerate() {
        full.insert(i as u64, v).unwrap();
        small.insert(i as u64, v).unwrap();
    }
    assert_eq!(small.precision(), Precision::I8);
    assert_eq!((small.stride0, full.stride0), (1 + 32 + 1 + 9, 1 + 32 + 34));
    // Decoding gives every component back within half a quantisation step.
    for node in [0u32, 777, 1999] {
        let v = &data[node as usize];
        let step = v.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
        let back = small.decoded(node);
        assert!(v
            .iter()
            .zip(&back)
            .all(|(x, y)| (x - y).abs() <= step * 0.5 + 1e-7));
    }
    let alive = vec![true; data.len()];
    let queries = unit_vectors(300, dim, 22);
    let (mut hits_full, mut hits_small) = (0, 0);
    for q in &queries {
        let truth = exact(&data, &alive, q);
        hits_full += (full.search(q, 1, 64).unwrap()[0].0 == truth) as usize;
        let (id, sim) = small.search(q, 1, 64).unwrap()[0];
        hits_small += (id == truth) as usize;
        assert!((sim - dot(q, &data[id as usize])).abs() < 1e-2);
    }
    assert!(
        hits_small + 9 >= hits_full,
        "i8 recall {hits_small} vs f32 {hits_full} of 300"
    );
    let again = Hnsw::from_bytes(&small.to_bytes()).unwrap();
    assert_eq!(again.precision(), Precision::I8);
    for q in queries.iter().take(20) {
        assert_eq!(
            again.search(q, 3, 30).unwrap(),
            small.search(q, 3, 30).unwrap()
        );
    }
}

#[test]
fn persisted_upper_layers_are_each_nodes_blocks_in_node_order() {
    // The format's last section: for every node in slot order, `level` blocks of m + 1 words
    // (count, links), whatever the in-memory layout.
    let (dim, m) = (8, 4);
    let data = unit_vectors(1500, dim, 11);
    let mut h = Hnsw::new(dim, m, 40, 2000);
    for (i, v) in data.iter().enumerate() {
        h.insert(i as u64, v).unwrap();
    }
    assert!(h.max_level >= 2, "the test needs several upper layers");
    let words: usize = h.levels.iter().map(|&l| l as usize * (m + 1)).sum();
    let bytes = h.to_bytes();
    let tail: Vec<u32> = bytes[bytes.len() - words * 4..]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut at = 0;
    for node in 0..h.labels.len() as u32 {
        for level in 1..=h.levels[node as usize] as usize {
            let links = h.links(node, level);
            assert_eq!(tail[at] as usize, links.len());
            assert_eq!(&tail[at + 1..at + 1 + links.len()], links);
            at += m + 1;
        }
    }
    assert_eq!(at, words);
    let again = Hnsw::from_bytes(&bytes).unwrap();
    assert_eq!(again.to_bytes(), bytes);
}

#[test]
fn visited_marks_stay_right_across_their_generation_wrap() {
    // One-byte generations wrap every 255 searches on a thread; results must not change when they do.
    let dim = 16;
    let data = unit_vectors(800, dim, 5);
    let mut h = Hnsw::new(dim, 8, 50, 1000);
    for (i, v) in data.iter().enumerate() {
        h.insert(i as u64, v).unwrap();
    }
    let first: Vec<_> = data
        .iter()
        .take(10)
        .map(|q| h.search(q, 5, 20).unwrap())
        .collect();
    for round in 0..70 {
        for (q, want) in data.iter().zip(&first) {
            assert_eq!(&h.search(q, 5, 20).unwrap(), want, "round {round}");
        }
    }
}

#[test]
fn candidate_keys_order_as_candidates_and_round_trip() {
    let dists = [
        f32::NEG_INFINITY,
        -2.0,
        -1e-7,
        -0.0,
        0.0,
        1e-30,
        0.5,
        1.0,
        1.0000001,
        2.0,
        f32::INFINITY,
        f32::NAN,
    ];
    let cands: Vec<Cand> = dists
        .iter()
        .flat_map(|&dist| [0u32, 1, 7, u32::MAX].map(|node| Cand { dist, node }))
        .collect();
    for a in &cands {
        let back = Cand::from_key(a.key());
        assert_eq!(back.dist.to_bits(), a.dist.to_bits());
        assert_eq!(back.node, a.node);
        for b in &cands {
            assert_eq!(
                a.key().cmp(&b.key()),
                a.cmp(b),
                "{} {} / {} {}",
                a.dist,
                a.node,
                b.dist,
                b.node
            );
        }
    }
}

/// Callgrind probe for insertion into an int8 index of 384-d vectors (the cache's): `INSERT_PROBE_N`
/// inserts after 2,000 (cost of the probe's inserts = Ir(N) - Ir(0), divided by N).
///     INSERT_PROBE_N=500 valgrind --tool=callgrind <test binary> --ignored hnsw::tests::probe_insert --exact
#[test]
#[ignore]
fn probe_insert() {
    let n: usize = std::env::var("INSERT_PROBE_N").map_or(0, |v| v.parse().unwrap());
    let data = unit_vectors(2000 + n, 384, 5);
    let mut index = Hnsw::with_storage(384, 16, 100, 10_000, Precision::I8);
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u64, v).unwrap();
    }
    assert_eq!(index.len(), 2000 + n);
}

#[test]
fn quantising_rounds_as_round_does() {
    let mut probes = vec![0.0f32, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 127.0, -127.0];
    probes.extend([0.49999997f32, -0.49999997, 0.50000006, 1.4999999, -1.4999999, 126.49999, 127.49999]);
    let mut rng = crate::xorshift::XorShift::new(0x1234_5678_9abc_def0);
    for _ in 0..100_000 {
        probes.push(((rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 255.0);
    }
    for y in probes {
        assert_eq!(storage::round_half_away(y), y.round() as i32, "{y}");
    }
    // A stored vector's bytes are its components over the scale, rounded half away from zero.
    let dim = 37;
    let data = unit_vectors(50, dim, 9);
    let mut index = Hnsw::with_storage(dim, 16, 100, 100, Precision::I8);
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u64, v).unwrap();
        let (scale, bytes) = index.vec_i8(index.by_label[&(i as u64)]);
        let peak = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert_eq!(scale, peak / 127.0);
        let expected: Vec<i8> = v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect();
        assert_eq!(bytes, &expected[..]);
    }
}

/// Items of `unit_vectors` and, for every fifth, two to four near copies of it (the near-duplicates a
/// response cache holds), with one more near copy of each such item as a query.
fn near_duplicates(n: usize, dim: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let base = unit_vectors(n, dim, seed);
    let mut rng = crate::xorshift::XorShift::new(seed ^ 0x5eed);
    let mut noisy = |v: &[f32], scale: f32| -> Vec<f32> {
        let mut w: Vec<f32> = v
            .iter()
            .map(|x| x + scale * ((rng.next() % 2001) as f32 / 1000.0 - 1.0))
            .collect();
        let norm = w.iter().map(|x| x * x).sum::<f32>().sqrt();
        w.iter_mut().for_each(|x| *x /= norm);
        w
    };
    let (mut data, mut queries) = (base.clone(), Vec::new());
    for (i, v) in base.iter().enumerate().step_by(5) {
        for k in 0..2 + i % 3 {
            data.push(noisy(v, 0.02 + 0.01 * k as f32));
        }
        queries.push(noisy(v, 0.03));
    }
    (data, queries)
}

#[test]
fn a_bounded_search_finds_what_the_plain_search_finds_above_the_bound() {
    let dim = 32;
    let (data, queries) = near_duplicates(3000, dim, 11);
    for precision in [Precision::F32, Precision::I8] {
        let mut h = Hnsw::with_storage(dim, 16, 100, 10_000, precision);
        for (i, v) in data.iter().enumerate() {
            h.insert(i as u64, v).unwrap();
        }
        let mut wanted = 0;
        for min_sim in [0.8f32, 0.9, 0.95, 0.99] {
            for q in &queries {
                let above = |found: Vec<(u64, f32)>| -> Vec<u64> {
                    found
                        .into_iter()
                        .filter(|c| c.1 >= min_sim)
                        .map(|c| c.0)
                        .collect()
                };
                let plain = above(h.search(q, 4, 16).unwrap());
                let bounded = above(h.search_near(q, 4, 16, Some(min_sim)).unwrap());
                assert_eq!(bounded, plain, "{precision:?}, min similarity {min_sim}");
                wanted += plain.len();
            }
        }
        // Most queries have several near copies above most bounds: the comparison is not vacuous.
        assert!(
            wanted > 3 * queries.len(),
            "{wanted} results above the bounds"
        );
        assert_eq!(
            h.search_near(&queries[0], 4, 16, None).unwrap(),
            h.search(&queries[0], 4, 16).unwrap()
        );
    }
}
