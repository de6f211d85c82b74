"""Thread policy from Settings: OMP_WAIT_POLICY only before torch loads, never over the user's."""

from __future__ import annotations

import os
import sys

import pytest

from qa.config import Settings
from qa.pipeline import BRIEF_SPIN_COUNT, apply_thread_settings


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


@pytest.mark.parametrize("policy", ["brief", "adaptive"])
def test_brief_policy_bounds_libgomp_spinning(monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    apply_thread_settings(0, policy)
    assert os.environ["GOMP_SPINCOUNT"] == BRIEF_SPIN_COUNT
    assert "OMP_WAIT_POLICY" not in os.environ  # passive would spin 0 times whatever the count


@pytest.mark.parametrize("policy", ["brief", "adaptive"])
@pytest.mark.parametrize(
    ("given", "kept"), [({"GOMP_SPINCOUNT": "5"}, "5"), ({"OMP_WAIT_POLICY": "PASSIVE"}, None)]
)
def test_brief_policy_never_overrides_the_environment(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], kept: str | None, policy: str
) -> None:
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    apply_thread_settings(0, policy)
    assert os.environ.get("GOMP_SPINCOUNT") == kept


def test_an_unknown_policy_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(ValueError, match="omp_wait_policy 'spinny'"):
        apply_thread_settings(0, "spinny")
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

    from qa.eval.bench import _index_build_rate
    from qa.retrieval import Retriever

    encoder = FakeEncoder()
    retriever = Retriever(encoder, passages).build()
    calls = encoder.passage_calls
    rate = _index_build_rate(retriever, limit=3)
    assert rate["passages"] == 3 and rate["passages_per_s"] > 0
    assert rate["mean_chars"] == round(sum(len(p.text) for p in passages[:3]) / 3, 1)
    assert encoder.passage_calls == calls + 2  # one warm-up call, one timed call


def test_build_rate_is_also_a_fraction_of_the_limit_when_tokens_can_be_counted(
    passages, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tokenizer at hand the rate becomes GFLOP/s = tokens × FLOP/token / seconds."""
    from types import SimpleNamespace

    from conftest import FakeEncoder

    import qa.eval.bench as latency
    from qa.eval.limit import FLOP_PER_TOKEN, flop_per_token
    from qa.retrieval import Retriever

    assert flop_per_token(12) == FLOP_PER_TOKEN == pytest.approx(42.5e6, rel=0.01)
    encoder = FakeEncoder()
    # Ten token ids per text, "passage: " prompt included; the timed call takes 0.5 s.
    encoder.model = SimpleNamespace(
        tokenizer=lambda texts: {"input_ids": [[0] * 10 for _ in texts]},
        prompts={"passage": "passage: "},
        max_seq_length=512,
    )
    retriever = Retriever(encoder, passages).build()
    monkeypatch.setattr(latency, "_timed", lambda fn: (500.0, fn()))
    rate = latency._index_build_rate(retriever, limit=4, limit_gflops=100.0)
    assert rate["passages_per_s"] == 8.0 and rate["mean_tokens"] == 10.0
    assert rate["gflops"] == round(40 * FLOP_PER_TOKEN / 0.5 / 1e9, 1)
    assert rate["fraction_of_limit"] == round(rate["gflops"] / 100.0, 3)
    without = latency._index_build_rate(Retriever(FakeEncoder(), passages).build(), limit=4)
    assert "fraction_of_limit" not in without  # no tokenizer, no limit: no made-up figure


def test_stage_shares_use_the_limit_of_the_precision_each_model_runs_at(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Query embedding at bf16 is held to the bf16 limit, an int8 reader to the fp32 one."""
    from types import SimpleNamespace

    import qa.eval.bench as latency
    from qa.eval.limit import flop_per_token

    limits = {"fp32": 100.0, "bf16": 400.0}
    monkeypatch.setattr(
        latency, "measure_limit", lambda dtype="fp32": {"gflops_best": limits[dtype]}
    )
    config = SimpleNamespace(num_hidden_layers=12)

    class SentenceModel:  # indexable like a SentenceTransformer: module 0 wraps the model
        def __init__(self) -> None:
            self.prompts = {"query": "query: "}
            self.max_seq_length = 512

        @staticmethod
        def tokenizer(texts):
            return {"input_ids": [[0] * 20 for _ in texts]}

        def __getitem__(self, index):
            return SimpleNamespace(auto_model=SimpleNamespace(config=config))

    indexable = SentenceModel()
    encoder = SimpleNamespace(model=indexable, resolved_precision="bf16")
    reader = SimpleNamespace(
        _model=SimpleNamespace(config=SimpleNamespace(num_hidden_layers=8)),
        resolved_precision="int8",
    )
    stages = {"query_embedding": [10.0, 10.0], "read": [50.0, 50.0]}
    shares, got = latency._stage_shares(
        SimpleNamespace(encoder=encoder), reader, stages, ["a", "b"], 1, 400, {"gflops_best": 100.0}
    )
    assert got == limits
    query = shares["query_embedding"]
    assert (query["tokens"], query["precision"], query["limit_gflops"]) == (40, "bf16", 400.0)
    assert query["gflops"] == round(40 * flop_per_token(12) / 0.02 / 1e9, 1)
    assert query["fraction_of_limit"] == round(query["gflops"] / 400.0, 3)
    read = shares["read"]
    assert (read["tokens"], read["limit_gflops"]) == (400, 100.0)
    assert read["gflops"] == round(400 * flop_per_token(8) / 0.1 / 1e9, 1)
    # Nothing to count (no tokenizer, no tokens read): no made-up figure.
    bare = SimpleNamespace(encoder=SimpleNamespace(resolved_precision="fp32"))
    assert latency._stage_shares(bare, reader, stages, ["a"], 1, 0, {"gflops_best": 1.0})[0] == {}
