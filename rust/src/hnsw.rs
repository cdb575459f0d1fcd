//! HNSW approximate nearest-neighbour index over unit vectors (cosine), with insert, delete, search, save/load.
//!
//! Pure: works on owned byte buffers for persistence, never touches files. Placeholder.
