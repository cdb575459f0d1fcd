"""Loads the shipped static embedding (`models/embedding/`) into the native `StaticEmbedder`.

Reads files only when called (start-up), never per request; the product ships the table, never
downloads it.
"""

from __future__ import annotations

from pathlib import Path

from fastroute._native import StaticEmbedder

__all__ = ["EMBEDDING_DIM", "load_embedder"]

EMBEDDING_DIM = 256


def load_embedder(models_dir: Path, *, dim: int = EMBEDDING_DIM) -> StaticEmbedder:
    """The embedder from `models_dir/embedding/{tokenizer.json,table.q8}` (see its CARD.md).

    Raises:
        FileNotFoundError: the files are missing.
        ValueError: they do not fit together (wrong dim, truncated table).
    """
    folder = models_dir / "embedding"
    return StaticEmbedder((folder / "tokenizer.json").read_bytes(), (folder / "table.q8").read_bytes(), dim)
