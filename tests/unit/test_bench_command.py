"""`fastroute bench` dispatch: which benchmark script runs with which arguments."""

from __future__ import annotations

from pathlib import Path

from fastroute import bench


def test_default_and_named_subcommands_pick_their_scripts(tmp_path: Path) -> None:
    load = tmp_path / "benchmarks" / "load"
    assert bench.script_for([], tmp_path) == (load / "run.py", [])
    assert bench.script_for(["--rounds", "2"], tmp_path) == (load / "run.py", ["--rounds", "2"])
    assert bench.script_for(["run", "--duration", "1"], tmp_path) == (load / "run.py", ["--duration", "1"])
    assert bench.script_for(["profile", "--stream"], tmp_path) == (load / "profile_gateway.py", ["--stream"])
    assert bench.script_for(["stages"], tmp_path) == (load / "stage_costs.py", [])


def test_the_scripts_exist_in_this_checkout() -> None:
    for name in ("run", "profile", "stages"):
        script, _ = bench.script_for([name])
        assert script.is_file(), script


def test_help_exits_zero_without_running_anything(capsys: object) -> None:
    assert bench.main(["--help"], {}) == 0
