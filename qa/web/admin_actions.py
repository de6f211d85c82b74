"""The admin page's data and actions (:class:`AdminPage`), apart from its Gradio layout.

Who may use the page (:meth:`AdminPage.login`, :meth:`AdminPage.admin`), the document list and
its changes (upload through ``qa.web.admin_api.store_upload``, remove, restore, reindex, each
audited and followed by a reload), the figures of ``qa.web.admin_data`` and the export.
``qa.web.admin_page`` lays them out; the tests call them directly.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request

from qa.access import User
from qa.web.admin_data import (
    document_table,
    export_lines,
    flagged_html,
    flagged_questions,
    summary_html,
    table_html,
    usage_figures,
)
from qa.web.render import escape

logger = logging.getLogger(__name__)

__all__ = ["TOKEN_USER", "AdminPage"]

TOKEN_USER = "admin-token"
"""The login name that takes the admin token as its password."""
DOC_COLUMNS = (
    ("name", "名称 Name"),
    ("groups", "组 Groups"),
    ("passages", "段落 Passages"),
    ("pages", "页 Pages"),
    ("added", "加入 Added"),
    ("size", "大小 Size"),
    ("id", "ID"),
)
REMOVED_COLUMNS = (("name", "名称 Name"), ("removed", "移除 Removed"), ("id", "ID"))
AUDIT_COLUMNS = (
    ("time", "时间 Time"),
    ("user", "用户 User"),
    ("action", "操作 Action"),
    ("target", "对象 Target"),
    ("result", "结果 Result"),
)


class AdminPage:
    """The page's data and actions; ``ops`` is a ``qa.web.operations.Operations``."""

    def __init__(self, ops: Any, feedback: Any, upload_dir: str | os.PathLike[str] | None):
        self.ops = ops
        self.identity = ops.identity
        self.feedback = feedback
        self.upload_dir = Path(upload_dir) if upload_dir else None

    # --- who may ---------------------------------------------------------------------------

    def login(self, username: str, password: str) -> bool:
        """The page's login: an admin's account, or ``admin-token`` with the token."""
        if username == TOKEN_USER:
            token = self.identity.token()
            supplied = password.encode("utf-8", "surrogatepass")
            return bool(token) and secrets.compare_digest(supplied, token.encode())
        return self.identity.logins.check(username, password) and self.user_named(username).admin

    def user_named(self, name: str | None) -> User:
        if name == TOKEN_USER:
            return User(TOKEN_USER, admin=True)
        return self.identity.from_login(name)

    def proxy_dependency(self) -> Callable[[Request], str | None] | None:
        """In SSO mode: the proxy's user name when that user is an admin, else ``None`` (401)."""
        if not self.identity.user_header or self.identity.logins:
            return None

        def dependency(request: Request) -> str | None:
            user = self.identity.from_headers(request.headers)
            return user.name if user is not None and user.admin else None

        return dependency

    def admin(self, request: Any) -> User:
        """The admin behind a Gradio event, or ``gr.Error``."""
        import gradio as gr

        headers = getattr(request, "headers", None) or {}
        user = self.identity.from_headers(headers) if self.identity.user_header else None
        if user is None:
            user = self.user_named(getattr(request, "username", None))
        if not user.admin:
            raise gr.Error("仅限管理员。Admins only.")
        return user

    # --- documents -------------------------------------------------------------------------

    def index_dir(self) -> str | None:
        return self.ops.pipeline.info().index_dir

    def documents(self) -> tuple[str, str, Any, Any]:
        import gradio as gr

        table = document_table(self.index_dir())
        if table.message:
            listing = f"<p id='admin-documents' class='ludao-meta'>{escape(table.message)}</p>"
        else:
            listing = table_html(
                table.rows,
                DOC_COLUMNS,
                elem_id="admin-documents",
                empty="索引中没有文档。No documents in the index.",
            )
        removed = table_html(
            table.removed,
            REMOVED_COLUMNS,
            elem_id="admin-removed",
            empty="没有已移除的文档。No removed documents.",
        )
        ids = [r["id"] for r in table.rows]
        removed_ids = [r["id"] for r in table.removed]
        return (
            listing,
            removed,
            gr.update(choices=ids, value=None),
            gr.update(choices=removed_ids, value=None),
        )

    def _reload(self) -> tuple[bool, str]:
        reload = getattr(self.ops.pipeline, "reload", None)
        if not callable(reload):
            return True, "（此服务器不能热重载，重启后生效。Takes effect at the next start.）"
        result = reload()
        if result.reloaded:
            return True, f"已重新加载 Reloaded in {result.seconds:.1f} s."
        return False, f"重新加载失败 Reload failed: {result.error}"

    def upload(self, files: list[str] | None, group: str, user: User) -> str:
        from qa.uploads import UploadError
        from qa.web.admin_api import store_upload

        if self.upload_dir is None:
            return _report(
                [
                    (
                        "—",
                        False,
                        "此服务器没有上传文件夹。This server has no upload folder "
                        "(LUDAO_UPLOAD_DIR).",
                    )
                ]
            )
        if not files:
            return _report([("—", False, "请选择文件。Choose a file first.")])
        lines, kept = [], 0
        for path in files:
            name = Path(path).name
            try:
                with open(path, "rb") as fh:
                    chunks = iter(lambda f=fh: f.read(1 << 20), b"")
                    stored = store_upload(self.upload_dir, name, chunks, group or "everyone")
            except UploadError as exc:
                lines.append((name, False, str(exc)))
                self.ops.audit.action(user.name, "upload", name, "refused", reason=str(exc))
                continue
            kept += 1
            lines.append(
                (
                    stored["saved"],
                    True,
                    f"{stored['characters']} 字符 characters, 组 group {stored['group']}",
                )
            )
            self.ops.audit.action(
                user.name,
                "upload",
                stored["saved"],
                group=stored["group"],
                characters=stored["characters"],
            )
        if kept:
            ok, message = self._reload()
            lines.append(("reload", ok, message))
        return _report(lines)

    def change(self, action: str, key: str | None, user: User) -> str:
        """``remove`` or ``restore`` a document, or ``reindex``; then reload the served index."""
        from qa.errors import LudaoError
        from qa.index import remove_document, restore_document

        index_dir = self.index_dir()
        if action != "reindex":
            if not key:
                return _report([(action, False, "请选择文档。Choose a document first.")])
            if not index_dir or not Path(index_dir).is_dir():
                return _report([(action, False, "no saved index folder to change")])
            change = remove_document if action == "remove" else restore_document
            try:
                change(Path(index_dir), key)
            except LudaoError as exc:
                self.ops.audit.action(user.name, action, key, "refused", reason=str(exc))
                return _report([(key, False, str(exc))])
        t0 = time.perf_counter()
        ok, message = self._reload()
        self.ops.audit.action(
            user.name,
            action,
            key or "",
            "ok" if ok else "failed",
            seconds=round(time.perf_counter() - t0, 2),
        )
        return _report([(key or "reindex", ok, message)])

    # --- feedback and usage ----------------------------------------------------------------

    def records(self) -> tuple[list, list]:
        try:
            feedback = self.feedback.read() if self.feedback is not None else []
        except Exception:  # a damaged feedback file must not hide the usage figures
            logger.exception("could not read the feedback records")
            feedback = []
        return self.ops.usage.read(), feedback

    def figures(self, threshold: float) -> tuple[Any, ...]:
        usage, feedback = self.records()
        figures = usage_figures(usage, feedback, threshold=float(threshold))
        summary = figures["summary"]
        flagged = flagged_questions(usage, feedback)
        return (
            summary_html(summary),
            figures["per_day"],
            figures["ratings"],
            figures["per_day"],
            figures["per_day"],
            figures["top_questions"],
            flagged_html(flagged),
        )

    def export_text(self, user: User) -> tuple[str, int]:
        usage, feedback = self.records()
        lines = export_lines(flagged_questions(usage, feedback, limit=100_000))
        self.ops.audit.action(user.name, "export", "flagged questions", questions=len(lines))
        return "".join(line + "\n" for line in lines), len(lines)

    def export_file(self, user: User) -> str:
        text, _ = self.export_text(user)
        folder = Path(tempfile.mkdtemp(prefix="ludao-export-"))
        path = folder / "ludao-feedback-questions.jsonl"
        path.write_text(text, encoding="utf-8")
        return str(path)

    def audit_html(self) -> str:
        rows = [e.to_dict() for e in self.ops.audit.read(200)]
        for row in rows:
            row["time"] = row["time"][:19].replace("T", " ")
        return table_html(
            rows,
            AUDIT_COLUMNS,
            elem_id="admin-audit",
            empty="还没有管理操作。No admin actions yet.",
        )


def _report(lines: list[tuple[str, bool, str]]) -> str:
    items = "".join(
        f"<li><span class='{'ludao-ok' if ok else 'ludao-bad'}'>{'✓' if ok else '✗'}</span> "
        f"<strong>{escape(name)}</strong>: {escape(text)}</li>"
        for name, ok, text in lines
    )
    return f"<ul id='admin-report'>{items}</ul>"
