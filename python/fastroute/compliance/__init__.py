"""Compliance: content rules, data residency and the AI-use record (issue 11), on top of governance."""

from fastroute.compliance.policy import AppCompliance, Compliance, ContentRule, parse_compliance
from fastroute.compliance.scanner import RuleScanner

__all__ = ["AppCompliance", "Compliance", "ContentRule", "RuleScanner", "parse_compliance"]
