"""The semantic-cache verifier: decides whether a cached prompt's answer may be served for a new prompt.

Typed wrapper over the native implementation (rust/src/verify.rs, microseconds per prompt); the rules
are documented here. Pure: text in, verdict out (no I/O, no embedding). Embeddings cannot tell
"3 apples" from "4 apples", "is" from "is not" or "from Paris to Rome" from "from Rome to Paris"; these
rules can. Anything they cannot
vouch for is a miss. A `Signature` keeps its text and is analysed by `verify` only as far as the verdict
needs (the numbers first: most neighbours that fail, fail there), once; the cache keeps stored entries'
signatures so a lookup mostly analyses only the new prompt.

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
  R9 ask: texts sharing a long context (`SHARED_CONTEXT_WORDS` = 24 content words or more, at their start
     and end together: a pasted document, a long template) must have the same content words outside it.
     What differs there is the ask ("<doc> Summarize it" vs "<doc> List its risks"); the shared context
     dominates the embedding (cosine 0.999+) and leaves it within R8's budget, which was measured on short
     paraphrases. It removed the development set's one false hit and no hit.
  R4 (permutation): the same content words in another order ("dog bites man") is a miss.
  R7 size: texts longer than `MAX_VERIFIABLE_CHARS` are never served semantically (only exactly): small
     edits inside long documents move the embedding too little to be caught.
"""

from __future__ import annotations

from fastroute import _native

__all__ = ["MAX_SUBSTITUTED_WORDS", "MAX_VERIFIABLE_CHARS", "Signature", "numbers_digest", "signature", "verify"]

MAX_VERIFIABLE_CHARS: int = _native.MAX_VERIFIABLE_CHARS
MAX_SUBSTITUTED_WORDS: int = _native.MAX_SUBSTITUTED_WORDS
Signature = _native.PromptSignature


def signature(text: str) -> Signature:
    """`text` ready for `verify`, which analyses it (numbers, negations, options, entities, anchors, code,
    words) as far as a verdict needs, once."""
    return _native.prompt_signature(text)


def numbers_digest(text: str) -> int:
    """A digest of `text`'s numbers (rule R1), kept with a stored prompt instead of its signature: when it
    and the query's `Signature.numbers_digest()` are both non-zero and differ, `verify` fails on R1, so
    the stored prompt need not be read. 0 for a text too long to verify (R7 comes first)."""
    return _native.prompt_numbers_digest(text)


def verify(query: Signature, cached: Signature) -> str | None:
    """None when `cached`'s answer may be served for `query`, else the name of the first rule that failed.

    Rules are checked cheapest first: R7, R1 (the numbers) and R3 (the options) need no walk over the
    words, so a neighbour with other numbers or shuffled options is ruled out before the rest is analysed.
    A pair failing several rules is reported under the first of that order.
    """
    return _native.verify_signatures(query, cached)
