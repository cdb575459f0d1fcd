//! Bindings for prompt analysis (`Analyzer`, `normalize_key`, `last_user_turn`).

use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyString;

use super::embed::PyStaticEmbedder;
use super::tokens::{detached, encoding_name, owned_text};
use crate::analyze;
use crate::embed::StaticEmbedder;
use std::sync::Arc;

/// What `Analyzer.analyze` returns: built in Rust, so the hot path runs no Python-level constructor.
#[pyclass(name = "Analysis", module = "fastroute._native", frozen, get_all)]
pub struct PyAnalysis {
    features: Py<PyArray1<f32>>,
    embedding: Option<Py<PyArray1<f32>>>,
    key: Py<PyString>,
    tokens: usize,
}

#[pymethods]
impl PyAnalysis {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Analysis(tokens={}, key={:?}, embedding={})",
            self.tokens,
            self.key.bind(py).to_string_lossy(),
            if self.embedding.is_some() { "yes" } else { "None" }
        )
    }
}

/// One call per prompt: `analyze(text) -> Analysis(features, embedding | None, key, tokens)`.
#[pyclass(name = "Analyzer", module = "fastroute._native", frozen)]
pub struct PyAnalyzer {
    inner: analyze::Analyzer,
}

#[pymethods]
impl PyAnalyzer {
    #[new]
    #[pyo3(signature = (encoding = "cl100k_base", tokenizer_json = None, embedding_table = None, embedding_dim = 0))]
    fn new(
        py: Python<'_>,
        encoding: &str,
        tokenizer_json: Option<PyBackedBytes>,
        embedding_table: Option<PyBackedBytes>,
        embedding_dim: usize,
    ) -> PyResult<Self> {
        let name = encoding_name(encoding)?;
        let embedder = match (tokenizer_json, embedding_table) {
            (None, None) => None,
            (Some(tokenizer), Some(table)) => {
                if embedding_dim == 0 {
                    return Err(PyValueError::new_err(
                        "embedding_dim must be positive with an embedding table",
                    ));
                }
                let built = detached(py, move || {
                    // The embedder keeps the Python bytes object itself: no copy of the 7.8 MB table.
                    StaticEmbedder::from_table(&tokenizer, Box::new(table), embedding_dim)
                })?;
                Some(built.map_err(PyValueError::new_err)?)
            }
            _ => return Err(PyValueError::new_err("tokenizer_json and embedding_table go together")),
        };
        // Builds the encoding's tables now rather than on the first request.
        let inner = detached(py, move || analyze::Analyzer::new(name, embedder))?;
        Ok(PyAnalyzer { inner })
    }

    /// Features float32[FEATURE_DIM], embedding float32[dim] | None, exact-cache key, token count.
    fn analyze(&self, py: Python<'_>, text: &Bound<'_, PyString>) -> PyResult<PyAnalysis> {
        let text = owned_text(text)?;
        let inner = &self.inner;
        let a = detached(py, move || inner.analyze(&text))?;
        // Small arrays: one numpy allocation and a copy beat wrapping the Vec (array + capsule objects).
        Ok(PyAnalysis {
            features: PyArray1::from_slice(py, &a.features).unbind(),
            embedding: a.embedding.map(|e| PyArray1::from_slice(py, &e).unbind()),
            key: PyString::new(py, &a.key).unbind(),
            tokens: a.tokens,
        })
    }

    #[getter]
    fn encoding(&self) -> &'static str {
        self.inner.encoding().as_str()
    }

    #[getter]
    fn embedding_dim(&self) -> usize {
        self.inner.embedding_dim()
    }

    /// The analyzer's `StaticEmbedder` (same table in memory, not a copy), or None without one.
    #[getter]
    fn embedder(&self) -> Option<PyStaticEmbedder> {
        self.inner.embedder().map(|e| PyStaticEmbedder { inner: Arc::clone(e) })
    }
}

/// The exact-cache key of a conversation text.
#[pyfunction]
fn normalize_key(py: Python<'_>, text: &Bound<'_, PyString>) -> PyResult<String> {
    let text = owned_text(text)?;
    detached(py, move || crate::normalize::normalize_key(&text))
}

/// The last user turn of a conversation text (the whole text without `<user> ` markers).
#[pyfunction]
fn last_user_turn(text: &Bound<'_, PyString>) -> PyResult<String> {
    Ok(analyze::last_user_turn(&owned_text(text)?).to_owned())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAnalyzer>()?;
    m.add_class::<PyAnalysis>()?;
    m.add_function(wrap_pyfunction!(normalize_key, m)?)?;
    m.add_function(wrap_pyfunction!(last_user_turn, m)?)?;
    m.add("FEATURE_VERSION", crate::features::FEATURE_VERSION)?;
    m.add("FEATURE_DIM", crate::features::FEATURE_DIM)?;
    Ok(())
}
