//! Bindings for the complexity-router feature extractor (`extract_features`, `FEATURE_NAMES`).

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

use crate::features;

/// Router feature vector of `text` alone (float32, length `FEATURE_DIM`), without the rest of `analyze`.
#[pyfunction]
fn extract_features<'py>(py: Python<'py>, text: String) -> Bound<'py, PyArray1<f32>> {
    let out = py.detach(move || {
        let mut out = vec![0.0f32; features::FEATURE_DIM];
        features::extract(&text, &mut out);
        out
    });
    out.into_pyarray(py)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(extract_features, m)?)?;
    m.add("FEATURE_NAMES", features::FEATURE_NAMES.to_vec())?;
    m.add("FEATURE_WINDOW_BYTES", features::WINDOW_BYTES)?;
    Ok(())
}
