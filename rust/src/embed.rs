//! Static (distilled) token-embedding table applied to WordPiece tokens: the semantic-cache embedding.
//!
//! Pure: placeholder until the semantic-cache work lands.
