//! Bindings for the content-rule scanner (`ContentRules`): rules in as (keywords, regexes), ids out.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use std::sync::Arc;

use crate::content_rules::{ContentRules, RuleSpec};

/// Every rule's keywords and regexes compiled once; `scan(text)` gives the ids of the rules that fire.
#[pyclass(name = "ContentRules", module = "fastroute._native", frozen)]
pub struct PyContentRules {
    inner: Arc<ContentRules>,
}

#[pymethods]
impl PyContentRules {
    #[new]
    fn new(py: Python<'_>, rules: Vec<(Vec<String>, Vec<String>)>) -> PyResult<Self> {
        let specs: Vec<RuleSpec> = rules
            .into_iter()
            .map(|(keywords, regexes)| RuleSpec { keywords, regexes })
            .collect();
        let inner = py
            .detach(move || ContentRules::new(&specs))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyContentRules {
            inner: Arc::new(inner),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// The ids (positions in the constructor's list) of the rules that fire on `text`, ascending.
    fn scan(&self, py: Python<'_>, text: String) -> Vec<usize> {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.scan(&text))
    }

    /// `scan` over many texts with one GIL release: the union of the rules that fire on any of them.
    /// Borrows the strings (no copy); they stay alive and immutable while the GIL is released.
    fn scan_many(&self, py: Python<'_>, texts: Vec<PyBackedStr>) -> Vec<usize> {
        let inner = Arc::clone(&self.inner);
        let texts = &texts;
        py.detach(move || {
            let mut fired = vec![false; inner.len()];
            for t in texts {
                for i in inner.scan(t) {
                    fired[i] = true;
                }
            }
            fired
                .iter()
                .enumerate()
                .filter_map(|(i, &f)| f.then_some(i))
                .collect()
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyContentRules>()?;
    Ok(())
}
