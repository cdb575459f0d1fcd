//! Bindings for prompt analysis (`Analyzer`, `normalize_key`, `last_user_turn`).

use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::tokens::{detached, encoding_name, owned_text};
use crate::analyze;
use crate::embed::StaticEmbedder;

type AnalysisTuple<'py> = (
    Bound<'py, PyArray1<f32>>,
    Option<Bound<'py, PyArray1<f32>>>,
    String,
    usize,
);

/// One call per prompt: `analyze(text) -> (features, embedding | None, key, tokens)`.
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
        tokenizer_json: Option<Vec<u8>>,
        embedding_table: Option<Vec<u8>>,
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
                    StaticEmbedder::from_bytes(&tokenizer, &table, embedding_dim)
                })?;
                Some(built.map_err(PyValueError::new_err)?)
            }
            _ => return Err(PyValueError::new_err("tokenizer_json and embedding_table go together")),
        };
        // Builds the encoding's tables now rather than on the first request.
        let inner = detached(py, move || analyze::Analyzer::new(name, embedder))?;
        Ok(PyAnalyzer { inner })
    }

    /// (features float32[FEATURE_DIM], embedding float32[dim] | None, exact-cache key, token count).
    fn analyze<'py>(&self, py: Python<'py>, text: &Bound<'py, PyString>) -> PyResult<AnalysisTuple<'py>> {
        let text = owned_text(text)?;
        let inner = &self.inner;
        let a = detached(py, move || inner.analyze(&text))?;
        Ok((
            a.features.into_pyarray(py),
            a.embedding.map(|e| e.into_pyarray(py)),
            a.key,
            a.tokens,
        ))
    }

    #[getter]
    fn encoding(&self) -> &'static str {
        self.inner.encoding().as_str()
    }

    #[getter]
    fn embedding_dim(&self) -> usize {
        self.inner.embedding_dim()
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
    m.add_function(wrap_pyfunction!(normalize_key, m)?)?;
    m.add_function(wrap_pyfunction!(last_user_turn, m)?)?;
    m.add("FEATURE_VERSION", crate::features::FEATURE_VERSION)?;
    m.add("FEATURE_DIM", crate::features::FEATURE_DIM)?;
    Ok(())
}
