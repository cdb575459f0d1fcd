//! `FlatMap`: an open-addressing hash map from integer keys to small values, for the vocabulary lookups on
//! the analysis hot path (BPE ranks, WordPiece ids, cue words).
//!
//! Pure, immutable after building. Each slot holds its key and its value side by side, so a hit costs one
//! memory access (hashbrown reads a control group, then the bucket it points to: two dependent loads, each
//! an L1 miss for a large vocabulary). Linear probing at a load factor of at most 1/2 (4/5 for `dense`).

/// An integer key with a value no real key takes (marks empty slots).
pub(crate) trait FlatKey: Copy + Eq {
    const EMPTY: Self;
    /// Well-mixed high bits (the slot index is taken from the top).
    fn mix(self) -> u64;
}

impl FlatKey for u64 {
    const EMPTY: u64 = u64::MAX;
    #[inline(always)]
    fn mix(self) -> u64 {
        (self ^ (self >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

impl FlatKey for u128 {
    const EMPTY: u128 = u128::MAX;
    #[inline(always)]
    fn mix(self) -> u64 {
        let (lo, hi) = (self as u64, (self >> 64) as u64);
        (lo ^ hi.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ (lo >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// Key -> value map built once; `get` is one slot read on a hit in the common case.
pub(crate) struct FlatMap<K, V> {
    slots: Box<[(K, V)]>,
    /// `64 - log2(slots.len())`: the slot index is the top bits of `mix`.
    shift: u32,
    len: usize,
}

impl<K: FlatKey, V: Copy + Default> FlatMap<K, V> {
    /// An empty map with room for `n` keys at a load factor of at most 1/2.
    pub(crate) fn with_capacity(n: usize) -> FlatMap<K, V> {
        FlatMap::with_slots((2 * n).next_power_of_two())
    }

    /// An empty map with room for `n` keys in the fewest slots that keep the load factor at most 4/5: for
    /// very large tables, where memory matters more than the longer probes.
    pub(crate) fn dense(n: usize) -> FlatMap<K, V> {
        FlatMap::with_slots((n + n / 4).next_power_of_two())
    }

    fn with_slots(slots: usize) -> FlatMap<K, V> {
        let slots = slots.max(16);
        FlatMap {
            slots: vec![(K::EMPTY, V::default()); slots].into_boxed_slice(),
            shift: 64 - slots.trailing_zeros(),
            len: 0,
        }
    }

    /// First slot probed for `key`: even, so the first probe reads a pair of neighbouring slots at once.
    #[inline(always)]
    fn home(&self, key: K) -> usize {
        (key.mix() >> self.shift) as usize & !1
    }

    /// Slot of `key`, or of the empty slot where it would go (linear probing from `home`).
    #[inline(always)]
    fn find(&self, key: K) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].0;
            if k == key || k == K::EMPTY {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// Sets `key` to `value` (replacing any earlier value), growing past a load of 4/5.
    ///
    /// # Panics
    /// If `key` is `K::EMPTY` (no real key is).
    pub(crate) fn insert(&mut self, key: K, value: V) {
        assert!(key != K::EMPTY, "FlatMap key collides with the empty marker");
        if 5 * (self.len + 1) > 4 * self.slots.len() {
            self.grow();
        }
        let i = self.find(key);
        if self.slots[i].0 == K::EMPTY {
            self.len += 1;
        }
        self.slots[i] = (key, value);
    }

    /// Sets `key` to `value` unless it is already present (the first value wins).
    #[cfg(test)]
    pub(crate) fn insert_if_absent(&mut self, key: K, value: V) {
        if self.get(key).is_none() {
            self.insert(key, value);
        }
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, FlatMap::with_slots(2 * self.slots.len()));
        for &(k, v) in old.slots.iter().filter(|(k, _)| *k != K::EMPTY) {
            self.insert(k, v);
        }
    }

    /// The value of `key`. The pair of slots at `home` is read and compared without a branch per slot, so
    /// a hit in either (most lookups at load <= 1/2) costs one predictable branch.
    #[inline(always)]
    pub(crate) fn get(&self, key: K) -> Option<V> {
        let i = self.home(key);
        debug_assert!(i + 1 < self.slots.len());
        // SAFETY: `home` is below the slot count (its top bits, `shift` = 64 - log2(slots)) and even, and the
        // slot count is a power of two >= 16, so `i + 1` is in bounds too. Two bounds checks per lookup were
        // a tenth of the lookup's instructions, on every word of every pass.
        let ((k0, v0), (k1, v1)) = unsafe { (*self.slots.get_unchecked(i), *self.slots.get_unchecked(i + 1)) };
        let (hit0, hit1) = (k0 == key, k1 == key);
        if (hit0 | hit1) && key != K::EMPTY {
            return Some(if hit0 { v0 } else { v1 });
        }
        if k0 == K::EMPTY || k1 == K::EMPTY {
            // Probing fills `home` first, then `home + 1`: an empty one among them means `key` is absent.
            return None;
        }
        let (k, v) = self.slots[self.find(key)];
        (k == key && key != K::EMPTY).then_some(v)
    }

    /// Every (key, value) pair, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, V)> + '_ {
        self.slots.iter().copied().filter(|(k, _)| *k != K::EMPTY)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held by the slots.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_hash_map() {
        let mut flat: FlatMap<u64, u32> = FlatMap::with_capacity(4);
        let mut std_map = HashMap::new();
        let mut rng = crate::xorshift::XorShift::new(0x9e37_79b9_7f4a_7c15);
        for i in 0..20_000u32 {
            let seed = rng.next();
            // Few distinct keys, so replacements happen, plus structured keys that share low bits.
            let key = if i % 2 == 0 { seed % 5_000 } else { (seed % 3_000) << 40 };
            if i % 3 == 0 {
                flat.insert_if_absent(key, i);
                std_map.entry(key).or_insert(i);
            } else {
                flat.insert(key, i);
                std_map.insert(key, i);
            }
        }
        assert_eq!(flat.len(), std_map.len());
        for (&k, &v) in &std_map {
            assert_eq!(flat.get(k), Some(v));
        }
        for k in 5_000..6_000u64 {
            assert_eq!(flat.get(k), std_map.get(&k).copied());
        }
        assert_eq!(flat.get(u64::MAX), None);
        assert!(flat.heap_bytes() <= 16 * 4 * flat.len().next_power_of_two());
    }

    #[test]
    fn wide_keys() {
        let mut flat: FlatMap<u128, u8> = FlatMap::with_capacity(0);
        for k in 0..1_000u128 {
            flat.insert(k << 100 | k, (k % 200) as u8);
        }
        for k in 0..1_000u128 {
            assert_eq!(flat.get(k << 100 | k), Some((k % 200) as u8));
            assert_eq!(flat.get(k << 101 | 1), None);
        }
    }
}
