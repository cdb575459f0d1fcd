//! When a search may stop early: the caller wants only neighbours at least `min_similarity` close.
//!
//! A response-cache lookup serves only candidates above its similarity threshold (0.90), yet a plain
//! best-first search keeps expanding until its whole beam (`ef`) is as good as it can get: for a query
//! with one near-duplicate among distant entries it keeps walking the distant ones. Neighbours above the
//! threshold lie close to each other (two entries within 0.90 of one query are within ~0.62 of each other,
//! and in practice much closer), so once one is found, the rest are reached through nodes near it. With a
//! `Near`, a layer search that has found a node within the threshold stops expanding nodes beyond the
//! threshold plus `NEAR_SLACK`. Until it finds one (a miss, most of the time) it is the plain search.
//!
//! Measured (benchmarks/micro/near_recall.py: 100k int8 entries of which 11.6k real prompts, 7,397 queries):
//! at thresholds 0.85 and 0.90 a slack of 0.1 found exactly the true neighbours the plain search found
//! (18,135 and 12,028), with a median search time 0.95-0.97 and 0.88-0.90 of the plain search's. In a
//! first run of the check (its index also held the routing holdout rows), a slack of 0 missed 34 % and 4 %
//! more than the plain search, 0.05 two more in 18,418, and 0.1 none.

/// How far beyond the threshold (in distance, 1 - similarity) the search still expands once a node
/// within it is found.
const NEAR_SLACK: f32 = 0.1;

/// The distances that bound a search (`Hnsw::search_near`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Near {
    /// A node at most this far is what the caller wants (1 - min_similarity).
    pub(super) hit: f32,
    /// Once such a node is found, nodes farther than this are not expanded.
    pub(super) stop: f32,
}

impl Near {
    pub(super) fn new(min_similarity: f32) -> Near {
        let hit = 1.0 - min_similarity;
        Near {
            hit,
            stop: hit + NEAR_SLACK,
        }
    }

    /// No bound: the plain search.
    pub(super) const NONE: Near = Near {
        hit: f32::NEG_INFINITY,
        stop: f32::INFINITY,
    };
}
