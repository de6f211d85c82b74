"""The routes that change what a server answers from: ``POST /api/reload`` and
``POST /api/documents`` (upload a file into the corpus, then reload).

Both are admin calls (:meth:`qa.web.identity.Identity.check_admin`): the admin token, or a
logged-in user of the admin group. An upload is checked in this order, so an unauthenticated
or oversized request costs nothing: admin, declared ``Content-Length``, then the body is
streamed with a cap (a chunked body cannot exceed it either), the name made safe, the file
written, then read once in a limited child process (``qa.upload_check``): an unreadable file is
reported and not kept.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

if TYPE_CHECKING:
    from qa.reloading import ReloadResult
    from qa.web.identity import Identity

FORM_OVERHEAD = 64 * 1024
"""Bytes of multipart framing and small fields allowed on top of the file's own limit."""


class Reloadable(Protocol):
    """A pipeline that can swap itself for a fresh one (``qa.reloading.ReloadablePipeline``)."""

    def reload(self) -> ReloadResult: ...


class Audit(Protocol):
    """Where admin actions are written (``qa.audit.AuditLog``)."""

    def action(self, user: str, action: Any, target: str = "", result: str = "ok",
               **detail: Any) -> None: ...  # fmt: skip


def add_reload_route(
    api: APIRouter, pipeline: Reloadable, identity: Identity, audit: Audit | None = None
) -> None:
    """``POST /api/reload``: 200 with the new pipeline's info, 500 (old one still serving)."""

    @api.post("/api/reload")
    def reload(request: Request) -> JSONResponse:
        user = identity.check_admin(request)
        result = pipeline.reload()
        if audit is not None:
            outcome = "ok" if result.reloaded else "failed"
            audit.action(user.name, "reload", result=outcome, error=result.error)
        return JSONResponse(result.to_dict(), status_code=200 if result.reloaded else 500)


def store_upload(
    upload_dir: str | os.PathLike[str],
    filename: object,
    chunks: Iterable[bytes],
    group: object,
    *,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Store one uploaded file with its group, after reading it once in a limited child process.

    The one upload path of the API and the admin page: a safe name, the size cap, the group
    checked, and an unreadable file (a broken PDF, random bytes named ``.pdf``) reported and
    removed again. Returns ``{"saved", "group", "characters"}``.

    Raises:
        UploadError: with the HTTP status that fits (400, 413, 415, 422).
    """
    from qa.access import UploadGroups, clean_group
    from qa.loaders import registered_suffixes
    from qa.upload_check import check_readable
    from qa.uploads import MAX_UPLOAD_BYTES, UploadError, safe_upload_name, save_upload

    try:
        group = clean_group(group or "everyone")
    except ValueError as exc:
        raise UploadError(str(exc)) from None
    name = safe_upload_name(filename, registered_suffixes())
    limit = max_bytes if max_bytes is not None else MAX_UPLOAD_BYTES
    saved = save_upload(upload_dir, name, chunks, max_bytes=limit)
    check = check_readable(saved)
    if not check.ok:
        saved.unlink(missing_ok=True)
        raise UploadError(f"{name} cannot be read: {check.reason}; it was not kept", status=422)
    UploadGroups(upload_dir).set(saved.name, [group])
    return {"saved": saved.name, "group": group, "characters": check.characters}


class _TooLarge(Exception):
    pass


def _capped(receive: Callable[[], Awaitable[dict]], limit: int) -> Callable[[], Awaitable[dict]]:
    received = 0

    async def capped() -> dict:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _TooLarge
        return message

    return capped


def add_upload_route(
    app: FastAPI,
    upload_dir: str | os.PathLike[str],
    pipeline: object,
    identity: Identity,
    *,
    max_bytes: int | None = None,
    audit: Audit | None = None,
) -> None:
    """``POST /api/documents`` (multipart: ``file``, optional ``group``): store, check, reload.

    On the app itself, not the body-limited router: uploads have their own, larger limit.
    """
    from qa.uploads import MAX_UPLOAD_BYTES, UploadError

    limit = max_bytes if max_bytes is not None else MAX_UPLOAD_BYTES
    reload = getattr(pipeline, "reload", None)

    @app.post("/api/documents", status_code=201)
    async def upload_document(request: Request) -> JSONResponse:
        user = identity.check_admin(request)  # before a single byte of the body is read
        declared = request.headers.get("content-length", "")
        if declared and not declared.isdigit():
            raise HTTPException(400, "invalid Content-Length")
        if declared and int(declared) > limit + FORM_OVERHEAD:
            raise HTTPException(413, f"upload limit is {limit // 2**20} MiB")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPException(415, "send the file as multipart/form-data (field 'file')")
        capped = Request(request.scope, _capped(request.receive, limit + FORM_OVERHEAD))
        try:
            form = await capped.form(max_files=1, max_fields=4)
        except _TooLarge:
            raise HTTPException(413, f"upload limit is {limit // 2**20} MiB") from None
        except Exception as exc:  # a malformed multipart body of any kind
            raise HTTPException(400, f"malformed upload: {type(exc).__name__}") from None
        try:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise HTTPException(400, "no file in the upload (multipart field 'file')")
            chunks = iter(lambda: file.file.read(1 << 20), b"")
            try:
                body = await run_in_threadpool(
                    store_upload, upload_dir, file.filename, chunks, form.get("group"),
                    max_bytes=limit,
                )  # fmt: skip
            except UploadError as exc:
                if audit is not None:
                    audit.action(user.name, "upload", str(file.filename)[:200], "refused",
                                 status=exc.status, reason=str(exc))  # fmt: skip
                raise HTTPException(exc.status, str(exc)) from exc
        finally:
            await form.close()
        if callable(reload):
            body["reload"] = (await run_in_threadpool(reload)).to_dict()
        if audit is not None:
            audit.action(user.name, "upload", body["saved"], group=body["group"],
                         characters=body["characters"])  # fmt: skip
        return JSONResponse(body, status_code=201)
