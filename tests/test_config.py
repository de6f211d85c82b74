"""Settings: defaults, then $LUDAO_HOME/config.toml, then LUDAO_* variables, then overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa import config
from qa.config import DEFAULT_CORPUS, DEFAULT_READER, ServeSettings, Settings


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


# --- ServeSettings: how the server listens, loaded the same way -----------------------------

SERVE_ENV = {
    "LUDAO_HOST": ("host", "0.0.0.0"),
    "LUDAO_PORT": ("port", 8080),
    "LUDAO_ROOT_PATH": ("root_path", "/ludao"),
    "LUDAO_CORS_ORIGINS": ("cors_origins", ("https://a.example", "https://b.example:8443")),
    "LUDAO_CONCURRENCY": ("concurrency", 2),
    "LUDAO_MAX_QUEUE": ("max_queue", 16),
    "LUDAO_WATCH": ("watch", 2.5),
    "LUDAO_UPLOAD_DIR": ("upload_dir", "/srv/uploads"),
    "LUDAO_ADMIN_TOKEN": ("admin_token", "t0ken"),
    "LUDAO_USERNAME": ("username", "staff"),
    "LUDAO_PASSWORD": ("password", "pw"),
    "LUDAO_FORWARDED_ALLOW_IPS": ("forwarded_allow_ips", "10.0.0.1"),
}
"""Every variable the server read before ServeSettings existed, and what it must still set."""


def test_serve_settings_defaults() -> None:
    server = ServeSettings.load()
    assert server == ServeSettings()
    assert (server.host, server.port, server.concurrency, server.max_queue) == (
        "127.0.0.1", 7860, 4, 64,
    )  # fmt: skip
    assert server.login is None and server.forwarded_allow_ips == "127.0.0.1"


def test_serve_settings_read_the_existing_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = {name: str(value) for name, (_, value) in SERVE_ENV.items()}
    raw["LUDAO_CORS_ORIGINS"] = "https://a.example, https://b.example:8443,"  # URLs have colons
    for name, value in raw.items():
        monkeypatch.setenv(name, value)
    server = ServeSettings.load()
    assert {field: getattr(server, field) for field, _ in SERVE_ENV.values()} == dict(
        SERVE_ENV.values()
    )
    assert server.login == ("staff", "pw")
    assert ServeSettings.load(port="9000").port == 9000  # overrides beat the environment


def test_serve_settings_from_the_serve_table(
    ludao_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        ludao_home,
        'top_k = 7\n[serve]\nport = 8000\ncors_origins = ["https://a.example"]\n',
    )
    assert Settings.load().top_k == 7  # the [serve] table is not a Settings key
    server = ServeSettings.load()
    assert (server.port, server.cors_origins) == (8000, ("https://a.example",))
    monkeypatch.setenv("LUDAO_PORT", "8001")
    assert ServeSettings.load().port == 8001
    write_config(ludao_home, "[serve]\nprot = 8000\n")
    with pytest.raises(ValueError, match="unknown setting 'prot'"):
        ServeSettings.load()
    write_config(ludao_home, "port = 8000\n")  # a server key at the top level is a typo too
    with pytest.raises(ValueError, match="unknown setting 'port'"):
        Settings.load()


def test_login_needs_both_username_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUDAO_USERNAME", raising=False)
    monkeypatch.delenv("LUDAO_PASSWORD", raising=False)
    assert ServeSettings.load().login is None
    monkeypatch.setenv("LUDAO_USERNAME", "staff")
    with pytest.raises(ValueError, match="LUDAO_PASSWORD"):
        ServeSettings.load()
    monkeypatch.setenv("LUDAO_PASSWORD", "pw")
    assert ServeSettings.load().login == ("staff", "pw")


def test_portable_path_names_no_folder_of_this_machine(tmp_path):
    from qa.config import REPO_ROOT, portable_path

    assert portable_path(REPO_ROOT / "data" / "corpus") == "data/corpus"
    shared = REPO_ROOT.parent / "shared" / "data" / "qa" / "cmrc2018_dev.json"
    assert portable_path(shared) == "../shared/data/qa/cmrc2018_dev.json"
    assert portable_path(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
