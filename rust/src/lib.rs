//! fastroute's native core: pure CPU work on owned data (no I/O, no environment, no Python).
//!
//! Every module here compiles and tests with plain `cargo test`; the pyo3 glue lives in `py/`
//! and is only built with the `python` feature (maturin turns it on).

pub mod analyze;
pub mod content_rules;
pub mod embed;
pub mod entry_table;
pub mod features;
pub mod hnsw;
pub mod ngrams;
pub mod normalize;
pub mod pii;
pub mod tokens;
pub mod verify;

#[cfg(feature = "python")]
mod py;
#[cfg(test)]
mod xorshift;
