//! Bindings for the static embedder (`StaticEmbedder`): bytes in, numpy float32 vectors out.

use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use std::sync::Arc;

use crate::embed;

/// WordPiece tokenizer + distilled int8 table (rust/src/embed/table.rs); `embed(text)` gives an L2-normalised float32 vector.
#[pyclass(name = "StaticEmbedder", module = "fastroute._native", frozen)]
pub struct PyStaticEmbedder {
    pub inner: Arc<embed::StaticEmbedder>,
}

#[pymethods]
impl PyStaticEmbedder {
    #[new]
    fn new(py: Python<'_>, tokenizer_json: PyBackedBytes, table: PyBackedBytes, dim: usize) -> PyResult<Self> {
        let inner = py
            .detach(move || embed::StaticEmbedder::from_table(&tokenizer_json, Box::new(table), dim))
            .map_err(PyValueError::new_err)?;
        Ok(PyStaticEmbedder { inner: Arc::new(inner) })
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Unit vector of `text` (all zeros when no token is known).
    fn embed<'py>(&self, py: Python<'py>, text: String) -> Bound<'py, PyArray1<f32>> {
        let inner = Arc::clone(&self.inner);
        let v = py.detach(move || inner.embed(&text));
        v.into_pyarray(py)
    }

    /// One row per text, shape (len(texts), dim).
    fn embed_batch<'py>(&self, py: Python<'py>, texts: Vec<String>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let inner = Arc::clone(&self.inner);
        let dim = inner.dim();
        let n = texts.len();
        let flat = py.detach(move || {
            let mut flat = vec![0.0f32; n * dim];
            for (t, row) in texts.iter().zip(flat.chunks_exact_mut(dim)) {
                inner.embed_into(t, row);
            }
            flat
        });
        let arr =
            numpy::ndarray::Array2::from_shape_vec((n, dim), flat).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(arr.into_pyarray(py))
    }

    /// WordPiece ids of `text` without `[CLS]`/`[SEP]` (for tests and debugging).
    fn token_ids(&self, py: Python<'_>, text: String) -> Vec<u32> {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.tokenizer().ids(&text))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStaticEmbedder>()?;
    Ok(())
}
