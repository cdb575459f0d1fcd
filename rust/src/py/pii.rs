//! Bindings for the PII scanner (`PiiScanner`): str in, findings (kind, char span) or redacted text out.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use std::sync::Arc;

use crate::pii;

/// Below this many bytes in all, `redact_found` scans without releasing the GIL.
const DETACH_BYTES: usize = 4096;

/// Built-in kinds plus `extra` (name, regex) patterns, compiled once into one pass.
#[pyclass(name = "PiiScanner", module = "fastroute._native", frozen)]
pub struct PyPiiScanner {
    inner: Arc<pii::PiiScanner>,
}

fn char_offsets(text: &str, findings: &[pii::Finding]) -> Vec<(usize, usize)> {
    // Findings are ordered, so one forward walk turns byte offsets into Python (code point) offsets.
    let mut out = Vec::with_capacity(findings.len());
    let (mut byte, mut chars) = (0usize, 0usize);
    let mut advance = |to: usize| {
        chars += text[byte..to].chars().count();
        byte = to;
        chars
    };
    for f in findings {
        let s = advance(f.start);
        let e = advance(f.end);
        out.push((s, e));
    }
    out
}

#[pymethods]
impl PyPiiScanner {
    #[new]
    #[pyo3(signature = (extra = Vec::new()))]
    fn new(py: Python<'_>, extra: Vec<(String, String)>) -> PyResult<Self> {
        let inner = py
            .detach(move || pii::PiiScanner::new(&extra))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyPiiScanner {
            inner: Arc::new(inner),
        })
    }

    /// Every kind this scanner reports (built-in first, then the extra patterns' names).
    #[getter]
    fn kinds(&self) -> Vec<String> {
        self.inner.kinds().to_vec()
    }

    /// Findings as (kind, start, end) with str (code point) offsets, left to right.
    fn scan(&self, py: Python<'_>, text: String) -> Vec<(String, usize, usize)> {
        let inner = Arc::clone(&self.inner);
        let (found, spans) = py.detach(move || {
            let found = inner.scan(&text);
            let spans = char_offsets(&text, &found);
            (found, spans)
        });
        found
            .iter()
            .zip(spans)
            .map(|(f, (s, e))| (self.inner.kinds()[f.kind].clone(), s, e))
            .collect()
    }

    /// (text with typed placeholders such as `[EMAIL]`, kinds found in order).
    fn redact(&self, py: Python<'_>, text: String) -> (String, Vec<String>) {
        let inner = Arc::clone(&self.inner);
        let (out, found) = py.detach(move || inner.redact(&text));
        (out, self.kind_names(&found))
    }

    /// `redact` over many texts with one GIL release.
    fn redact_many(&self, py: Python<'_>, texts: Vec<String>) -> Vec<(String, Vec<String>)> {
        let inner = Arc::clone(&self.inner);
        let results = py.detach(move || texts.iter().map(|t| inner.redact(t)).collect::<Vec<_>>());
        results
            .into_iter()
            .map(|(out, found)| (out, self.kind_names(&found)))
            .collect()
    }

    /// Only the texts with findings, as (position in `texts`, redacted text, kinds found in order); `[]`
    /// when every text is clean, which is the common case (nothing is copied back then). Borrows the
    /// strings instead of copying them (the GIL is released while they are scanned).
    fn redact_found(
        &self,
        py: Python<'_>,
        texts: Vec<PyBackedStr>,
    ) -> Vec<(usize, String, Vec<String>)> {
        let inner = &*self.inner;
        let texts = &texts;
        let work = move || {
            texts
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let findings = inner.scan(t);
                    (!findings.is_empty()).then(|| (i, inner.replace(t, &findings), findings))
                })
                .collect::<Vec<_>>()
        };
        // Releasing and retaking the GIL costs more than scanning a short prompt (~2 ns per byte).
        let found = if texts.iter().map(|t| t.len()).sum::<usize>() > DETACH_BYTES {
            py.detach(work)
        } else {
            work()
        };
        found
            .into_iter()
            .map(|(i, out, findings)| (i, out, self.kind_names(&findings)))
            .collect()
    }
}

impl PyPiiScanner {
    /// The kind names of `findings`, in order.
    fn kind_names(&self, findings: &[pii::Finding]) -> Vec<String> {
        findings
            .iter()
            .map(|f| self.inner.kinds()[f.kind].clone())
            .collect()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPiiScanner>()?;
    Ok(())
}
