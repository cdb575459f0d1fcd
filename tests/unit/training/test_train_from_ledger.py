"""`fastroute train --from-ledger` trains on the labels the quality loop collected."""

from __future__ import annotations

from pathlib import Path

import orjson

from fastroute.quality.labels import label_row, labels_path
from fastroute.training.train import main


def _write_labels(data_dir: Path, n: int) -> None:
    path = labels_path(data_dir)
    path.parent.mkdir(parents=True)
    with path.open("wb") as fh:
        for i in range(n):
            hard = i % 2 == 0
            prompt = (
                (f"Prove step by step that the series {i} converges, then derive its limit. " * 6)
                if hard
                else f"Hi {i}"
            )
            row = label_row(
                [{"role": "user", "content": prompt}],
                agree=not hard,
                agreement=0.2 if hard else 0.9,
                app=f"app{i % 4}",
                tier="budget",
                model="sim-budget",
                reference_model="sim-frontier",
                judge="auto",
                request_id=f"r{i}",
                feature_version=None,
                ts=float(i),
            )
            fh.write(orjson.dumps(row) + b"\n")


def test_from_ledger_trains_on_collected_labels(tmp_path: Path) -> None:
    data_dir, out = tmp_path / "data", tmp_path / "model"
    _write_labels(data_dir, 80)
    rc = main(["--from-ledger", "--out", str(out), "--folds", "2"], {"FASTROUTE_DATA_DIR": str(data_dir)})
    assert rc == 0
    card = orjson.loads((out / "card.json").read_bytes())
    assert [f["name"] for f in card["training_data"]["files"]] == ["collected-labels.jsonl"]
    assert (out / "model.onnx").stat().st_size > 0


def test_from_ledger_with_nothing_collected_is_an_error(tmp_path: Path) -> None:
    assert main(["--from-ledger", "--out", str(tmp_path / "m")], {"FASTROUTE_DATA_DIR": str(tmp_path)}) == 2
