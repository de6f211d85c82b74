"""Who is calling: the built-in login, a trusted proxy's header, or nobody (``anonymous``).

Two ways to know the user, as IT chooses (docs/intranet.md):

- the built-in login: Gradio's login form for the chat and HTTP Basic for the JSON API, checked
  against :class:`Logins` (one ``username``/``password`` pair and/or a users file with groups);
- a reverse proxy that authenticates (SSO) and passes the name in a header (``Remote-User``) and
  the groups in another; ``qa.web.security.ProxyHeaders`` removes those headers from any request
  that does not come from a configured proxy address, so here they can be believed.

Admin calls (reload, upload, details of ``/healthz``) need the admin token as a bearer token, or
a logged-in user of the admin group. There is no "from this machine means admin": a web page in a
user's browser can post to ``127.0.0.1``, and a proxy on the same host makes every user local.
When no token is configured one is generated at first start and kept, mode 0600, in
``$LUDAO_HOME/admin-token``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request

from qa.access import ANONYMOUS, User, parse_groups
from qa.web.security import LoginLimiter

logger = logging.getLogger(__name__)

__all__ = ["ADMIN_TOKEN_FILE", "Identity", "Logins", "admin_token_from_home"]

ADMIN_TOKEN_FILE = "admin-token"


def admin_token_from_home(home: Path) -> str:
    """The admin token stored under ``home``, created (mode 0600) on first use.

    Created with ``O_EXCL`` so two starting servers agree on one token, and never with wider
    permissions than the owner's. An existing file readable by others is refused.
    """
    path = home / ADMIN_TOKEN_FILE
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o077
        if mode:
            raise PermissionError(
                f"{path} is readable by other users (mode {oct(path.stat().st_mode & 0o777)}); "
                "chmod 600 it or delete it to make a new token"
            ) from None
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
        path.unlink()
        return admin_token_from_home(home)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    logger.warning("generated an admin token; it is in %s (mode 0600)", path)
    return token


@dataclass(frozen=True)
class Logins:
    """Accounts of the built-in login: name → (password, groups).

    A users file is TOML: ``[users.li] password = "…"  groups = ["hr"]``. Passwords are compared
    in constant time; the file should be readable by the server's user only.
    """

    accounts: Mapping[str, tuple[str, frozenset[str]]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, login: tuple[str, str] | None, users_file: str = "") -> Logins:
        accounts: dict[str, tuple[str, frozenset[str]]] = {}
        if login:
            accounts[login[0]] = (login[1], frozenset())
        if users_file:
            accounts.update(_read_users(Path(users_file).expanduser()))
        return cls(accounts)

    def __bool__(self) -> bool:
        return bool(self.accounts)

    def check(self, username: str, password: str) -> bool:
        expected = self.accounts.get(username)
        supplied = password.encode("utf-8", "surrogatepass")
        if expected is None:
            secrets.compare_digest(supplied, supplied)  # same work for unknown names
            return False
        return secrets.compare_digest(supplied, expected[0].encode("utf-8", "surrogatepass"))

    def groups(self, username: str) -> frozenset[str]:
        return self.accounts.get(username, ("", frozenset()))[1]


def _read_users(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    users = data.get("users", {})
    if not isinstance(users, dict):
        raise ValueError(f"{path}: expected a [users.NAME] table per user")
    out = {}
    for name, entry in users.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("password"), str):
            raise ValueError(f"{path}: user {name!r} needs a password")
        out[str(name)] = (entry["password"], parse_groups(entry.get("groups", [])))
    return out


@dataclass(frozen=True)
class Identity:
    """Turns a request into a :class:`~qa.access.User` and decides admin calls."""

    logins: Logins = field(default_factory=Logins)
    admin_token: str = ""
    token_home: Path | None = None
    """Without ``admin_token``: the folder whose token file is used (made on first admin call)."""
    admin_group: str = "admin"
    user_header: str = ""
    groups_header: str = ""
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    metrics_token: str = ""
    """Bearer token that may read ``/metrics`` and nothing else (a Prometheus scraper's)."""

    @property
    def login_required(self) -> bool:
        """Whether every caller must be known (a login or a proxy identity is configured)."""
        return bool(self.logins) or bool(self.user_header)

    def user(self, name: str, groups: frozenset[str] = frozenset()) -> User:
        return User(name, groups, admin=self.admin_group in groups)

    def from_headers(self, headers: Mapping[str, str]) -> User | None:
        """The proxy's user (headers already filtered by ``ProxyHeaders``), or ``None``."""
        if not self.user_header:
            return None
        name = (headers.get(self.user_header) or "").strip()
        if not name or len(name) > 256 or not name.isprintable():
            return None
        groups = parse_groups(headers.get(self.groups_header, "")) if self.groups_header else set()
        return self.user(name, frozenset(groups))

    def from_login(self, username: str | None) -> User:
        """The user behind a Gradio session (``gr.Request.username``)."""
        if not username:
            return ANONYMOUS
        return self.user(username, self.logins.groups(username))

    def gradio_auth(self) -> Any:
        """What ``mount_gradio_app(auth=...)`` takes: a check function, or ``None`` (no login)."""
        return self.logins.check if self.logins else None

    def gradio_auth_dependency(self) -> Any:
        """What ``mount_gradio_app(auth_dependency=...)`` takes in proxy mode, else ``None``."""
        if not self.user_header or self.logins:
            return None

        def dependency(request: Request) -> str | None:
            user = self.from_headers(request.headers)
            return user.name if user else None

        return dependency

    def gradio_user(self, name: str | None, headers: Mapping[str, str] | None) -> User:
        """The chat's user: the proxy's header when configured, else the login's name."""
        proxied = self.from_headers(headers or {})
        return proxied if proxied is not None else self.from_login(name)

    def from_request(self, request: Request) -> User:
        """The API caller: proxy header, else HTTP Basic; 401 when a login is required.

        Failed Basic logins count toward the client's limit (429 once over it).
        """
        proxied = self.from_headers(request.headers)
        if proxied is not None:
            return proxied
        credentials = _basic(request)
        if credentials is None:
            if self.login_required:
                raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Basic"})
            return ANONYMOUS
        client = request.client.host if request.client else "?"
        if self.limiter.blocked(client):
            raise HTTPException(429, "too many failed logins; wait a minute")
        username, password = credentials
        if not self.logins.check(username, password):
            self.limiter.failed(client)
            raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Basic"})
        return self.from_login(username)

    def check_admin(self, request: Request) -> User:
        """An admin call: the bearer token, or a logged-in user of the admin group; else 401/403."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            expected = self.token()
            if expected and secrets.compare_digest(
                token.strip().encode("utf-8", "surrogatepass"), expected.encode()
            ):
                return User("admin-token", admin=True)
            client = request.client.host if request.client else "?"
            self.limiter.failed(client)
            raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})
        user = self.from_request(request) if self.login_required else ANONYMOUS
        if user.admin:
            return user
        if user.anonymous:
            raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})
        raise HTTPException(403, f"{user.name!r} is not in the admin group")

    def token(self) -> str:
        """The admin token: configured, or the one stored under ``token_home``."""
        if self.admin_token or self.token_home is None:
            return self.admin_token
        return admin_token_from_home(self.token_home)

    def is_admin(self, request: Request) -> bool:
        """Whether ``request`` could make an admin call (for details that only admins see)."""
        try:
            return self.check_admin(request).admin
        except HTTPException:
            return False


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    with contextlib.suppress(ValueError, UnicodeDecodeError, binascii.Error):
        username, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
        if sep and username:
            return username, password
    return ("", "")
