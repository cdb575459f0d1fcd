//! HNSW approximate nearest-neighbour index over unit vectors (inner product), with insert, delete, search,
//! and save/load to owned bytes.
//!
//! Pure: never touches files; persistence is `to_bytes` / `from_bytes`. `search` takes `&self`, so callers
//! share one index between threads behind an `RwLock` (many readers, one writer).
//!
//! Follows Malkov & Yashunin (hnswlib's layout): layer 0 holds `2*m` links per node in one flat array,
//! upper layers `m`, neighbours chosen by the diversity heuristic. Deletion is a tombstone: the node keeps
//! routing searches but is never returned, and its slot is reused by a later insert (the slot is relinked;
//! stale in-links from old neighbours stay as extra long-range edges).

use rustc_hash::FxHashMap;

mod cand;
mod kernels;
mod near;
mod persist;
mod query_i16;
mod search;
mod storage;

use cand::Cand;
use near::Near;
#[cfg(test)]
use kernels::dot_portable;
use query_i16::QueryI16;

/// Errors from index operations (mapped to `ValueError` in Python).
#[derive(Debug, PartialEq)]
pub enum IndexError {
    DimMismatch { expected: usize, got: usize },
    Full(usize),
    Corrupt(&'static str),
}

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexError::DimMismatch { expected, got } => {
                write!(f, "vector has {got} dims, index has {expected}")
            }
            IndexError::Full(n) => write!(
                f,
                "index is full ({n} elements); raise max_elements or delete"
            ),
            IndexError::Corrupt(what) => write!(f, "corrupt index bytes: {what}"),
        }
    }
}

/// How an index stores its vectors (queries are always f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    /// IEEE half: half the memory, ~1e-3 relative rounding.
    F16,
    /// Signed bytes with one f32 scale per vector: a quarter of the memory (the response cache's index).
    I8,
}

