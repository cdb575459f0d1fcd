//! pyo3 glue for `fastroute._native`: converts Python inputs to owned Rust values, releases the GIL
//! around the work, and maps core errors to exceptions that subclass builtins.

use pyo3::prelude::*;

mod analyze;
mod content_rules;
mod embed;
mod entry_table;
mod features;
mod index;
mod ngrams;
mod verify;
mod pii;
mod tokens;

#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    analyze::register(m)?;
    content_rules::register(m)?;
    embed::register(m)?;
    entry_table::register(m)?;
    features::register(m)?;
    index::register(m)?;
    ngrams::register(m)?;
    verify::register(m)?;
    pii::register(m)?;
    tokens::register(m)?;
    Ok(())
}
