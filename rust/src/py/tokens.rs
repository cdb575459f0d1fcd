//! Bindings for token counting (`count_tokens`, `estimate_tokens`) and the shared input/panic guards.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::tokens::{self, EncodingName};

/// Copies a Python str into an owned String. Lone surrogates (which UTF-8 cannot hold) are replaced by
/// U+FFFD after re-pairing valid surrogate pairs, exactly as tiktoken's `encode` does, so such text is
/// counted the way tiktoken counts it instead of raising.
pub(super) fn owned_text(text: &Bound<'_, PyString>) -> PyResult<String> {
    match text.to_str() {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => {
            let utf16 = text.call_method1("encode", ("utf-16", "surrogatepass"))?;
            let repaired = utf16.call_method1("decode", ("utf-16", "replace"))?;
            Ok(repaired.cast_into::<PyString>()?.to_str()?.to_owned())
        }
    }
}

/// Runs `work` with the GIL released; a panic inside becomes a RuntimeError instead of crossing into Python.
pub(super) fn detached<T: Send>(py: Python<'_>, work: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(move || catch_unwind(AssertUnwindSafe(work)))
        .map_err(|_| PyRuntimeError::new_err("fastroute._native: internal error (panic) while analysing text"))
}

pub(super) fn encoding_name(name: &str) -> PyResult<EncodingName> {
    EncodingName::parse(name).map_err(PyValueError::new_err)
}

/// Exact token count of `text` under `encoding` ("cl100k_base" or "o200k_base").
#[pyfunction]
#[pyo3(signature = (text, encoding = "cl100k_base"))]
fn count_tokens(py: Python<'_>, text: &Bound<'_, PyString>, encoding: &str) -> PyResult<usize> {
    let name = encoding_name(encoding)?;
    let text = owned_text(text)?;
    detached(py, move || tokens::count(&text, name))
}

/// `ceil(cl100k_base count * factor)`: the estimate for models without a public tokenizer.
#[pyfunction]
fn estimate_tokens(py: Python<'_>, text: &Bound<'_, PyString>, factor: f64) -> PyResult<usize> {
    let text = owned_text(text)?;
    detached(py, move || tokens::estimate(&text, factor))
}

/// Token ids of `text` (tiktoken's `encode_ordinary`), for tests and debugging.
#[pyfunction]
#[pyo3(signature = (text, encoding = "cl100k_base"))]
fn encode_tokens(py: Python<'_>, text: &Bound<'_, PyString>, encoding: &str) -> PyResult<Vec<u32>> {
    let name = encoding_name(encoding)?;
    let text = owned_text(text)?;
    detached(py, move || tokens::Encoding::get(name).encode(&text))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(encode_tokens, m)?)?;
    Ok(())
}
