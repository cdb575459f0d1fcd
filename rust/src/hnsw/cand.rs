//! A search candidate (distance, node) and its one-integer form: the search's heaps and its sorted list of
//! the best found compare and move one u64 instead of an f32 and a u32.

use std::cmp::Ordering;

#[derive(Clone, Copy, PartialEq)]
pub(super) struct Cand {
    pub(super) dist: f32,
    pub(super) node: u32,
}

impl Eq for Cand {}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Cand {
    /// The candidate as one integer ordered as `Cand` is (distance by `total_cmp`, then node): the search's
    /// heaps compare and move one u64 instead of an f32 and a u32.
    #[inline]
    pub(super) fn key(self) -> u64 {
        let bits = self.dist.to_bits() as i32;
        // `f32::total_cmp`'s mapping to i32 order, then to u32 order.
        let ordered = (bits ^ (((bits >> 31) as u32) >> 1) as i32) as u32 ^ 0x8000_0000;
        (u64::from(ordered) << 32) | u64::from(self.node)
    }

    #[inline]
    pub(super) fn from_key(key: u64) -> Cand {
        let ordered = ((key >> 32) as u32 ^ 0x8000_0000) as i32;
        // The mapping flips the low 31 bits of negative values only, so applying it again undoes it.
        let bits = ordered ^ (((ordered >> 31) as u32) >> 1) as i32;
        Cand {
            dist: f32::from_bits(bits as u32),
            node: key as u32,
        }
    }
}

/// Inserts `key` into `best`, kept sorted nearest first.
#[inline]
pub(super) fn insert_sorted(best: &mut Vec<u64>, key: u64) {
    best.insert(best.partition_point(|&x| x < key), key);
}
