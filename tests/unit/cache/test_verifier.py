"""Each verifier rule (R1-R8) rejects what it must and lets genuine paraphrases through."""

from __future__ import annotations

import pytest

from fastroute.cache.verifier import MAX_VERIFIABLE_CHARS, numbers_digest, signature, verify


def check(a: str, b: str) -> str | None:
    return verify(signature(a), signature(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is 7 times 8?", "what is 7 times 8"),
        ("What is 7 times 8?", "What is seven times eight?"),
        ("I have twenty-one apples and a dozen pears", "I have 21 apples and 12 pears"),
        ("Isn't it hot today?", "Is it not hot today?"),
        ("How do I reset my password?", "Please, how do I reset my password?"),
        (
            "Hugging Face Hub is a platform to host Git-based models, datasets, and Spaces.",
            "Hugging Face Hub serves as a repository for Git-based models, datasets, and Spaces.",
        ),
        ("Which is largest?\nA) cat\nB) dog", "Which is the largest?\nA) cat\nB) dog"),
    ],
)
def test_paraphrases_pass(a: str, b: str) -> None:
    assert check(a, b) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is 7 times 8?", "What is 7 times 9?"),
        ("Sam has 3 apples and buys 5 more.", "Sam has 3 apples and buys five more and 2 pears."),
        ("What is 10 minus 4?", "What is 4 minus 10?"),  # swapped operands
        ("Give me 1.5 kg of rice", "Give me 15 kg of rice"),
        ("Increase it by 10%", "Increase it by 10"),
        ("What is half of 8?", "What is a quarter of 8?"),
    ],
)
def test_r1_numbers(a: str, b: str) -> None:
    assert check(a, b) == "R1-numbers"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Is Paris the capital of France?", "Is Paris not the capital of France?"),
        ("Which of these is true?", "Which of these isn't true?"),
        ("Which planet is the largest?", "Which planet is the smallest?"),
        ("Name a fruit with seeds", "Name a fruit without seeds"),
    ],
)
def test_r2_negation_and_polarity(a: str, b: str) -> None:
    assert check(a, b) == "R2-negation"


def test_r3_options_shuffled_changed_or_missing() -> None:
    q = "Which animal barks?\nA. cat\nB. dog\nC. cow\nAnswer:"
    assert check(q, "Which animal barks?\nA. dog\nB. cat\nC. cow\nAnswer:") == "R3-options"
    assert check(q, "Which animal barks?\nA. cat\nB. dog\nC. horse\nAnswer:") == "R3-options"
    assert check(q, "Which animal barks?") == "R3-options"
    assert check("Pick one: (a) tea (b) coffee", "Pick one: (a) coffee (b) tea") == "R3-options"


@pytest.mark.parametrize(
    ("a", "b", "rule"),
    [
        ("What is the capital of France?", "What is the capital of Germany?", "R4-entities"),
        (
            "Translate from English to French: good morning",
            "Translate from French to English: good morning",
            "R4-order",
        ),
        ("Convert celsius to kelvin", "Convert kelvin to celsius", "R4-order"),
        ("Is a dog faster than a cat?", "Is a cat faster than a dog?", "R4"),
        ("the dog bit the man on the street", "the man bit the dog on the street", "R4-permutation"),
    ],
)
def test_r4_entities_order_permutation(a: str, b: str, rule: str) -> None:
    got = check(a, b)
    assert got is not None and got.startswith(rule)


def test_r4_sentence_initial_capitals_are_not_entities() -> None:
    assert check("Diffusers in PyTorch make images.", "In PyTorch, diffusers create pictures.") is None


def test_r5_code_must_match() -> None:
    a = "Why does `x = [1] * 3` alias?"
    assert check(a, "Why does `y = [1] * 3` alias?") == "R5-code"
    assert check("Explain:\n```\nprint(a)\n```", "Explain:\n```\nprint(b)\n```") == "R5-code"


def test_r6_refinement_is_a_miss() -> None:
    assert check("Write a poem about the sea", "Write a poem about the sea in French") is not None
    assert check("Write a poem about the sea", "Write a short poem about the sea") == "R6-refinement"


def test_r7_long_texts_are_never_verified() -> None:
    long = "word " * (MAX_VERIFIABLE_CHARS // 4)
    assert check(long, long) == "R7-size"


def test_r8_too_many_substituted_words() -> None:
    a = "Scenario: I helped an old lady cross the busy street today. Was that wrong?"
    b = "Scenario: I stole money from my neighbour's purse yesterday evening. Was that wrong?"
    assert check(a, b) == "R8-substitution"


def test_number_digests_differ_only_where_the_numbers_rule_fails() -> None:
    texts = ["Add 2 and 3", "Add two and three", "Add 3 and 2", "Add 2 and 4", "No numbers", "Half of 10%", "0.5 of .1"]
    for a in texts:
        assert numbers_digest(a) == signature(a).numbers_digest() != 0
        for b in texts:
            assert (numbers_digest(a) != numbers_digest(b)) == (check(a, b) == "R1-numbers"), (a, b)
    assert numbers_digest("w " * MAX_VERIFIABLE_CHARS) == 0  # too long: R7, not R1
