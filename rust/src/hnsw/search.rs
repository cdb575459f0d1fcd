//! Searching the graph: the greedy walk down the upper layers, best-first search on one layer, and the
//! public `search` / `search_near`.

use std::cell::RefCell;
use std::collections::BinaryHeap;

use super::cand::{insert_sorted, Cand};
use super::near::Near;
use super::query_i16::QueryI16;
use super::{Hnsw, IndexError, Precision};

/// Per-thread search state reused between searches: visited marks (generation-stamped, so the array is
/// cleared only when the one-byte generation wraps, every 255 searches; a byte a node keeps the marks of
/// 100k nodes in 100 KB of cache, a quarter of u32 stamps) and the two heaps (so a search allocates only
/// its result).
struct Scratch {
    marks: Vec<u8>,
    gen: u8,
    /// `Cand::key`s: the nearest unexpanded first, and the `ef` best found, sorted nearest first (a few
    /// dozen at most: a sorted insert is cheaper than a heap, and the farthest kept is the last).
    frontier: BinaryHeap<std::cmp::Reverse<u64>>,
    best: Vec<u64>,
    /// The unvisited neighbours of the node being expanded.
    fresh: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            marks: Vec::new(),
            gen: 0,
            frontier: BinaryHeap::new(),
            best: Vec::new(),
            fresh: Vec::new(),
        })
    };
}

/// How many neighbours ahead a search (`Hnsw::each_distance`) asks the CPU to load: enough misses in flight to hide memory
/// latency, few enough that the lines are still cached when the distance reads them.
const PREFETCH_AHEAD: usize = 3;

impl Hnsw {
    /// Calls `each(node, distance)` for `nodes` in order, asking the CPU to load each vector
    /// `PREFETCH_AHEAD` nodes ahead: the vectors lie far apart in memory, so overlapping their cache misses
    /// is most of a search's speed (upper-layer walk and `search_layer` alike).
    #[inline]
    fn each_distance(
        &self,
        q: &[f32],
        q16: Option<&QueryI16>,
        nodes: &[u32],
        mut each: impl FnMut(u32, f32),
    ) {
        for &nb in nodes.iter().take(PREFETCH_AHEAD) {
            self.prefetch(nb);
        }
        for (j, &nb) in nodes.iter().enumerate() {
            if let Some(&ahead) = nodes.get(j + PREFETCH_AHEAD) {
                self.prefetch(ahead);
            }
            each(nb, self.dist_to(q, q16, nb));
        }
    }

    pub(super) fn greedy(
        &self,
        q: &[f32],
        q16: Option<&QueryI16>,
        mut cur: Cand,
        level: usize,
    ) -> Cand {
        loop {
            let mut changed = false;
            self.each_distance(q, q16, self.links(cur.node, level), |nb, d| {
                if d < cur.dist {
                    cur = Cand { dist: d, node: nb };
                    changed = true;
                }
            });
            if !changed {
                return cur;
            }
        }
    }

    /// Best-first search on one layer; returns up to `ef` candidates sorted nearest first. With
    /// `skip_deleted`, tombstoned nodes route the search but are left out of the result. Distances are
    /// `dist_to(q, q16, ..)`.
    #[allow(clippy::too_many_arguments)] // the query in both forms, where to start, and how far to go
    pub(super) fn search_layer(
        &self,
        q: &[f32],
        q16: Option<&QueryI16>,
        starts: &[Cand],
        ef: usize,
        level: usize,
        skip_deleted: bool,
        near: Near,
    ) -> Vec<Cand> {
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let Scratch {
                marks,
                gen,
                frontier,
                best,
                fresh,
            } = &mut *guard;
            if marks.len() < self.labels.len() {
                marks.resize(self.labels.len(), 0);
            }
            *gen = gen.wrapping_add(1);
            if *gen == 0 {
                marks.fill(0);
                *gen = 1;
            }
            let g = *gen;
            frontier.clear();
            best.clear();
            for &s in starts {
                marks[s.node as usize] = g;
                frontier.push(std::cmp::Reverse(s.key()));
                if !(skip_deleted && self.deleted[s.node as usize]) {
                    insert_sorted(best, s.key());
                }
            }
            let farthest = |best: &Vec<u64>| {
                best.last()
                    .map_or(f32::INFINITY, |&k| Cand::from_key(k).dist)
            };
            let mut bound = farthest(best);
            // Whether a live node within `near.hit` is among the best (then nodes beyond `near.stop` are not
            // expanded; see `near`).
            let mut found_near = best
                .first()
                .is_some_and(|&k| Cand::from_key(k).dist <= near.hit);
            while let Some(std::cmp::Reverse(key)) = frontier.pop() {
                let c = Cand::from_key(key);
                if c.dist > bound && best.len() >= ef {
                    break;
                }
                if found_near && c.dist > near.stop {
                    break;
                }
                // Unvisited neighbours first, then their distances (`each_distance` overlaps their loads).
                fresh.clear();
                for &nb in self.links(c.node, level) {
                    let slot = &mut marks[nb as usize];
                    if *slot != g {
                        *slot = g;
                        fresh.push(nb);
                    }
                }
                self.each_distance(q, q16, fresh, |nb, d| {
                    if best.len() < ef || d < bound {
                        let key = Cand { dist: d, node: nb }.key();
                        frontier.push(std::cmp::Reverse(key));
                        if !(skip_deleted && self.deleted[nb as usize]) {
                            insert_sorted(best, key);
                            if best.len() > ef {
                                best.pop();
                            }
                        }
                        bound = farthest(best);
                        found_near |= d <= near.hit && !(skip_deleted && self.deleted[nb as usize]);
                    }
                });
            }
            best.drain(..).map(Cand::from_key).collect()
        })
    }

    /// The `k` nearest live entries as `(id, similarity)` (similarity = inner product), best first.
    pub fn search(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<(u64, f32)>, IndexError> {
        self.search_near(q, k, ef, None)
    }

    /// `search` for a caller that wants only entries with a similarity of at least `min_similarity`: the
    /// same results at or above it (measured; see `near`), found sooner when there are any, and possibly
    /// fewer below it. None: exactly `search`.
    pub fn search_near(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        min_similarity: Option<f32>,
    ) -> Result<Vec<(u64, f32)>, IndexError> {
        if q.len() != self.dim {
            return Err(IndexError::DimMismatch {
                expected: self.dim,
                got: q.len(),
            });
        }
        let Some(entry) = self.entry else {
            return Ok(Vec::new());
        };
        if k == 0 || self.by_label.is_empty() {
            return Ok(Vec::new());
        }
        // An int8 index is walked with the query as 16-bit integers (integer multiply-adds, about twice
        // as fast; distances within ~1e-5), then the candidates found are ranked and reported with the
        // f32 query's distances, as without it.
        let q16 = match self.precision {
            Precision::I8 => QueryI16::new(q),
            _ => None,
        };
        let mut cur = Cand {
            dist: self.dist_to(q, q16.as_ref(), entry),
            node: entry,
        };
        for l in (1..=self.max_level).rev() {
            cur = self.greedy(q, q16.as_ref(), cur, l);
        }
        let near = min_similarity.map_or(Near::NONE, Near::new);
        let mut found = self.search_layer(q, q16.as_ref(), &[cur], ef.max(k), 0, true, near);
        if q16.is_some() {
            for c in &mut found {
                c.dist = self.dist(q, c.node);
            }
            found.sort_unstable();
        }
        Ok(found
            .iter()
            .take(k)
            .map(|c| (self.labels[c.node as usize], 1.0 - c.dist))
            .collect())
    }
}
