//! Bindings for the semantic-cache verifier (`prompt_signature`, `verify_signatures`).

use pyo3::prelude::*;

use crate::verify;

/// Opaque analysis of one prompt for the verifier (numbers, negations, options, entities, ...), computed
/// as far as comparisons need it and kept.
#[pyclass(name = "PromptSignature", module = "fastroute._native", frozen)]
pub struct PySignature {
    inner: verify::LazySignature,
}

#[pymethods]
impl PySignature {
    /// The digest of the prompt's numbers (0 for a prompt too long to verify): when two prompts' digests
    /// are both non-zero and differ, `verify_signatures` fails them on R1.
    fn numbers_digest(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.inner.numbers_digest())
    }
}

/// Keeps `text` for the verifier; compare two with `verify_signatures` (which analyses them as far as
/// the verdict needs, once).
#[pyfunction]
fn prompt_signature(text: String) -> PySignature {
    PySignature {
        inner: verify::LazySignature::new(text),
    }
}

/// `PromptSignature.numbers_digest` of `text`, for a cache to keep instead of the whole signature.
#[pyfunction]
fn prompt_numbers_digest(py: Python<'_>, text: String) -> u64 {
    py.detach(|| verify::numbers_digest(&text))
}

/// None when the cached prompt's answer may be served for the query, else the failed rule's name.
#[pyfunction]
fn verify_signatures(
    py: Python<'_>,
    query: &PySignature,
    cached: &PySignature,
) -> Option<&'static str> {
    py.detach(|| verify::verify_lazy(&query.inner, &cached.inner))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySignature>()?;
    m.add_function(wrap_pyfunction!(prompt_signature, m)?)?;
    m.add_function(wrap_pyfunction!(prompt_numbers_digest, m)?)?;
    m.add_function(wrap_pyfunction!(verify_signatures, m)?)?;
    m.add("MAX_VERIFIABLE_CHARS", verify::MAX_VERIFIABLE_CHARS)?;
    m.add("MAX_SUBSTITUTED_WORDS", verify::MAX_SUBSTITUTED_WORDS)?;
    Ok(())
}