/// Asks Linux to back `buf`'s allocation with 2 MB pages where it can (transparent huge pages in
/// `madvise` mode): a search touches a few hundred nodes scattered over the whole array, and with 4 KB
/// pages nearly each of them also misses the TLB. Only advice: nothing changes when it is refused.
fn advise_huge_pages(buf: &Vec<u32>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        const MADV_HUGEPAGE: i32 = 14;
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
        }
        let start = (buf.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (buf.as_ptr() as usize + buf.capacity() * 4) & !(HUGE - 1);
        if end > start {
            // SAFETY: the range lies inside this Vec's allocation and MADV_HUGEPAGE never changes its
            // contents; a failure (e.g. THP disabled) is ignored.
            unsafe { madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// An HNSW graph over `dim`-dimensional vectors keyed by caller-chosen `u64` ids.
pub struct Hnsw {
    dim: usize,
    m: usize,
    m0: usize,
    ef_construction: usize,
    max_elements: usize,
    ml: f64,
    /// Layer 0 and the vectors, interleaved per node as `[count, n_1..n_m0, vector words]` so one node's
    /// links and vector share cache lines, as in hnswlib. The vector is `dim` f32 bit patterns, or with
    /// `half` `dim` IEEE f16 values packed two per word (half the memory, ~1e-3 relative rounding),
    /// or with `Precision::I8` one f32 scale word then `dim` signed bytes packed four per word (a quarter
    /// of the memory; each component within scale/2 = max|x|/254 of the original).
    data0: Vec<u32>,
    stride0: usize,
    precision: Precision,
    vwords: usize,
    labels: Vec<u64>,
    levels: Vec<u8>,
    /// Layers >= 1: per node, `level` blocks of `[count, n_1..n_m]`, all nodes' blocks in one array (in
    /// node order, as persisted) so reaching a node's links is one read, not a pointer chase per node.
    upper: Vec<u32>,
    /// Where each node's blocks start in `upper` (4 bytes a node instead of a 24-byte `Vec` header).
    upper_at: Vec<u32>,
    deleted: Vec<bool>,
    free: Vec<u32>,
    by_label: FxHashMap<u64, u32>,
    entry: Option<u32>,
    max_level: usize,
    rng: u64,
}

impl Hnsw {
    /// An empty index storing vectors as f32.
    pub fn new(dim: usize, m: usize, ef_construction: usize, max_elements: usize) -> Hnsw {
        Self::with_precision(dim, m, ef_construction, max_elements, false)
    }

    /// An empty index storing vectors as f32, or as f16 with `half` (queries stay f32).
    pub fn with_precision(
        dim: usize,
        m: usize,
        ef_construction: usize,
        max_elements: usize,
        half: bool,
    ) -> Hnsw {
        let precision = if half { Precision::F16 } else { Precision::F32 };
        Self::with_storage(dim, m, ef_construction, max_elements, precision)
    }

    /// An empty index storing vectors at `precision` (queries stay f32).
    pub fn with_storage(
        dim: usize,
        m: usize,
        ef_construction: usize,
        max_elements: usize,
        precision: Precision,
    ) -> Hnsw {
        let m = m.clamp(2, 128);
        let vwords = match precision {
            Precision::F32 => dim,
            Precision::F16 => dim.div_ceil(2),
            Precision::I8 => 1 + dim.div_ceil(4),
        };
        Hnsw {
            dim,
            m,
            m0: 2 * m,
            ef_construction: ef_construction.max(m),
            max_elements,
            ml: 1.0 / (m as f64).ln(),
            data0: Vec::new(),
            stride0: 1 + 2 * m + vwords,
            precision,
            vwords,
            labels: Vec::new(),
            levels: Vec::new(),
            upper: Vec::new(),
            upper_at: Vec::new(),
            deleted: Vec::new(),
            free: Vec::new(),
            by_label: FxHashMap::default(),
            entry: None,
            max_level: 0,
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether vectors are stored as f16.
    pub fn is_half(&self) -> bool {
        self.precision == Precision::F16
    }

    /// How vectors are stored.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Bytes held by the graph and vectors (excluding the id map), for memory accounting.
    pub fn memory_bytes(&self) -> usize {
        self.data0.capacity() * 4
            + self.upper.capacity() * 4
            + self.upper_at.capacity() * 4
            + self.labels.capacity() * 10
            + self.by_label.capacity() * 16
    }

    /// Number of live (not deleted) entries.
    pub fn len(&self) -> usize {
        self.by_label.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_label.is_empty()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.by_label.contains_key(&id)
    }

    /// Slots allocated, live or tombstoned (memory is proportional to this).
    pub fn capacity_used(&self) -> usize {
        self.labels.len()
    }

    fn random_level(&mut self) -> usize {
        // xorshift64*: deterministic per index, good enough for level draws.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let u = ((r >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        ((-u.ln() * self.ml) as usize).min(16)
    }

    /// Inserts (or replaces) the vector for `id`. Vectors are expected to be unit length.
    pub fn insert(&mut self, id: u64, v: &[f32]) -> Result<(), IndexError> {
        if v.len() != self.dim {
            return Err(IndexError::DimMismatch {
                expected: self.dim,
                got: v.len(),
            });
        }
        if self.by_label.contains_key(&id) {
            self.delete(id);
        }
        // Never reuse the entry point's slot: relinking it would cut the graph off from its top.
        let reusable = self.free.iter().rposition(|&s| Some(s) != self.entry);
        let node = if let Some(slot) = reusable.map(|pos| self.free.swap_remove(pos)) {
            self.write_vec(slot, v);
            self.labels[slot as usize] = id;
            self.deleted[slot as usize] = false;
            slot
        } else {
            if self.labels.len() >= self.max_elements {
                return Err(IndexError::Full(self.max_elements));
            }
            let node = self.labels.len() as u32;
            let level = self.random_level();
            let upper_at =
                u32::try_from(self.upper.len()).map_err(|_| IndexError::Full(self.labels.len()))?;
            let before = self.data0.capacity();
            self.data0.resize(self.data0.len() + self.stride0, 0);
            if self.data0.capacity() != before {
                advise_huge_pages(&self.data0);
            }
            self.write_vec(node, v);
            self.labels.push(id);
            self.levels.push(level as u8);
            self.upper_at.push(upper_at);
            self.upper
                .resize(self.upper.len() + level * (self.m + 1), 0);
            self.deleted.push(false);
            node
        };
        self.by_label.insert(id, node);
        self.link(node);
        Ok(())
    }

    /// Connects `node` (vector and level already in place) into the graph.
    fn link(&mut self, node: u32) {
        let level = self.levels[node as usize] as usize;
        // A reused slot forgets its out-links. Old neighbours' in-links stay: removing them measured worse
        // recall (they keep the neighbourhood connected) than keeping them as extra long-range edges.
        for l in 0..=level {
            self.set_links(node, l, &[]);
        }
        let Some(entry) = self.entry else {
            self.entry = Some(node);
            self.max_level = level;
            return;
        };
        // An int8 index measures stored vectors against each other with the integer kernel (exact sums
        // of byte products, the search's kernel), the others with the f32 one.
        let q16 = self.stored_query(node);
        let q = if q16.is_some() { Vec::new() } else { self.decoded(node) };
        let mut cur = Cand {
            dist: self.dist_to(&q, q16.as_ref(), entry),
            node: entry,
        };
        for l in (level + 1..=self.max_level).rev() {
            cur = self.greedy(&q, q16.as_ref(), cur, l);
        }
        for l in (0..=level.min(self.max_level)).rev() {
            // A reused slot can be reached through stale in-links: never link a node to itself.
            let mut found = self.search_layer(
                &q,
                q16.as_ref(),
                &[cur],
                self.ef_construction,
                l,
                false,
                Near::NONE,
            );
            found.retain(|c| c.node != node);
            let max_links = if l == 0 { self.m0 } else { self.m };
            let chosen = self.select(&found, self.m, Some(node));
            let ids: Vec<u32> = chosen.iter().map(|c| c.node).collect();
            self.set_links(node, l, &ids);
            for &nb in &ids {
                let existing = self.links(nb, l);
                if existing.contains(&node) {
                    continue;
                }
                if existing.len() < max_links {
                    let mut v = existing.to_vec();
                    v.push(node);
                    self.set_links(nb, l, &v);
                } else {
                    let base16 = self.stored_query(nb);
                    let base = if base16.is_some() { Vec::new() } else { self.decoded(nb) };
                    let mut cands: Vec<Cand> = existing
                        .iter()
                        .map(|&e| Cand {
                            dist: self.dist_to(&base, base16.as_ref(), e),
                            node: e,
                        })
                        .collect();
                    cands.push(Cand {
                        dist: self.dist_to(&base, base16.as_ref(), node),
                        node,
                    });
                    cands.sort();
                    let kept = self.select(&cands, max_links, Some(nb));
                    let v: Vec<u32> = kept.iter().map(|c| c.node).collect();
                    self.set_links(nb, l, &v);
                }
            }
            if let Some(best) = found.first() {
                cur = *best;
            }
        }
        if level > self.max_level {
            self.entry = Some(node);
            self.max_level = level;
        }
    }

    /// hnswlib's neighbour heuristic over candidates sorted nearest first: keep a candidate only if it is
    /// nearer to the query than to every neighbour already kept.
    fn select(&self, sorted: &[Cand], m: usize, exclude: Option<u32>) -> Vec<Cand> {
        let mut kept: Vec<Cand> = Vec::with_capacity(m);
        // An int8 index: each kept neighbour as an exact integer query (widened once), met by every later
        // candidate's stored bytes; the same sums, scales and rounding order as measuring the candidate
        // against the neighbour (`dist_to`), so the same choices. Otherwise each candidate decoded to f32.
        let mut kept16: Vec<QueryI16> = Vec::new();
        let int8 = self.precision == Precision::I8 && QueryI16::available(self.dim);
        let mut cv = Vec::new();
        for c in sorted {
            if Some(c.node) == exclude {
                continue;
            }
            if kept.len() >= m {
                break;
            }
            let keep = if int8 {
                let (scale_c, bytes_c) = self.vec_i8(c.node);
                kept16
                    .iter()
                    .all(|k| 1.0 - k.scale() * (k.dot_raw(bytes_c) as f32 * scale_c) >= c.dist)
            } else {
                cv.resize(self.dim, 0.0);
                self.decode_into(c.node, &mut cv);
                kept.iter().all(|k| self.dist(&cv, k.node) >= c.dist)
            };
            if keep {
                kept.push(*c);
                if int8 {
                    kept16.extend(self.stored_query(c.node));
                }
            }
        }
        kept
    }

    /// Marks `id` deleted (it stops appearing in results; its slot is reused by a later insert).
    /// Returns whether it was present.
    pub fn delete(&mut self, id: u64) -> bool {
        match self.by_label.remove(&id) {
            Some(node) => {
                self.deleted[node as usize] = true;
                self.free.push(node);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
