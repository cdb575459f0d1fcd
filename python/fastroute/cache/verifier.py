"""The semantic-cache verifier: decides whether a cached prompt's answer may be served for a new prompt.

Pure: text in, verdict out (no I/O, no embedding). Embeddings cannot tell "3 apples" from "4 apples", "is"
from "is not" or "from Paris to Rome" from "from Rome to Paris"; these rules can. Anything they cannot
vouch for is a miss. A `Signature` is computed once per text (stored with each cache entry) so a lookup
only analyses the new prompt.

Rules (each has a test in tests/unit/cache/test_verifier.py):
  R1 numbers: the sequence of numbers must be equal. Digits (with separators, decimals, fractions and
     percentages) and number words ("seven", "twenty-one", "a dozen", "half", "twice", ordinals) are parsed
     to values, so "7" matches "seven"; a changed, added, removed or reordered number is a miss (the order
     test covers swapped operands such as "10 minus 4" vs "4 minus 10").
  R2 negation and polarity: the multiset of negation cues (not/n't/no/never/none/nothing/neither/nor/
     without/cannot/except...) and of polarity words (most/least, true/false, maximum/minimum, increase/
     decrease, before/after, correct/incorrect, ...) must be equal.
  R3 options: multiple-choice options (lines like "A) ...", "(b) ...", "C. ...", "D: ...") must be the same
     options with the same texts in the same order; options on one side only is a miss.
  R4 entities and direction: named entities (capitalised words not opening a sentence, acronyms, quoted
     strings) must be the same set, and "anchors" (entities plus the content words on both sides of a
     directional word such as to/from/into/than/vs/versus/over/per/minus/by) shared by both texts must
     appear in the same order ("convert celsius to kelvin" vs "convert kelvin to celsius").
  R5 code: code (fenced blocks or `inline`) must be identical after whitespace normalisation.
  R6 refinement: if one text's content words are a strict superset of the other's (pure additions such as
     "... in French" or "... in 3 sentences"), the request was refined: a miss. Politeness fillers
     ("please", "can you") do not count.
  R8 substitution: at most `MAX_SUBSTITUTED_WORDS` distinct content words may appear on one side only.
     Two prompts sharing a long template but describing different cases (MMLU's moral scenarios: 8-13
     words differ) fail here; paraphrases on the development set swapped a median of 3 (90th pct 6).
     (Requiring the swapped words to embed close together was tried: the static table could not tell
     synonyms from unrelated words, so that rule was dropped.)
  R4 (permutation): the same content words in another order ("dog bites man") is a miss.
  R7 size: texts longer than `MAX_VERIFIABLE_CHARS` are never served semantically (only exactly): small
     edits inside long documents move the embedding too little to be caught.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["MAX_SUBSTITUTED_WORDS", "MAX_VERIFIABLE_CHARS", "Signature", "signature", "verify"]

MAX_VERIFIABLE_CHARS = 4000
MAX_SUBSTITUTED_WORDS = 6

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "twentieth": 20,
    "hundredth": 100,
}
_SPECIAL: dict[str, Fraction] = {
    "half": Fraction(1, 2),
    "quarter": Fraction(1, 4),
    "third": Fraction(1, 3),
    "dozen": Fraction(12),
    "twice": Fraction(2),
    "double": Fraction(2),
    "thrice": Fraction(3),
    "triple": Fraction(3),
    "once": Fraction(1),
    "pair": Fraction(2),
    "couple": Fraction(2),
    "score": Fraction(20),
}
_NUMBER_WORDS = {*_UNITS, *_TENS, *_SCALES, *_ORDINALS, *_SPECIAL, "a"}
_NEGATIONS = {
    "not",
    "no",
    "never",
    "none",
    "nothing",
    "nobody",
    "nowhere",
    "neither",
    "nor",
    "without",
    "cannot",
    "except",
    "excluding",
    "unless",
    "hardly",
    "barely",
}
_POLARITY = {
    "most",
    "least",
    "more",
    "less",
    "fewer",
    "greater",
    "smaller",
    "larger",
    "largest",
    "smallest",
    "highest",
    "lowest",
    "maximum",
    "minimum",
    "max",
    "min",
    "true",
    "false",
    "correct",
    "incorrect",
    "wrong",
    "right",
    "increase",
    "decrease",
    "before",
    "after",
    "above",
    "below",
    "first",
    "last",
    "best",
    "worst",
    "earliest",
    "latest",
    "positive",
    "negative",
    "always",
    "sometimes",
    "all",
    "any",
    "only",
    "odd",
    "even",
    "higher",
    "lower",
    "longest",
    "shortest",
    "faster",
    "slower",
    "older",
    "younger",
    "add",
    "subtract",
    "multiply",
    "divide",
    "plus",
    "minus",
    "times",
    "sum",
    "difference",
    "product",
    "quotient",
    "inside",
    "outside",
    "left",
    "up",
    "down",
    "north",
    "south",
    "east",
    "west",
}
_DIRECTIONAL = {
    "to",
    "from",
    "into",
    "than",
    "vs",
    "versus",
    "over",
    "per",
    "minus",
    "by",
    "against",
    "toward",
    "towards",
    "between",
    "and",
    "or",
    "divided",
    "before",
    "after",
}
_STOPWORDS = {
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "of",
    "in",
    "on",
    "at",
    "for",
    "to",
    "and",
    "or",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "with",
    "as",
    "by",
    "from",
    "do",
    "does",
    "did",
    "what",
    "which",
    "who",
    "whom",
    "how",
    "why",
    "when",
    "where",
    "there",
    "their",
    "they",
    "them",
    "i",
    "me",
    "my",
    "we",
    "our",
    "you",
    "your",
    "he",
    "she",
    "his",
    "her",
    "s",
    "about",
    "into",
    "than",
    "so",
    "if",
    "then",
    "can",
    "could",
    "would",
    "should",
    "will",
    "shall",
    "may",
    "might",
    "must",
    "have",
    "has",
    "had",
    "please",
    "kindly",
    "tell",
    "explain",
    "give",
    "know",
    "want",
    "like",
    "need",
    "help",
    "hi",
    "hey",
    "hello",
    "thanks",
    "thank",
    "just",
    "also",
    "some",
    "us",
    "let",
    "lets",
    "describe",
    "briefly",
    "quick",
    "quickly",
    "question",
    "answer",
    "user",
    "system",
    "assistant",
    "whats",
    "mean",
    "means",
    "meaning",
    "define",
    "definition",
    "show",
    "provide",
    "write",
    "make",
    "get",
    "use",
    "used",
}

_WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?|\d+(?:[.,]\d+)*(?:/\d+)?%?")
_NUMBER = re.compile(r"(?<![\w.])[-\u2212]?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?%?|(?<![\w.])[-\u2212]?\.\d+")
_OPTION = re.compile(r"(?m)^\s*[\(\[]?([A-Ha-h1-8])[\)\].:]\s+(.+?)\s*$")
_INLINE_OPTION = re.compile(r"(?:(?<=\s)|^)\(([A-Ha-h])\)\s*([^()]+?)(?=\s*\([A-Ha-h]\)|$)")
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_QUOTED = re.compile(r"\"([^\"\n]{1,80})\"|\u201c([^\u201d\n]{1,80})\u201d")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n>]\s*|\n\s*[-*\d.)]*\s*)$")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Signature:
    """What the verifier compares, computed once per text."""

    too_long: bool
    numbers: tuple[Fraction, ...]
    negations: tuple[tuple[str, int], ...]
    options: tuple[tuple[str, str], ...]
    entities: frozenset[str]
    anchors: tuple[str, ...]
    code: tuple[str, ...]
    content: frozenset[str]
    words: frozenset[str]
    sequence: tuple[str, ...]


def _parse_digit(tok: str) -> Fraction | None:
    t = tok.replace("\u2212", "-").replace(",", "")
    pct = t.endswith("%")
    t = t.rstrip("%")
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            val = Fraction(int(num), int(den)) if int(den) != 0 else Fraction(int(num))
        else:
            val = Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None
    return val / 100 if pct else val


def _words_to_numbers(words: list[str]) -> list[tuple[int, Fraction]]:
    """Number words -> (word index, value): "twenty one" / "twenty-one" -> 21, "three hundred" -> 300."""
    out: list[tuple[int, Fraction]] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _UNITS or w in _TENS or (w in _SCALES and i > 0 and words[i - 1] in ("a", "one")):
            start = i
            total, current = 0, 0
            while i < len(words):
                w = words[i]
                if w in _UNITS:
                    current += _UNITS[w]
                elif w in _TENS:
                    current += _TENS[w]
                elif w in _SCALES:
                    current = max(current, 1) * _SCALES[w]
                    if _SCALES[w] >= 1000:
                        total, current = total + current, 0
                elif w == "and" and i + 1 < len(words) and (words[i + 1] in _UNITS or words[i + 1] in _TENS):
                    pass
                else:
                    break
                i += 1
            out.append((start, Fraction(total + current)))
            continue
        if w in _ORDINALS and w != "second":  # "second" is usually time or order-of-two, kept as polarity
            out.append((i, Fraction(_ORDINALS[w])))
        elif w in _SPECIAL:
            out.append((i, Fraction(_SPECIAL[w])))
        i += 1
    return out


def _numbers(text: str, words: list[str]) -> tuple[Fraction, ...]:
    # Digits and words are two streams; positions interleave them by character offset.
    found: list[tuple[int, Fraction]] = []
    for m in _NUMBER.finditer(text):
        v = _parse_digit(m.group(0))
        if v is not None:
            found.append((m.start(), v))
    word_spans = [(m.start(), m.group(0).lower().replace("\u2019", "'")) for m in re.finditer(r"[A-Za-z]+", text)]
    split = [w for _, w in word_spans]
    for idx, val in _words_to_numbers(split):
        found.append((word_spans[idx][0], val))
    found.sort(key=lambda p: p[0])
    return tuple(v for _, v in found)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for m in _WORD.finditer(text):
        w = m.group(0).lower().replace("\u2019", "'")
        if w.endswith("n't"):
            out.extend((w[:-3] or "not", "not"))
        elif w in ("cannot", "can't"):
            out.extend(("can", "not"))
        elif "'" in w:
            out.append(w.split("'", 1)[0])
        else:
            out.append(w)
    return out


def _options(text: str) -> tuple[tuple[str, str], ...]:
    lines = [(m.group(1).upper(), _norm(m.group(2))) for m in _OPTION.finditer(text)]
    if len(lines) >= 2:
        return tuple(lines)
    inline = [(m.group(1).upper(), _norm(m.group(2))) for m in _INLINE_OPTION.finditer(text)]
    return tuple(inline) if len(inline) >= 2 else ()


def _norm(s: str) -> str:
    return _SPACE.sub(" ", s.strip().lower())


def _entities(text: str) -> list[str]:
    ents: list[tuple[int, str]] = []
    for m in re.finditer(r"\b[A-Z][A-Za-z0-9&'\u2019-]*(?:\s+[A-Z][A-Za-z0-9&'\u2019-]*)*", text):
        phrase = m.group(0)
        start = m.start()
        words = phrase.split()
        if _SENTENCE_START.search(text[max(0, start - 4) : start]) or start == 0:
            # Sentence-initial capital: keep the rest of the phrase if any, or an acronym.
            if len(words) == 1 and not (len(phrase) > 1 and phrase.isupper()):
                continue
            if not (len(phrase) > 1 and words[0].isupper()):
                words = words[1:]
                if not words:
                    continue
        if len(words) == 1 and words[0].lower() in ("i",):
            continue
        ents.append((start, " ".join(w.lower() for w in words)))
    for m in _QUOTED.finditer(text):
        ents.append((m.start(), _norm(m.group(1) or m.group(2))))
    ents.sort()
    return [e for _, e in ents]


def _anchors(tokens: list[str], entities: list[str]) -> tuple[str, ...]:
    ent_words = {w for e in entities for w in e.split()}
    out: list[str] = []
    for i, w in enumerate(tokens):
        if w in ent_words:
            out.append(w)
        elif w in _DIRECTIONAL:
            for j in (i - 1, i + 1):
                if 0 <= j < len(tokens) and tokens[j] not in _STOPWORDS and not tokens[j][0].isdigit():
                    out.append(tokens[j])
    seen: set[str] = set()
    ordered = []
    for a in out:
        if a not in seen:
            seen.add(a)
            ordered.append(a)
    return tuple(ordered)


def _stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def signature(text: str) -> Signature:
    """Analyses `text` once for `verify`."""
    if len(text) > MAX_VERIFIABLE_CHARS:
        return Signature(True, (), (), (), frozenset(), (), (), frozenset(), frozenset(), ())
    code = tuple(_norm(c.strip("`")) for c in _CODE.findall(text))
    prose = _CODE.sub(" ", text)
    tokens = _tokens(prose)
    neg = Counter(t for t in tokens if t in _NEGATIONS or t in _POLARITY)
    entities = _entities(prose)
    sequence = tuple(_stem(t) for t in tokens if t not in _STOPWORDS and t not in _NUMBER_WORDS and not t[0].isdigit())
    return Signature(
        too_long=False,
        numbers=_numbers(prose, tokens),
        negations=tuple(sorted(neg.items())),
        options=_options(prose),
        entities=frozenset(entities),
        anchors=_anchors(tokens, entities),
        code=code,
        content=frozenset(sequence),
        words=frozenset(tokens),
        sequence=sequence,
    )


def verify(query: Signature, cached: Signature) -> str | None:
    """None when `cached`'s answer may be served for `query`, else the name of the first rule that failed."""
    if query.too_long or cached.too_long:
        return "R7-size"
    if query.numbers != cached.numbers:
        return "R1-numbers"
    if query.negations != cached.negations:
        return "R2-negation"
    if query.options != cached.options:
        return "R3-options"
    if query.entities != cached.entities:
        # Same entity written in lower case on one side (e.g. sentence-initial capital) is fine.
        if not (
            all(_entity_in(e, cached.words) for e in query.entities)
            and all(_entity_in(e, query.words) for e in cached.entities)
        ):
            return "R4-entities"
    shared = [a for a in query.anchors if a in set(cached.anchors)]
    if shared != [a for a in cached.anchors if a in set(query.anchors)]:
        return "R4-order"
    if query.code != cached.code:
        return "R5-code"
    if query.content != cached.content and (query.content < cached.content or cached.content < query.content):
        return "R6-refinement"
    if query.sequence != cached.sequence and sorted(query.sequence) == sorted(cached.sequence):
        return "R4-permutation"
    if max(len(query.content - cached.content), len(cached.content - query.content)) > MAX_SUBSTITUTED_WORDS:
        return "R8-substitution"
    return None


def _entity_in(entity: str, words: frozenset[str]) -> bool:
    return all(w in words for w in re.findall(r"[a-z]+|\d+", entity))
