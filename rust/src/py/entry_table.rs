//! Bindings for the cache's `EntryTable` (rust/src/entry_table.rs): sub-microsecond calls, no GIL release.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::entry_table::{Entry, EntryTable};

/// One entry as the table keeps it (a copy; changing the table does not change it).
#[pyclass(name = "TableEntry", module = "fastroute._native", frozen, get_all)]
pub struct PyTableEntry {
    key_hash: u64,
    partition: u32,
    tenant: u32,
    created: f64,
    expires: f64,
    loc: u64,
    key_len: u32,
    turn_len: u32,
    body_len: u32,
    size: u32,
    numbers: u64,
}

impl From<Entry> for PyTableEntry {
    fn from(e: Entry) -> Self {
        PyTableEntry {
            key_hash: e.key_hash,
            partition: e.partition,
            tenant: e.tenant,
            created: e.created,
            expires: e.expires,
            loc: e.loc,
            key_len: e.key_len,
            turn_len: e.turn_len,
            body_len: e.body_len,
            size: e.size,
            numbers: e.numbers,
        }
    }
}

/// Per-entry bookkeeping of the response cache: exact-key hash -> id, LRU order, expiry order, byte total.
#[pyclass(name = "EntryTable", module = "fastroute._native")]
pub struct PyEntryTable {
    inner: EntryTable,
}

#[pymethods]
impl PyEntryTable {
    #[new]
    fn new() -> Self {
        PyEntryTable {
            inner: EntryTable::new(),
        }
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Sum of the held entries' `size`.
    #[getter]
    fn bytes(&self) -> u64 {
        self.inner.bytes()
    }

    /// Heap bytes held by the table itself.
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }

    /// Adds an entry as the most recently used; returns `(id, replaced)` where `replaced` is
    /// `(old_id, old_entry)` when an entry with the same key hash was held (it is removed). `numbers` is
    /// the verifier's `prompt_numbers_digest` of the entry's turn (0: unknown).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (key_hash, partition, tenant, created, expires, loc, key_len, turn_len, body_len, size, numbers=0))]
    fn insert(
        &mut self,
        key_hash: u64,
        partition: u32,
        tenant: u32,
        created: f64,
        expires: f64,
        loc: u64,
        key_len: u32,
        turn_len: u32,
        body_len: u32,
        size: u32,
        numbers: u64,
    ) -> PyResult<(u64, Option<(u64, PyTableEntry)>)> {
        if self.inner.len() >= (u32::MAX - 1) as usize {
            return Err(PyValueError::new_err("entry table is full"));
        }
        let entry = Entry {
            key_hash,
            partition,
            tenant,
            created,
            expires,
            loc,
            key_len,
            turn_len,
            body_len,
            size,
            numbers,
        };
        let (id, old) = self.inner.insert(entry);
        Ok((id, old.map(|(old_id, e)| (old_id, e.into()))))
    }

    /// The id held under this key hash, or None.
    fn find(&self, key_hash: u64) -> Option<u64> {
        self.inner.find(key_hash)
    }

    fn get(&self, id: u64) -> Option<PyTableEntry> {
        self.inner.get(id).map(Into::into)
    }

    /// Marks the entry most recently used; False when the id is not held.
    fn touch(&mut self, id: u64) -> bool {
        self.inner.touch(id)
    }

    /// Points the entry at new byte location; False when the id is not held.
    fn relocate(&mut self, id: u64, loc: u64) -> bool {
        self.inner.relocate(id, loc)
    }

    fn remove(&mut self, id: u64) -> Option<PyTableEntry> {
        self.inner.remove(id).map(Into::into)
    }

    /// The least recently used entry's id, or None when empty.
    fn oldest(&self) -> Option<u64> {
        self.inner.oldest()
    }

    /// An id whose expiry is <= now (earliest first), returned once; the entry stays until removed.
    fn pop_expired(&mut self, now: f64) -> Option<u64> {
        self.inner.pop_expired(now)
    }

    /// Ids of the entries whose location is in [lo, hi).
    fn ids_in(&self, lo: u64, hi: u64) -> Vec<u64> {
        self.inner.ids_in(lo, hi)
    }

    fn clear(&mut self) {
        self.inner.clear();
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEntryTable>()?;
    m.add_class::<PyTableEntry>()?;
    Ok(())
}
