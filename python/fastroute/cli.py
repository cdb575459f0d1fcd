"""The `fastroute` command: dispatches sub-commands; the only place that reads `os.environ`.

Each sub-command is `main(argv, env) -> int` in its own module, imported only when used.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("fastroute.commands:serve_main", "run the gateway (configured by FASTROUTE_* variables)"),
    "demo": ("fastroute.commands:demo_main", "run the gateway with built-in simulated upstreams (no API key)"),
    "train": ("fastroute.training.train:main", "train the complexity router and export it to ONNX"),
    "eval": ("fastroute.training.evaluate:main", "evaluate the router on labeled JSONL (APGR, CPT, AIQ)"),
    "cache-eval": ("fastroute.cache.evaluate:main", "evaluate the semantic cache on cached prompts + queries"),
    "bench": ("fastroute.bench:main", "run the load benchmark (gateway vs direct)"),
    "policy": ("fastroute.governance.policy_cli:main", "check or test a policy file"),
}


def _usage() -> str:
    lines = ["usage: fastroute <command> [options]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def run(argv: Sequence[str], env: Mapping[str, str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], list(argv[1:])
    if name not in COMMANDS:
        print(f"fastroute: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[name][0].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        print(f"fastroute: the {name!r} command is not available in this build ({e})", file=sys.stderr)
        return 2
    result: int = getattr(module, func_name)(rest, env)
    return result


def main() -> None:
    sys.exit(run(sys.argv[1:], os.environ))
