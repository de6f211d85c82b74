"""Thread policy from Settings: OMP_WAIT_POLICY only before torch loads, never over the user's."""

from __future__ import annotations

import os
import sys

import pytest

from qa.config import Settings
from qa.pipeline import apply_thread_settings


def test_wait_policy_is_set_before_torch_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    apply_thread_settings(0, "passive")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "torch" not in sys.modules  # threads=0 must not import torch


def test_wait_policy_never_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    apply_thread_settings(0, "passive")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_wait_policy_is_not_applied_once_torch_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setitem(sys.modules, "torch", object())
    apply_thread_settings(0, "passive")
    assert "OMP_WAIT_POLICY" not in os.environ


def test_empty_policy_leaves_it_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    apply_thread_settings(0, "")
    assert "OMP_WAIT_POLICY" not in os.environ


def test_torch_threads_are_set_and_speed_settings_load_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        apply_thread_settings(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv("LUDAO_READER_PRECISION", "int8")
    monkeypatch.setenv("LUDAO_ANSWER_CACHE_SIZE", "0")
    monkeypatch.setenv("LUDAO_OMP_WAIT_POLICY", "")
    settings = Settings.load()
    assert (settings.reader_precision, settings.answer_cache_size) == ("int8", 0)
    assert settings.omp_wait_policy == ""


def test_latency_bench_reports_the_index_build_rate(passages) -> None:
    from conftest import FakeEncoder

    from benchmarks.latency import _index_build_rate
    from qa.retrieval import Retriever

    encoder = FakeEncoder()
    retriever = Retriever(encoder, passages).build()
    calls = encoder.passage_calls
    rate = _index_build_rate(retriever, limit=3)
    assert rate["passages"] == 3 and rate["passages_per_s"] > 0
    assert rate["mean_chars"] == round(sum(len(p.text) for p in passages[:3]) / 3, 1)
    assert encoder.passage_calls == calls + 2  # one warm-up call, one timed call
