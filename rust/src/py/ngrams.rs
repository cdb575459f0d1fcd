//! Bindings for the router's hashed word n-grams (`ngram_buckets`, `ngram_vector`, `NgramTable`).

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::sync::Arc;

use crate::ngrams;

/// Distinct hashed n-gram buckets of `text`, sorted (uint32); each weighs `1 / sqrt(len)` in the vector.
#[pyfunction]
fn ngram_buckets<'py>(py: Python<'py>, text: String) -> Bound<'py, PyArray1<u32>> {
    py.detach(move || ngrams::distinct_buckets(&text)).into_pyarray(py)
}

/// The dense, L2-normalised n-gram vector of `text` (float32, length `NGRAM_BUCKETS`).
#[pyfunction]
fn ngram_vector<'py>(py: Python<'py>, text: String) -> Bound<'py, PyArray1<f32>> {
    let out = py.detach(move || {
        let mut out = vec![0.0f32; ngrams::NGRAM_BUCKETS];
        ngrams::vector(&text, &mut out);
        out
    });
    out.into_pyarray(py)
}

/// A weight per n-gram bucket; `dot(text)` is `ngram_vector(text) @ weights` without building the vector.
#[pyclass(name = "NgramTable", module = "fastroute._native", frozen)]
pub struct PyNgramTable {
    inner: Arc<ngrams::NgramTable>,
}

#[pymethods]
impl PyNgramTable {
    #[new]
    fn new(weights: PyReadonlyArray1<'_, f32>) -> PyResult<Self> {
        let owned = weights.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?.to_vec();
        let inner = ngrams::NgramTable::new(owned).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyNgramTable { inner: Arc::new(inner) })
    }

    fn dot(&self, py: Python<'_>, text: String) -> f64 {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.dot(&text))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ngram_buckets, m)?)?;
    m.add_function(wrap_pyfunction!(ngram_vector, m)?)?;
    m.add_class::<PyNgramTable>()?;
    m.add("NGRAM_VERSION", ngrams::NGRAM_VERSION)?;
    m.add("NGRAM_BUCKETS", ngrams::NGRAM_BUCKETS)?;
    m.add("NGRAM_WINDOW_BYTES", ngrams::WINDOW_BYTES)?;
    Ok(())
}
