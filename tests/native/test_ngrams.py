"""`fastroute._native` hashed word n-grams: buckets, dense vector and `NgramTable` agree; inputs are checked."""

from __future__ import annotations

import numpy as np
import pytest

from fastroute import _native
from fastroute.prompt import conversation_text

TEXT = conversation_text(
    [
        {"role": "system", "content": "You are a careful tutor."},
        {"role": "user", "content": "Write a Python function that sorts a list, then explain its complexity."},
    ]
)


def test_vector_is_the_normalised_indicator_of_the_buckets() -> None:
    buckets = _native.ngram_buckets(TEXT)
    vector = _native.ngram_vector(TEXT)
    assert vector.dtype == np.float32 and vector.shape == (_native.NGRAM_BUCKETS,)
    assert buckets.dtype == np.uint32 and list(buckets) == sorted(set(buckets.tolist()))
    assert set(np.flatnonzero(vector).tolist()) == set(buckets.tolist())
    assert float(np.dot(vector, vector)) == pytest.approx(1.0, abs=1e-6)


def test_markers_and_case_do_not_change_the_ngrams() -> None:
    plain = "You are a careful tutor.\nWRITE a python function that sorts a list, then explain its complexity."
    np.testing.assert_array_equal(_native.ngram_buckets(TEXT), _native.ngram_buckets(plain))


def test_table_dot_equals_vector_times_weights() -> None:
    weights = np.random.default_rng(0).normal(size=_native.NGRAM_BUCKETS).astype(np.float32)
    table = _native.NgramTable(weights)
    for text in (TEXT, "<user> hi", "", "x " * 10, "calcul " * 5000 + "intégrale"):
        expected = float(np.dot(_native.ngram_vector(text).astype(np.float64), weights.astype(np.float64)))
        assert table.dot(text) == pytest.approx(expected, abs=1e-5)


def test_table_refuses_a_wrong_size() -> None:
    with pytest.raises(ValueError, match="entries"):
        _native.NgramTable(np.zeros(10, dtype=np.float32))
