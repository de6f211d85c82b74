"""The rules that name the failed stage in benchmarks/seed_failures.py."""

from __future__ import annotations

import pytest

from benchmarks.seed_failures import classify

PASSAGES = ["2024年全社会研发投入强度达到3.46%。", "厦门有翔安创新实验室。"]


@pytest.mark.parametrize(
    ("golds", "answer", "passages", "cause"),
    [
        (("3.46%",), "3.46%", PASSAGES, None),
        (("3.46%",), "3.46", PASSAGES, "boundary"),  # a number without its unit is not whole
        (("3.46%",), "达到3.46%", PASSAGES, "boundary"),
        (("3.46%",), "翔安创新实验室", PASSAGES, "wrong span"),
        (("3.46%",), None, PASSAGES, "declined"),
        (("3.46%",), "3.08%", PASSAGES[1:], "retrieval"),
        ((), None, PASSAGES, None),
        ((), "3.46%", PASSAGES, "answered unanswerable"),
    ],
)
def test_classify(golds, answer, passages, cause) -> None:
    assert classify(golds, answer, passages) == cause
