"""`RuleScanner`: the typed wrapper over the native content-rule scanner (one pass for every rule)."""

from __future__ import annotations

from fastroute import _native


class RuleScanner:
    """Rules given as (keywords, regexes) pairs; `scan` returns the positions of the rules that fire.

    Keywords match whole words, ASCII case-insensitively; regexes use Rust `regex` syntax as written.

    Raises:
        ValueError: an empty keyword or an invalid regex.
    """

    __slots__ = ("_native",)

    def __init__(self, rules: list[tuple[list[str], list[str]]]) -> None:
        self._native = _native.ContentRules(rules)

    def __len__(self) -> int:
        return len(self._native)

    def scan(self, text: str) -> list[int]:
        return self._native.scan(text)

    def scan_many(self, texts: list[str]) -> list[int]:
        """The rules that fire on any of `texts` (one native call)."""
        return self._native.scan_many(texts)
