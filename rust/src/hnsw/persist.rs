//! Persistence of the HNSW index to and from owned bytes (little-endian, versioned); never touches files.

use super::{advise_huge_pages, Hnsw, IndexError, Precision};

impl Hnsw {
    /// Serialises the whole index (little-endian, versioned).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.data0.len() * 4 + self.labels.len() * 10);
        out.extend_from_slice(MAGIC);
        for v in [
            self.dim,
            self.m,
            self.ef_construction,
            self.max_elements,
            self.labels.len(),
            self.max_level,
            self.entry.map_or(usize::MAX, |e| e as usize),
        ] {
            out.extend_from_slice(&(v as u64).to_le_bytes());
        }
        out.extend_from_slice(&self.rng.to_le_bytes());
        let precision: u64 = match self.precision {
            Precision::F32 => 0,
            Precision::F16 => 1,
            Precision::I8 => 2,
        };
        out.extend_from_slice(&precision.to_le_bytes());
        for i in 0..self.labels.len() {
            out.extend_from_slice(&self.labels[i].to_le_bytes());
            out.push(self.levels[i]);
            out.push(self.deleted[i] as u8);
        }
        // Format kept from the first version: all vectors, then all layer-0 link blocks.
        for node in self.data0.chunks_exact(self.stride0) {
            node[1 + self.m0..]
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        for node in self.data0.chunks_exact(self.stride0) {
            node[..1 + self.m0]
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        // Each node's upper blocks in node order: `upper` holds them so already.
        self.upper
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        out
    }

    /// Restores an index written by `to_bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Hnsw, IndexError> {
        let mut r = Reader { b: bytes, pos: 0 };
        let version = match r.take(MAGIC.len())? {
            m if m == MAGIC => 2,
            m if m == MAGIC_V1 => 1,
            _ => return Err(IndexError::Corrupt("bad magic")),
        };
        let dim = r.u64()? as usize;
        let m = r.u64()? as usize;
        let ef_c = r.u64()? as usize;
        let max_elements = r.u64()? as usize;
        let n = r.u64()? as usize;
        let max_level = r.u64()? as usize;
        let entry = r.u64()?;
        let rng = r.u64()?;
        let precision = match version {
            1 => Precision::F32,
            _ => match r.u64()? {
                0 => Precision::F32,
                1 => Precision::F16,
                2 => Precision::I8,
                _ => return Err(IndexError::Corrupt("bad precision flag")),
            },
        };
        if dim == 0 || !(2..=128).contains(&m) || n > bytes.len() || max_level > 16 {
            return Err(IndexError::Corrupt("bad header"));
        }
        let mut h = Hnsw::with_storage(dim, m, ef_c, max_elements, precision);
        h.rng = rng;
        h.max_level = max_level;
        h.entry = if entry == u64::MAX {
            None
        } else {
            Some(entry as u32)
        };
        if matches!(h.entry, Some(e) if e as usize >= n) {
            return Err(IndexError::Corrupt("entry point out of range"));
        }
        for i in 0..n {
            let label = r.u64()?;
            let level = r.take(1)?[0];
            let deleted = r.take(1)?[0] != 0;
            if level as usize > max_level {
                return Err(IndexError::Corrupt("level above max level"));
            }
            h.labels.push(label);
            h.levels.push(level);
            h.deleted.push(deleted);
            if deleted {
                h.free.push(i as u32);
            } else {
                h.by_label.insert(label, i as u32);
            }
        }
        let vectors = r.u32s(
            n.checked_mul(h.vwords)
                .ok_or(IndexError::Corrupt("size overflow"))?,
        )?;
        let links0 = r.u32s(n * (h.m0 + 1))?;
        let ok0 = links0
            .chunks_exact(h.m0 + 1)
            .all(|c| c[0] as usize <= h.m0 && c[1..].iter().all(|&x| (x as usize) < n));
        h.data0 = Vec::with_capacity(n * h.stride0);
        advise_huge_pages(&h.data0);
        for (links, v) in links0
            .chunks_exact(h.m0 + 1)
            .zip(vectors.chunks_exact(h.vwords))
        {
            h.data0.extend_from_slice(links);
            h.data0.extend_from_slice(v);
        }
        let mut words = 0usize;
        for &level in &h.levels {
            h.upper_at.push(
                u32::try_from(words).map_err(|_| IndexError::Corrupt("upper layers too large"))?,
            );
            words += level as usize * (h.m + 1);
        }
        h.upper = r.u32s(words)?;
        if r.pos != bytes.len() {
            return Err(IndexError::Corrupt("trailing bytes"));
        }
        // Validate links so a corrupt buffer cannot index out of bounds later.
        let ok_up = h
            .upper
            .chunks_exact(h.m + 1)
            .all(|c| c[0] as usize <= h.m && c[1..].iter().all(|&x| (x as usize) < n));
        if !ok0 || !ok_up {
            return Err(IndexError::Corrupt("link out of range"));
        }
        Ok(h)
    }
}

/// Version 2 adds the precision flag (f32 / f16) after the rng state; version 1 (always f32) still loads.
const MAGIC: &[u8] = b"FRHNSW02";
const MAGIC_V1: &[u8] = b"FRHNSW01";

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], IndexError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(IndexError::Corrupt("size overflow"))?;
        if end > self.b.len() {
            return Err(IndexError::Corrupt("truncated"));
        }
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, IndexError> {
        let raw = self.take(
            n.checked_mul(4)
                .ok_or(IndexError::Corrupt("size overflow"))?,
        )?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }
}
