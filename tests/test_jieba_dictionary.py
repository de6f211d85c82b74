"""jieba's prefix dictionary comes from ``$LUDAO_HOME``, never from the shared temp dir."""

from __future__ import annotations

import marshal
import shutil
import tempfile
from pathlib import Path

import jieba
import pytest

from qa import jieba_dictionary
from qa.jieba_dictionary import cache_dir, cache_name, initialise

SENTENCE = "中华人民共和国的数字化转型工作由信息中心负责"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prefix dictionary built once by ``initialise`` (about a second or two)."""
    directory = tmp_path_factory.mktemp("jieba-built")
    initialise(jieba.Tokenizer(), directory)
    return directory / cache_name()


@pytest.fixture
def system_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for ``/tmp``, where jieba would put (and look for) its cache."""
    temp = tmp_path / "system-temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def test_build_writes_the_cache_in_the_given_directory_only(
    tmp_path: Path, system_temp: Path, built: Path
) -> None:
    tokenizer = initialise(jieba.Tokenizer(), tmp_path / "home")
    written = tmp_path / "home" / cache_name()
    assert written.is_file()
    assert list(system_temp.iterdir()) == []
    assert marshal.loads(written.read_bytes())[1] == marshal.loads(built.read_bytes())[1]
    assert "转型" in tokenizer.lcut(SENTENCE)


def test_a_cache_planted_in_the_temp_dir_is_not_read(tmp_path: Path, system_temp: Path) -> None:
    planted = ({"中华人民共和国的数字化转型": 10**9, "中": 1}, 10**9)
    (system_temp / "jieba.cache").write_bytes(marshal.dumps(planted))
    tokenizer = initialise(jieba.Tokenizer(), tmp_path / "home")
    assert len(tokenizer.FREQ) > 100_000
    assert "中华人民共和国的数字化转型" not in tokenizer.lcut(SENTENCE)


def test_a_second_start_reads_the_cache_without_rebuilding(
    tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(built, home / cache_name())

    def rebuild(*args: object) -> None:
        raise AssertionError("the prefix dictionary was rebuilt although it was cached")

    monkeypatch.setattr(jieba.Tokenizer, "gen_pfdict", rebuild)
    tokenizer = initialise(jieba.Tokenizer(), home)
    assert tokenizer.initialized
    assert (tokenizer.FREQ, tokenizer.total) == marshal.loads(built.read_bytes())
    assert initialise(tokenizer, home) is tokenizer  # a second call does nothing


@pytest.mark.parametrize(
    "content",
    [b"\x00\xffnot marshal at all", marshal.dumps(["a", "list"]), marshal.dumps(({}, 0))],
    ids=["garbage", "wrong-type", "empty"],
)
def test_an_unreadable_cache_is_replaced_by_a_rebuilt_one(
    tmp_path: Path, built: Path, content: bytes
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / cache_name()).write_bytes(content)
    tokenizer = initialise(jieba.Tokenizer(), home)
    assert "转型" in tokenizer.lcut(SENTENCE)
    assert (home / cache_name()).read_bytes() == built.read_bytes()


def test_the_cache_lives_under_ludao_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUDAO_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "jieba"


def test_a_users_own_dictionary_is_not_given_the_default_cache(tmp_path: Path, built: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(built, home / cache_name())
    own = tmp_path / "own.txt"
    own.write_text("鹭岛 100 n\n厦门 50 ns\n", encoding="utf-8")
    tokenizer = initialise(jieba.Tokenizer(str(own)), home)
    assert len(tokenizer.FREQ) < 10
    assert tokenizer.cache_file != cache_name()


def test_the_search_tokens_use_the_process_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import search_terms

    calls: list[str] = []
    real = jieba_dictionary.default_tokenizer

    def counted() -> jieba.Tokenizer:
        calls.append("called")
        return real()

    monkeypatch.setattr(search_terms, "_cut", None)
    monkeypatch.setattr(jieba_dictionary, "default_tokenizer", counted)
    assert "共和国" in search_terms.tokenize_for_search(SENTENCE)
    assert calls == ["called"]
