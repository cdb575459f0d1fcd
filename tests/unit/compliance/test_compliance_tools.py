"""The AI-use report from ledger records, and `fastroute policy test` on sample prompts."""

from __future__ import annotations

import io
from pathlib import Path

from fastroute.compliance.policy import Compliance
from fastroute.compliance.report import build_report, report_csv
from fastroute.compliance.rule_test import run_rule_test
from fastroute.compliance.scanner import RuleScanner
from fastroute.governance.policy_load import parse_policy
from fastroute.ledger import LedgerRecord

POLICY = """
applications: {bot: {}, other: {}}
compliance:
  rules:
    medical: {keywords: [diagnosis], action: 'route:frontier'}
    falcon: {regexes: ['(?i)project\\s+falcon'], action: block}
  applications: {bot: {purpose: triage, risk_class: high}}
"""


def test_scanner_wrapper_reports_rule_positions() -> None:
    s = RuleScanner([(["alpha"], []), ([], [r"\d{3}-\d{2}"]), (["beta gamma"], [])])
    assert len(s) == 3
    assert s.scan("Alpha then 123-45") == [0, 1]
    assert s.scan_many(["x", "beta  gamma", "beta gamma"]) == [2]


def test_report_counts_per_rule_model_region() -> None:
    comp = parse_policy(POLICY, source="p").compliance
    assert isinstance(comp, Compliance)
    records = [
        LedgerRecord(ts=1, request_id="1", app="bot", model="m1", decisions=("rule:route:medical:x", "region:eu")),
        LedgerRecord(ts=2, request_id="2", app="bot", model=None, status=400, decisions=("rule:block:falcon",)),
        LedgerRecord(ts=3, request_id="3", app="bot", model="m1", decisions=("region:eu",)),
        LedgerRecord(ts=4, request_id="4", app="other", model="m2", status=503, decisions=("residency:exhausted",)),
    ]
    report = {e["app"]: e for e in build_report(records, comp)}
    bot = report["bot"]
    assert (bot["requests"], bot["served"], bot["refused"], bot["failed"]) == (3, 2, 1, 0)
    assert bot["rules"] == {"falcon:block": 1, "medical:route": 1}
    assert bot["models"] == {"m1": 2} and bot["regions"] == {"eu": 2}
    assert (bot["purpose"], bot["risk_class"]) == ("triage", "high")
    assert report["other"]["failed"] == 1 and report["other"]["models"] == {}
    text = report_csv(list(report.values()))
    assert "bot,default,triage,high,model,m1,2" in text and "other,default,,unclassified,outcome,failed,1" in text


def test_policy_test_cli_lists_fired_rules(tmp_path: Path) -> None:
    policy = parse_policy(POLICY, source="p")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('"a diagnosis"\n{"prompt": "PROJECT falcon", "app": "bot"}\n\n{"messages": [{"role": "user", '
                       '"content": "hi"}], "app": "other"}\n{"prompt": "x", "app": "ghost"}\n')
    out = io.StringIO()
    assert run_rule_test(policy, prompts, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "1: app=default: medical (route:frontier)"
    assert lines[1] == "2: app=bot: falcon (block)"
    assert lines[2] == "4: app=other: no rule"
    assert "ghost" in lines[3]
    assert lines[-1] == "4 samples, 2 rules; fired: falcon x1, medical x1"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert run_rule_test(policy, bad, io.StringIO()) == 1


def test_policy_cli_test_subcommand(tmp_path: Path, capsys: object) -> None:
    from fastroute.governance.policy_cli import main

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "project falcon", "app": "bot"}\n')
    assert main(["test", str(policy), str(prompts)], {"FASTROUTE_DATA_DIR": str(tmp_path)}) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "1: app=bot: falcon (block)" in out
    policy.write_text(POLICY.replace("'route:frontier'", "'route:nowhere'"))
    assert main(["test", str(policy), str(prompts)], {"FASTROUTE_DATA_DIR": str(tmp_path)}) == 1
