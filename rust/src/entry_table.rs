//! `EntryTable`: the response cache's per-entry bookkeeping in ~100 bytes an entry (exact-key lookup,
//! LRU order, expiry order, where the entry's bytes live), instead of several Python objects each.
//!
//! Pure data structure, no I/O: the caller keeps the entry's bytes elsewhere (the cache's body log) and
//! stores only their location here. Ids are `generation << 32 | slot`, so an id is never reused for a
//! different entry (they double as the HNSW labels) and lookups by id are an array index.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

const NIL: u32 = u32::MAX;

/// What the table keeps of one entry. `loc`/`*_len` say where its key, turn and body bytes are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    pub key_hash: u64,
    pub partition: u32,
    pub tenant: u32,
    pub created: f64,
    pub expires: f64,
    pub loc: u64,
    pub key_len: u32,
    pub turn_len: u32,
    pub body_len: u32,
    /// Bytes accounted for this entry against the cache's bound.
    pub size: u32,
    /// The verifier's `numbers_digest` of the entry's turn (0: unknown): most semantic neighbours are
    /// ruled out by it without reading the turn.
    pub numbers: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    entry: Entry,
    generation: u32,
    live: bool,
    prev: u32, // towards the least recently used end
    next: u32, // towards the most recently used end
}

/// Entries by exact-key hash and by id, in LRU order, with an expiry queue.
#[derive(Default)]
pub struct EntryTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_key: HashMap<u64, u32>,
    // (expires as ordered bits, id); stale rows (removed or replaced entries) are skipped when popped.
    expiry: BinaryHeap<Reverse<(u64, u64)>>,
    lru: u32, // least recently used
    mru: u32, // most recently used
    len: usize,
    bytes: u64,
}

/// Total order of non-negative finite f64 through their bits; NaN and negatives sort first.
fn time_bits(t: f64) -> u64 {
    if t.is_nan() || t <= 0.0 {
        0
    } else {
        t.to_bits()
    }
}

fn id_of(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(slot)
}

