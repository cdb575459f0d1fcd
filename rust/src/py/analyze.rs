//! Bindings for prompt analysis (`analyze`, `normalize_key`, `count_tokens_approx`).

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

#[pyfunction]
fn normalize_key(py: Python<'_>, text: String) -> String {
    py.detach(move || crate::normalize::normalize_key(&text))
}

#[pyfunction]
fn count_tokens_approx(text: &str) -> usize {
    crate::tokens::approx_count(text)
}

/// Returns (features, key, tokens).
#[pyfunction]
fn analyze<'py>(py: Python<'py>, text: String) -> (Bound<'py, PyArray1<f32>>, String, usize) {
    let a = py.detach(move || crate::analyze::analyze(&text));
    (a.features.into_pyarray(py), a.key, a.tokens)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(normalize_key, m)?)?;
    m.add_function(wrap_pyfunction!(count_tokens_approx, m)?)?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add("FEATURE_VERSION", crate::features::FEATURE_VERSION)?;
    m.add("FEATURE_DIM", crate::features::FEATURE_DIM)?;
    Ok(())
}
