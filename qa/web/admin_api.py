"""The routes that change what a server answers from: ``POST /api/reload`` and
``POST /api/documents`` (upload a file into the corpus, then reload).

Both are admin calls (:func:`qa.web.guards.check_admin`): a bearer token, or the server's own
machine when no token is set, so nobody on the intranet can make a default installation rebuild
its index or fill its disk.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse

from qa.web.guards import check_admin

if TYPE_CHECKING:
    from qa.reloading import ReloadResult


class Reloadable(Protocol):
    """A pipeline that can swap itself for a fresh one (``qa.reloading.ReloadablePipeline``)."""

    def reload(self) -> ReloadResult: ...


def add_reload_route(api: APIRouter, pipeline: Reloadable, admin_token: str | None) -> None:
    """``POST /api/reload``: 200 with the new pipeline's info, 500 (old one still serving)."""

    @api.post("/api/reload")
    def reload(request: Request) -> JSONResponse:
        check_admin(request, admin_token)
        result = pipeline.reload()
        return JSONResponse(result.to_dict(), status_code=200 if result.reloaded else 500)


def add_upload_route(
    app: FastAPI,
    upload_dir: str | os.PathLike[str],
    pipeline: object,
    admin_token: str | None,
) -> None:
    """``POST /api/documents``: store one file under a safe name, then reload if possible.

    On the app itself, not the body-limited router: uploads have their own, larger limit.
    """
    from qa.loaders import registered_suffixes
    from qa.uploads import MAX_UPLOAD_BYTES, UploadError, safe_upload_name, save_upload

    reload = getattr(pipeline, "reload", None)

    @app.post("/api/documents", status_code=201)
    def upload_document(request: Request, file: UploadFile = File(...)) -> JSONResponse:  # noqa: B008
        check_admin(request, admin_token)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
            raise HTTPException(413, f"upload limit is {MAX_UPLOAD_BYTES // 2**20} MiB")
        try:
            name = safe_upload_name(file.filename, registered_suffixes())
            chunks = iter(lambda: file.file.read(1 << 20), b"")
            saved = save_upload(upload_dir, name, chunks)
        except UploadError as exc:
            raise HTTPException(exc.status, str(exc)) from exc
        body: dict[str, Any] = {"saved": saved.name}
        if callable(reload):
            body["reload"] = reload().to_dict()
        return JSONResponse(body, status_code=201)
