"""Settings: the one place where defaults, environment variables and config files meet.

Library classes take explicit arguments; only the CLI, the UI and benchmarks call
``Settings.load()``. Environment variables are ``LUDAO_<FIELD>`` in upper case (for example
``LUDAO_TOP_K=8``); a TOML file at ``$LUDAO_HOME/config.toml`` is read first if present.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "data" / "corpus"
DEFAULT_READER = REPO_ROOT / "models" / "reader-zh"


def ludao_home() -> Path:
    """``$LUDAO_HOME`` or ``~/.cache/ludao``: caches, converted models, indexes, feedback."""
    home = os.environ.get("LUDAO_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "ludao"


@dataclass(frozen=True)
class Settings:
    corpus: tuple[str, ...] = (str(DEFAULT_CORPUS),)
    embedding_model: str = "multilingual-e5-small"
    reader: str = str(DEFAULT_READER)
    home: str = ""
    top_k: int = 5
    reader_top_k: int = 3
    max_chars: int = 300
    min_chars: int = 80
    dense_weight: float = 1.0
    sparse_weight: float = 1.0
    rrf_k: int = 60
    device: str = "cpu"
    max_question_chars: int = 500
    include: tuple[str, ...] = ()
    """Glob patterns a file in a corpus folder must match (``ludao index --include``)."""
    exclude: tuple[str, ...] = ()
    """Glob patterns of files or folders to leave out (``ludao index --exclude``)."""
    # Speed options (issue #6); each is measured in benchmarks/speed.py. 0 = off.
    reader_precision: str = "auto"
    """fp32, bf16, int8 or auto (bf16 where the CPU multiplies bf16 natively, else fp32)."""
    reader_passages: int = 3
    reader_max_length: int = 0
    reader_stride: int = 0
    reader_early_exit: float = 0.8
    answer_cache_size: int = 256
    torch_threads: int = 0
    omp_wait_policy: str = "passive"
    query_engine: str = "torch"
    embedding_precision: str = "auto"
    """As ``reader_precision``; int8 changes the index's model id (a separate index)."""

    @property
    def home_dir(self) -> Path:
        return Path(self.home).expanduser() if self.home else ludao_home()

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Defaults, then ``$LUDAO_HOME/config.toml``, then ``LUDAO_*`` env, then ``overrides``."""
        settings = cls()
        config_file = ludao_home() / "config.toml"
        if config_file.is_file():
            with config_file.open("rb") as fh:
                settings = settings._with(tomllib.load(fh))
        env = {
            f.name: os.environ[f"LUDAO_{f.name.upper()}"]
            for f in fields(cls)
            if f"LUDAO_{f.name.upper()}" in os.environ and f.name != "home"
        }
        settings = settings._with(env)
        return settings._with({k: v for k, v in overrides.items() if v is not None})

    def _with(self, values: dict[str, object]) -> Settings:
        typed: dict[str, object] = {}
        names = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in names:
                raise ValueError(f"unknown setting {key!r}")
            current = getattr(self, key)
            if isinstance(current, tuple):
                if isinstance(value, str):
                    value = tuple(v for v in value.split(os.pathsep) if v)
                typed[key] = tuple(str(v) for v in value)  # type: ignore[union-attr]
            elif isinstance(current, bool):
                typed[key] = str(value).lower() in {"1", "true", "yes"}
            elif isinstance(current, int):
                typed[key] = int(value)  # type: ignore[arg-type]
            elif isinstance(current, float):
                typed[key] = float(value)  # type: ignore[arg-type]
            else:
                typed[key] = str(value)
        return replace(self, **typed)
