"""Distil a static token-embedding table (model2vec style) from the all-MiniLM-L6-v2 teacher; run offline once.

Each WordPiece vocab token goes through the ONNX encoder as `[CLS] token [SEP]`; the mean-pooled output
(the teacher's own pooling) is its raw vector. PCA reduces 384 -> 256 dims, then each row is scaled by a
frequency weight (Zipf prior over vocab rank, SIF form a / (a + p)) so that frequent tokens count less in the
mean. The rows are rounded to fp16, then quantised to int8 with one scale per column (`quantize`), and stored
in `models/embedding/table.q8` (the column scales as little-endian f32, then the int8 rows; see
rust/src/embed/table.rs) beside a copy of the teacher's `tokenizer.json`; `CARD.md` records how and what was
measured (`--pairs`).

Usage: python scripts/distill_embedding.py --teacher ../shared/data/models/all-MiniLM-L6-v2 --out models/embedding
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

DIM = 256
SIF_A = 1e-3


def teacher_token_vectors(teacher: Path, vocab_size: int, batch: int, cache: Path | None) -> np.ndarray:
    """(vocab_size, 384) mean-pooled teacher outputs for `[CLS] token [SEP]`, cached as .npy when asked."""
    if cache is not None and cache.exists():
        return np.load(cache)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # shared 2-core machine: be thrifty
    sess = ort.InferenceSession(str(teacher / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    out = np.zeros((vocab_size, 384), dtype=np.float32)
    t0 = time.time()
    for start in range(0, vocab_size, batch):
        ids = np.arange(start, min(start + batch, vocab_size), dtype=np.int64)
        n = len(ids)
        input_ids = np.stack([np.full(n, 101), ids, np.full(n, 102)], axis=1)
        mask = np.ones_like(input_ids)
        hidden = sess.run(
            None, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        )[0]
        out[start : start + n] = hidden.mean(axis=1)
    print(f"teacher: {vocab_size} tokens in {time.time() - t0:.1f}s")
    if cache is not None:
        np.save(cache, out)
    return out


def pca(x: np.ndarray, dim: int) -> np.ndarray:
    centered = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    return (centered @ vt[:dim].T).astype(np.float32)


def zipf_sif_weights(vocab_size: int, first_word_id: int) -> np.ndarray:
    """SIF weight a / (a + p) with p from a Zipf law over vocab rank (BERT ids are roughly frequency-ordered)."""
    rank = np.maximum(np.arange(vocab_size) - first_word_id + 1, 1).astype(np.float64)
    p = 1.0 / rank
    p /= p.sum()
    return (SIF_A / (SIF_A + p)).astype(np.float32)


def quantize(table: np.ndarray) -> bytes:
    """The table file: per-column scales (max |value| / 127, little-endian f32), then the rows as int8 in
    -127..=127 (the range rust/src/embed/table.rs sums exactly in i16 lanes)."""
    t = table.astype(np.float32)
    peak = np.abs(t).max(axis=0)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype("<f4")
    values = np.clip(np.round(t / scales), -127, 127).astype(np.int8)
    return bytes(scales.tobytes() + values.tobytes())


def embed_texts(texts: list[str], tokenizer_json: bytes, table: np.ndarray) -> np.ndarray:
    from fastroute._native import StaticEmbedder

    emb = StaticEmbedder(tokenizer_json, quantize(table), table.shape[1])
    return np.asarray(emb.embed_batch(texts))


def pair_metrics(origin: np.ndarray, similar: np.ndarray) -> dict[str, float]:
    """Top-1 retrieval of each paraphrase among all origins, and mean pair vs non-pair similarity."""
    sims = similar @ origin.T
    top1 = float(np.mean(np.argmax(sims, axis=1) == np.arange(len(sims))))
    pair = float(np.mean(np.diag(sims)))
    off = float((sims.sum() - np.trace(sims)) / (sims.size - len(sims)))
    return {"top1": round(top1, 4), "pair_sim": round(pair, 4), "other_sim": round(off, 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--cache", type=Path, default=None, help="reuse teacher outputs across runs (.npy)")
    ap.add_argument("--pairs", type=Path, default=None, help="gptcache_mock_pairs.json for --evaluate")
    args = ap.parse_args()

    tok_bytes = (args.teacher / "tokenizer.json").read_bytes()
    vocab = json.loads(tok_bytes)["model"]["vocab"]
    vocab_size = max(vocab.values()) + 1
    raw = teacher_token_vectors(args.teacher, vocab_size, args.batch, args.cache)
    reduced = pca(raw, DIM)
    first_word_id = vocab.get("the", 1996)
    weighted = reduced * zipf_sif_weights(vocab_size, first_word_id)[:, None]
    table = weighted.astype("<f2").astype(np.float32)
    data = quantize(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.q8").write_bytes(data)
    shutil.copyfile(args.teacher / "tokenizer.json", args.out / "tokenizer.json")
    print(f"wrote {args.out / 'table.q8'}: {vocab_size} x {DIM} int8 + column scales, {len(data) / 1e6:.1f} MB")

    if args.pairs is not None:
        pairs = json.loads(args.pairs.read_text())
        origin = [p["origin"] for p in pairs]
        similar = [p["similar"] for p in pairs]
        variants = {
            "pca256+zipf-sif (shipped)": table,
            "pca256, unweighted": reduced,
            "raw384, unweighted": raw,
        }
        for name, t in variants.items():
            m = pair_metrics(embed_texts(origin, tok_bytes, t), embed_texts(similar, tok_bytes, t))
            print(f"{name}: {m}")


if __name__ == "__main__":
    main()