impl EntryTable {
    pub fn new() -> EntryTable {
        EntryTable {
            lru: NIL,
            mru: NIL,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sum of the live entries' `size`.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Approximate heap bytes held by the table itself.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.free.capacity() * 4
            + self.by_key.capacity() * 13
            + self.expiry.capacity() * 16
    }

    fn slot_of(&self, id: u64) -> Option<u32> {
        let slot = (id & 0xFFFF_FFFF) as u32;
        let s = self.slots.get(slot as usize)?;
        (s.live && u64::from(s.generation) == id >> 32).then_some(slot)
    }

    /// Adds an entry as the most recently used and returns its id. An entry already held under the same
    /// key hash is removed first and returned with its id.
    pub fn insert(&mut self, entry: Entry) -> (u64, Option<(u64, Entry)>) {
        let replaced = self
            .find(entry.key_hash)
            .and_then(|old| self.remove(old).map(|e| (old, e)));
        let slot = match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.generation = s.generation.wrapping_add(1);
                s.entry = entry;
                s.live = true;
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("entry table holds < 2^32 slots");
                assert!(slot != NIL, "entry table full");
                self.slots.push(Slot {
                    entry,
                    generation: 0,
                    live: true,
                    prev: NIL,
                    next: NIL,
                });
                slot
            }
        };
        let id = id_of(slot, self.slots[slot as usize].generation);
        self.link_mru(slot);
        self.by_key.insert(entry.key_hash, slot);
        self.expiry.push(Reverse((time_bits(entry.expires), id)));
        self.len += 1;
        self.bytes += u64::from(entry.size);
        if self.expiry.len() > 2 * self.len + 1024 {
            self.compact_expiry();
        }
        (id, replaced)
    }

    /// The id of the entry held under this key hash.
    pub fn find(&self, key_hash: u64) -> Option<u64> {
        let slot = *self.by_key.get(&key_hash)?;
        Some(id_of(slot, self.slots[slot as usize].generation))
    }

    pub fn get(&self, id: u64) -> Option<Entry> {
        self.slot_of(id).map(|slot| self.slots[slot as usize].entry)
    }

    /// Marks the entry as the most recently used; false when the id is not held.
    pub fn touch(&mut self, id: u64) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        if self.mru != slot {
            self.unlink(slot);
            self.link_mru(slot);
        }
        true
    }

    /// Moves the entry's bytes to a new location (the body log compacting).
    pub fn relocate(&mut self, id: u64, loc: u64) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        self.slots[slot as usize].entry.loc = loc;
        true
    }

    pub fn remove(&mut self, id: u64) -> Option<Entry> {
        let slot = self.slot_of(id)?;
        self.unlink(slot);
        let s = &mut self.slots[slot as usize];
        s.live = false;
        let entry = s.entry;
        if self.by_key.get(&entry.key_hash) == Some(&slot) {
            self.by_key.remove(&entry.key_hash);
        }
        self.free.push(slot);
        self.len -= 1;
        self.bytes -= u64::from(entry.size);
        Some(entry)
    }

    /// The least recently used entry's id.
    pub fn oldest(&self) -> Option<u64> {
        (self.lru != NIL).then(|| id_of(self.lru, self.slots[self.lru as usize].generation))
    }

    /// The id of an entry whose expiry time is <= `now` (the earliest first); it stays in the table
    /// until removed, and is not returned again by this call.
    pub fn pop_expired(&mut self, now: f64) -> Option<u64> {
        let limit = time_bits(now);
        while let Some(&Reverse((at, id))) = self.expiry.peek() {
            if at > limit {
                return None;
            }
            self.expiry.pop();
            if let Some(slot) = self.slot_of(id) {
                if time_bits(self.slots[slot as usize].entry.expires) == at {
                    return Some(id);
                }
            }
        }
        None
    }

    /// Ids of the live entries whose `loc` is in `[lo, hi)` (what a body-log segment still holds).
    pub fn ids_in(&self, lo: u64, hi: u64) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live && s.entry.loc >= lo && s.entry.loc < hi)
            .map(|(i, s)| id_of(i as u32, s.generation))
            .collect()
    }

    pub fn clear(&mut self) {
        *self = EntryTable::new();
    }

    fn compact_expiry(&mut self) {
        let heap = std::mem::take(&mut self.expiry);
        let rows: Vec<_> = heap
            .into_iter()
            .filter(|Reverse((at, id))| {
                self.slot_of(*id)
                    .is_some_and(|slot| time_bits(self.slots[slot as usize].entry.expires) == *at)
            })
            .collect();
        self.expiry = rows.into();
    }

    fn link_mru(&mut self, slot: u32) {
        let old = self.mru;
        {
            let s = &mut self.slots[slot as usize];
            s.prev = old;
            s.next = NIL;
        }
        if old != NIL {
            self.slots[old as usize].next = slot;
        } else {
            self.lru = slot;
        }
        self.mru = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = {
            let s = &self.slots[slot as usize];
            (s.prev, s.next)
        };
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.lru = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.mru = prev;
        }
        let s = &mut self.slots[slot as usize];
        s.prev = NIL;
        s.next = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn entry(key_hash: u64, expires: f64, size: u32) -> Entry {
        Entry {
            key_hash,
            partition: 1,
            tenant: 2,
            created: 0.0,
            expires,
            loc: key_hash * 10,
            key_len: 3,
            turn_len: 4,
            body_len: 5,
            size,
            numbers: key_hash ^ 7,
        }
    }

    #[test]
    fn finds_touches_and_evicts_in_lru_order() {
        let mut t = EntryTable::new();
        let a = t.insert(entry(1, 100.0, 10)).0;
        let b = t.insert(entry(2, 100.0, 20)).0;
        let c = t.insert(entry(3, 100.0, 30)).0;
        assert_eq!((t.len(), t.bytes()), (3, 60));
        assert_eq!(t.find(2), Some(b));
        assert_eq!(t.oldest(), Some(a));
        assert!(t.touch(a));
        assert_eq!(t.oldest(), Some(b));
        assert_eq!(t.remove(b).map(|e| e.size), Some(20));
        assert_eq!(t.oldest(), Some(c));
        assert_eq!((t.len(), t.bytes()), (2, 40));
        assert_eq!(t.find(2), None);
        assert_eq!(t.get(b), None);
        assert!(!t.touch(b));
    }

    #[test]
    fn ids_are_not_reused_for_a_new_entry() {
        let mut t = EntryTable::new();
        let a = t.insert(entry(1, 100.0, 1)).0;
        t.remove(a);
        let b = t.insert(entry(2, 100.0, 1)).0;
        assert_ne!(a, b);
        assert_eq!(a & 0xFFFF_FFFF, b & 0xFFFF_FFFF); // same slot, new generation
        assert_eq!(t.get(a), None);
        assert_eq!(t.get(b).map(|e| e.key_hash), Some(2));
    }

    #[test]
    fn same_key_replaces_and_reports_the_old_entry() {
        let mut t = EntryTable::new();
        let a = t.insert(entry(7, 100.0, 5)).0;
        let (b, old) = t.insert(entry(7, 200.0, 6));
        assert_eq!(old.map(|(id, e)| (id, e.size)), Some((a, 5)));
        assert_eq!((t.len(), t.bytes(), t.find(7)), (1, 6, Some(b)));
    }

    #[test]
    fn expiry_pops_earliest_first_and_skips_removed_entries() {
        let mut t = EntryTable::new();
        let late = t.insert(entry(1, 30.0, 1)).0;
        let early = t.insert(entry(2, 10.0, 1)).0;
        let gone = t.insert(entry(3, 5.0, 1)).0;
        t.remove(gone);
        assert_eq!(t.pop_expired(4.0), None);
        assert_eq!(t.pop_expired(20.0), Some(early));
        assert_eq!(t.pop_expired(20.0), None); // popped once; still held until removed
        assert!(t.get(early).is_some());
        assert_eq!(t.pop_expired(31.0), Some(late));
    }

    #[test]
    fn relocate_and_ids_in_range() {
        let mut t = EntryTable::new();
        let ids: Vec<u64> = (1..=5).map(|k| t.insert(entry(k, 100.0, 1)).0).collect(); // loc = k * 10
        let mut inside = t.ids_in(20, 40);
        inside.sort_unstable();
        assert_eq!(inside, vec![ids[1], ids[2]]);
        assert!(t.relocate(ids[1], 1000));
        assert_eq!(t.ids_in(20, 40), vec![ids[2]]);
        assert_eq!(t.get(ids[1]).map(|e| e.loc), Some(1000));
    }

    /// The table against a plain model (a deque in LRU order) under a long pseudo-random workload.
    #[test]
    fn matches_a_simple_model() {
        let mut t = EntryTable::new();
        let mut model: VecDeque<(u64, u64, f64)> = VecDeque::new(); // (id, key, expires), LRU first
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut now = 0.0;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 300;
            match x % 7 {
                0..=2 => {
                    let expires = now + (x % 50) as f64;
                    let (id, old) = t.insert(entry(key, expires, (key % 9) as u32));
                    if let Some(pos) = model.iter().position(|m| m.1 == key) {
                        let (old_id, ..) = model.remove(pos).unwrap();
                        assert_eq!(old.map(|o| o.0), Some(old_id));
                    } else {
                        assert!(old.is_none());
                    }
                    model.push_back((id, key, expires));
                }
                3 | 4 => {
                    let found = t.find(key);
                    let pos = model.iter().position(|m| m.1 == key);
                    assert_eq!(found, pos.map(|p| model[p].0));
                    if let Some(p) = pos {
                        assert!(t.touch(found.unwrap()));
                        let row = model.remove(p).unwrap();
                        model.push_back(row);
                    }
                }
                5 => {
                    assert_eq!(t.oldest(), model.front().map(|m| m.0));
                    if let Some((id, ..)) = model.pop_front() {
                        assert!(t.remove(id).is_some());
                    }
                }
                _ => {
                    now += 1.0;
                    while let Some(id) = t.pop_expired(now) {
                        let pos = model
                            .iter()
                            .position(|m| m.0 == id)
                            .expect("expired id is held");
                        assert!(model[pos].2 <= now);
                        model.remove(pos);
                        t.remove(id);
                    }
                    assert!(
                        model.iter().all(|m| m.2 > now),
                        "step {step}: an expired entry was missed"
                    );
                }
            }
            assert_eq!(t.len(), model.len());
            let bytes: u64 = model.iter().map(|m| m.1 % 9).sum();
            assert_eq!(t.bytes(), bytes);
        }
    }
}
