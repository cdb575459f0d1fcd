//! `analyze`: one pass over a normalised conversation giving features, embedding, exact key and tokens.
//!
//! Pure: placeholder until the native-hot-path work lands.

use crate::{features, normalize, tokens};

/// Everything routing and caching need to know about one prompt.
pub struct Analysis {
    pub features: Vec<f32>,
    pub key: String,
    pub tokens: usize,
}

pub fn analyze(text: &str) -> Analysis {
    let mut feats = vec![0.0f32; features::FEATURE_DIM];
    features::extract(text, &mut feats);
    Analysis { features: feats, key: normalize::normalize_key(text), tokens: tokens::approx_count(text) }
}
