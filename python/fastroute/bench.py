"""`fastroute bench`: runs the load benchmark (benchmarks/load/run.py) from a source checkout.

The benchmark tooling (fake upstream, load driver, runner) lives in the repository, not in the package:
an installed wheel has no benchmarks, and this command says so instead of failing obscurely.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
SCRIPTS = {
    "run": "run.py",
    "profile": "profile_gateway.py",
    "stages": "stage_costs.py",
}
USAGE = """usage: fastroute bench [profile|stages] [options]

  fastroute bench [options]          direct vs fastroute (vs nginx) at 1 and 64 connections, plain and stream
  fastroute bench profile [options]  CPU per request and a py-spy breakdown of the gateway under load
  fastroute bench stages [options]   microseconds per request for every pipeline stage hook

Pass --help after a sub-command for its options. Needs a source checkout (benchmarks/load/).
"""


def script_for(argv: list[str], root: Path = CHECKOUT) -> tuple[Path, list[str]]:
    """The benchmark script to run and the arguments to pass it."""
    if argv and argv[0] in SCRIPTS and argv[0] != "run":
        return root / "benchmarks" / "load" / SCRIPTS[argv[0]], argv[1:]
    rest = argv[1:] if argv and argv[0] == "run" else argv
    return root / "benchmarks" / "load" / SCRIPTS["run"], rest


def main(argv: list[str], env: Mapping[str, str]) -> int:
    if argv and argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    script, rest = script_for(argv)
    if not script.is_file():
        print(f"fastroute bench: {script} not found; the benchmarks ship with the source checkout, "
              "not the installed package", file=sys.stderr)  # fmt: skip
        return 2
    return subprocess.call([sys.executable, str(script), *rest], env=dict(env), cwd=CHECKOUT)
