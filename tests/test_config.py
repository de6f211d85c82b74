"""Settings: defaults, then $LUDAO_HOME/config.toml, then LUDAO_* variables, then overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa import config
from qa.config import DEFAULT_CORPUS, DEFAULT_READER, Settings


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_defaults_without_config_or_environment(ludao_home: Path) -> None:
    settings = Settings.load()
    assert settings == Settings()
    assert settings.corpus == (str(DEFAULT_CORPUS),) and settings.reader == str(DEFAULT_READER)
    assert settings.home_dir == ludao_home == config.ludao_home()


def test_environment_sets_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUDAO_TOP_K", "8")
    monkeypatch.setenv("LUDAO_DENSE_WEIGHT", "0.25")
    monkeypatch.setenv("LUDAO_READER", "sentence")
    monkeypatch.setenv("LUDAO_CORPUS", os.pathsep.join(["/docs/a", "/docs/b", ""]))
    settings = Settings.load()
    assert settings.top_k == 8 and isinstance(settings.top_k, int)
    assert settings.dense_weight == 0.25
    assert settings.reader == "sentence"
    assert settings.corpus == ("/docs/a", "/docs/b")


def test_config_file_then_environment_then_overrides(
    ludao_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(ludao_home, 'top_k = 7\nreader_top_k = 2\ncorpus = ["/srv/docs"]\n')
    settings = Settings.load()
    assert (settings.top_k, settings.reader_top_k, settings.corpus) == (7, 2, ("/srv/docs",))
    monkeypatch.setenv("LUDAO_TOP_K", "9")
    assert Settings.load().top_k == 9  # the environment beats the file
    assert Settings.load().reader_top_k == 2
    assert Settings.load(top_k=3, reader=None).top_k == 3  # explicit overrides beat both
    assert Settings.load(reader=None).reader == str(DEFAULT_READER)  # None means "not given"


def test_unknown_key_in_config_file_is_refused(ludao_home: Path) -> None:
    write_config(ludao_home, "top_k = 5\ntopk = 8\n")
    with pytest.raises(ValueError, match="unknown setting 'topk'"):
        Settings.load()


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        Settings.load(colour="blue")


def test_bad_number_in_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUDAO_TOP_K", "many")
    with pytest.raises(ValueError):
        Settings.load()


def test_home_comes_from_the_environment_only_through_ludao_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUDAO_HOME", str(tmp_path / "elsewhere"))
    assert Settings.load().home_dir == tmp_path / "elsewhere"
    assert Settings.load(home=str(tmp_path / "explicit")).home_dir == tmp_path / "explicit"
    monkeypatch.delenv("LUDAO_HOME")
    assert config.ludao_home() == Path.home() / ".cache" / "ludao"
