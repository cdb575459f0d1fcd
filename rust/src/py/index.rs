//! Bindings for the HNSW vector index (`VectorIndex`): numpy in, numpy out, GIL released while it works.

use std::sync::RwLock;

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::hnsw::{Hnsw, IndexError, Precision};

fn to_py(e: IndexError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn poisoned<T>(_: T) -> PyErr {
    PyRuntimeError::new_err("vector index lock poisoned by an earlier panic")
}

/// HNSW index over unit vectors (inner product). Searches from many threads run in parallel; writes are
/// exclusive.
#[pyclass(name = "VectorIndex", module = "fastroute._native", frozen)]
pub struct PyVectorIndex {
    inner: RwLock<Hnsw>,
}

/// The query as an owned vector (one copy of a contiguous array, element by element otherwise).
fn query_vec(vector: &PyReadonlyArray1<'_, f32>) -> Vec<f32> {
    match vector.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => vector.as_array().iter().copied().collect(),
    }
}

type SearchResult<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<f32>>);
type BatchResult<'py> = (Bound<'py, PyArray2<u64>>, Bound<'py, PyArray2<f32>>);

#[pymethods]
impl PyVectorIndex {
    #[new]
    #[pyo3(signature = (dim, m = 16, ef_construction = 200, max_elements = 1_000_000, half = false, int8 = false))]
    fn new(
        dim: usize,
        m: usize,
        ef_construction: usize,
        max_elements: usize,
        half: bool,
        int8: bool,
    ) -> PyResult<Self> {
        if dim == 0 {
            return Err(PyValueError::new_err("dim must be > 0"));
        }
        let precision = match (half, int8) {
            (false, false) => Precision::F32,
            (true, false) => Precision::F16,
            (false, true) => Precision::I8,
            (true, true) => return Err(PyValueError::new_err("choose one of half and int8")),
        };
        Ok(PyVectorIndex {
            inner: RwLock::new(Hnsw::with_storage(
                dim,
                m,
                ef_construction,
                max_elements,
                precision,
            )),
        })
    }

    /// "f32", "f16" or "i8": how vectors are stored (queries are always f32).
    #[getter]
    fn precision(&self) -> PyResult<&'static str> {
        Ok(match self.inner.read().map_err(poisoned)?.precision() {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::I8 => "i8",
        })
    }

    /// True when vectors are stored as f16 (half the memory); queries are always f32.
    #[getter]
    fn half(&self) -> PyResult<bool> {
        Ok(self.inner.read().map_err(poisoned)?.is_half())
    }

    /// Bytes held by the graph and its vectors.
    #[getter]
    fn memory_bytes(&self) -> PyResult<usize> {
        Ok(self.inner.read().map_err(poisoned)?.memory_bytes())
    }

    #[getter]
    fn dim(&self) -> PyResult<usize> {
        Ok(self.inner.read().map_err(poisoned)?.dim())
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.inner.read().map_err(poisoned)?.len())
    }

    fn __contains__(&self, id: u64) -> PyResult<bool> {
        Ok(self.inner.read().map_err(poisoned)?.contains(id))
    }

    /// Adds (or replaces) one vector per id; `vectors` is float32 of shape (len(ids), dim).
    fn add(
        &self,
        py: Python<'_>,
        ids: PyReadonlyArray1<'_, u64>,
        vectors: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<()> {
        let ids: Vec<u64> = ids.as_array().iter().copied().collect();
        let arr = vectors.as_array();
        if arr.nrows() != ids.len() {
            return Err(PyValueError::new_err(format!(
                "{} ids but {} vectors",
                ids.len(),
                arr.nrows()
            )));
        }
        let dim = arr.ncols();
        let flat: Vec<f32> = arr.iter().copied().collect();
        py.detach(|| {
            let mut idx = self.inner.write().map_err(poisoned)?;
            if dim != idx.dim() {
                return Err(to_py(IndexError::DimMismatch {
                    expected: idx.dim(),
                    got: dim,
                }));
            }
            for (id, v) in ids.iter().zip(flat.chunks_exact(dim)) {
                idx.insert(*id, v).map_err(to_py)?;
            }
            Ok(())
        })
    }

    /// Removes `id`; returns whether it was present.
    fn delete(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        py.detach(|| Ok(self.inner.write().map_err(poisoned)?.delete(id)))
    }

    /// The `k` nearest ids and their inner-product similarities, best first.
    #[pyo3(signature = (vector, k = 1, ef = 64))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        vector: PyReadonlyArray1<'py, f32>,
        k: usize,
        ef: usize,
    ) -> PyResult<SearchResult<'py>> {
        let found = self.search_pairs(py, vector, k, ef, None)?;
        let (ids, sims): (Vec<u64>, Vec<f32>) = found.into_iter().unzip();
        Ok((ids.into_pyarray(py), sims.into_pyarray(py)))
    }

    /// `search` as a list of `(id, similarity)`, best first: no arrays to build and convert when the
    /// caller walks a handful of results in Python (the response cache). With `min_similarity`, the caller
    /// wants only results at least that similar: the search stops sooner once it has found one (the same
    /// results at or above it; fewer, or none, below it).
    #[pyo3(signature = (vector, k = 1, ef = 64, min_similarity = None))]
    fn search_pairs(
        &self,
        py: Python<'_>,
        vector: PyReadonlyArray1<'_, f32>,
        k: usize,
        ef: usize,
        min_similarity: Option<f32>,
    ) -> PyResult<Vec<(u64, f32)>> {
        let q = query_vec(&vector);
        py.detach(|| {
            self.inner
                .read()
                .map_err(poisoned)?
                .search_near(&q, k, ef, min_similarity)
                .map_err(to_py)
        })
    }

    /// Searches each row of `vectors`; rows with fewer than `k` results are padded with id 2**64-1, sim -inf.
    #[pyo3(signature = (vectors, k = 1, ef = 64))]
    fn search_batch<'py>(
        &self,
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
        k: usize,
        ef: usize,
    ) -> PyResult<BatchResult<'py>> {
        let arr = vectors.as_array();
        let (n, dim) = (arr.nrows(), arr.ncols());
        let flat: Vec<f32> = arr.iter().copied().collect();
        let (ids, sims) = py.detach(|| -> PyResult<(Vec<u64>, Vec<f32>)> {
            let idx = self.inner.read().map_err(poisoned)?;
            let mut ids = vec![u64::MAX; n * k];
            let mut sims = vec![f32::NEG_INFINITY; n * k];
            for (r, q) in flat.chunks_exact(dim.max(1)).enumerate().take(n) {
                for (j, (id, s)) in idx.search(q, k, ef).map_err(to_py)?.into_iter().enumerate() {
                    ids[r * k + j] = id;
                    sims[r * k + j] = s;
                }
            }
            Ok((ids, sims))
        })?;
        let ids = Array2::from_shape_vec((n, k), ids)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let sims = Array2::from_shape_vec((n, k), sims)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok((ids.into_pyarray(py), sims.into_pyarray(py)))
    }

    /// The whole index as bytes (see `from_bytes`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes =
            py.detach(|| Ok::<_, PyErr>(self.inner.read().map_err(poisoned)?.to_bytes()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let h = py.detach(move || Hnsw::from_bytes(&data)).map_err(to_py)?;
        Ok(PyVectorIndex {
            inner: RwLock::new(h),
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyVectorIndex>()?;
    Ok(())
}
