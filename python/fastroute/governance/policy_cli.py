"""`fastroute policy`: check a policy file (against the configured catalogue) or hash a virtual key."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from fastroute.env_values import SettingsError
from fastroute.governance.pii import PiiScanner
from fastroute.governance.policy_load import hash_key, load_policy


def main(argv: list[str], env: Mapping[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="fastroute policy", description="Check or test a policy file, or hash a key.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate a policy file (exit 1 with the precise error if invalid)")
    check.add_argument("path", type=Path)
    check.add_argument("--config", type=Path, help="catalogue config file (default: FASTROUTE_CONFIG)")
    test = sub.add_parser("test", help="show which content rules would fire on sample prompts (JSON lines)")
    test.add_argument("path", type=Path)
    test.add_argument("prompts", type=Path, help='JSONL: "text", {"prompt": ..., "app": ...} or {"messages": [...]}')
    test.add_argument("--config", type=Path, help="catalogue config file (default: FASTROUTE_CONFIG)")
    key = sub.add_parser("hash-key", help="print the sha256 to declare a virtual key (or admin token) in a policy")
    key.add_argument("key")
    args = parser.parse_args(argv)
    if args.command == "hash-key":
        print(hash_key(args.key))
        return 0
    from fastroute.server.app import load_catalogue
    from fastroute.settings import Settings

    try:
        overrides = {"FASTROUTE_CONFIG": str(args.config)} if args.config else {}
        catalogue = load_catalogue(Settings.from_env({**env, **overrides}))
        policy = load_policy(args.path, catalogue, PiiScanner)
    except SettingsError as e:
        print(f"fastroute policy: {e}", file=sys.stderr)
        return 1
    if args.command == "test":
        from fastroute.compliance.rule_test import run_rule_test

        return run_rule_test(policy, args.prompts, sys.stdout)
    print(f"{args.path}: valid (digest {policy.digest[:12]}; {len(policy.departments)} departments, "
          f"{len(policy.applications)} applications, {len(policy.keys)} virtual keys)")
    return 0
