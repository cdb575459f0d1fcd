"""The verifier on arbitrary text: it never raises, a text always verifies against itself, the lazy and eager
paths agree, and the stored numbers digest equals the signature's.

The verifier reads whatever users send (any Unicode, pasted code, option lists, numbers in every form), and
its analysis works on bytes with per-class tables: these properties guard every input shape the example
tests do not name.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fastroute.cache.verifier import MAX_VERIFIABLE_CHARS, numbers_digest, signature, verify

# Pieces the rules look at, mixed with arbitrary Unicode (surrogates excluded: a Python str with a lone
# surrogate cannot reach the native layer as UTF-8, and the gateway never builds one from JSON).
_PIECES = st.sampled_from(
    [
        "7", "seven", "twenty-one", "3.5", "1/2", "50%", "-4", "1,000", "..5", "2nd", "a dozen", "half",
        "not", "n't", "never", "no", "most", "least", "true", "false", "before", "after",
        "\nA) cat", "\nB) dog", "\n(c) fish", "\nD: bird", "\nE. ant",
        "from", "to", "Paris", "Rome", "NASA", "vs", "minus", "than", "per",
        "`x = 1`", "```py\nprint(1)\n```", "\"quoted text\"", "“curly”", "'single'", "(paren)",
        " ", "  ", "\n", "\t", ".", "?", "!", ",", ";", ":", "-", "—", "…",
        "Café", "naïve", "東京", "😀", "\u200b", "\u0301", "İ", "ß", "ﬁ", "Ⅻ",
    ]
)
_TEXT = st.lists(
    st.one_of(_PIECES, st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)), max_size=60
).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_a_text_verifies_against_itself_and_its_digest_is_the_signatures(text: str) -> None:
    verdict = verify(signature(text), signature(text))
    if len(text) > MAX_VERIFIABLE_CHARS:
        assert verdict == "R7-size"
    else:
        assert verdict is None
    assert numbers_digest(text) == signature(text).numbers_digest()


@settings(max_examples=400, deadline=None)
@given(_TEXT, _TEXT)
def test_any_pair_gets_a_verdict_and_the_digest_screen_never_contradicts_it(a: str, b: str) -> None:
    # The cache rules a neighbour out on differing digests without reading it (R1): that must only ever
    # happen where the full verifier fails too.
    verdict = verify(signature(a), signature(b))
    assert verdict is None or verdict.startswith("R")
    da, db = numbers_digest(a), numbers_digest(b)
    if da and db and da != db:
        assert verdict is not None
    # A fresh signature and one already analysed by an earlier verdict give the same answer.
    sa = signature(a)
    verify(sa, signature(a))
    assert verify(sa, signature(b)) == verdict


@settings(max_examples=60, deadline=None)
@given(_TEXT, st.integers(min_value=1, max_value=200))
def test_long_and_repeated_texts(text: str, times: int) -> None:
    long = (text + "\n") * times
    verdict = verify(signature(long), signature(long))
    assert verdict == ("R7-size" if len(long) > MAX_VERIFIABLE_CHARS else None)
    assert numbers_digest(long) == signature(long).numbers_digest()
