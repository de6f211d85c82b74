"""The admin page at ``/admin``: documents, feedback and usage, the audit log. Admins only.

A second Gradio app mounted beside the chat, with its own login: an account of the users file in
the admin group, or the admin token as the password of the user ``admin-token`` (for a server
without a users file). Behind an SSO proxy the page opens only for users whose groups header
holds the admin group. Every event handler checks again, so a non-admin who calls the page's
Gradio API directly gets an error, not data.

- Documents: the list (name, groups, passages, pages, added, size) and the removed ones; upload
  with a group (through ``qa.web.admin_api.store_upload``, the API's own path: an unreadable file
  is reported and not kept), remove, restore, reindex, each with a report.
- Feedback & usage: questions per day, likes and dislikes, declined-answer rate and the share of
  answers under a confidence threshold per day, the most-asked questions, as plots; a table of
  disliked or declined questions with the answer given and the passages cited (escaped); the
  export of those questions as a ``ludao eval`` file (also ``GET /api/admin/export``).
- Audit: the newest admin actions.

Every change and every export is written to the audit log (``qa.audit``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response as HTTPResponse

from qa.web.admin_actions import TOKEN_USER, AdminPage
from qa.web.render import CSS, escape

__all__ = ["TOKEN_USER", "AdminPage", "build_admin_page", "mount_admin_page"]
PATH = "/admin"
ADMIN_CSS = """
.ludao-admin-table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
.ludao-admin-table th, .ludao-admin-table td { border-bottom: 1px solid #d1d5db;
  padding: 0.25em 0.5em; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
.ludao-admin-table ul { margin: 0; padding-left: 1.1em; }
#admin-summary { width: auto; min-width: 24em; }
.ludao-ok { color: #166534; } .ludao-bad { color: #991b1b; font-weight: 700; }
/* Gradio's default primary and stop buttons are under 4.5:1 with white text. */
.gradio-container { --button-primary-background-fill: #c2410c;
  --button-primary-background-fill-hover: #9a3412; --button-primary-text-color: #fff;
  --button-cancel-background-fill: #b91c1c; --button-cancel-background-fill-hover: #991b1b;
  --button-cancel-text-color: #fff; }
.gradio-container button[role=tab] { color: #374151; }
.gradio-container button[role=tab][aria-selected=true] { color: #9a3412; }
"""


def build_admin_page(page: AdminPage) -> Any:
    """The Gradio Blocks of the admin page."""
    import gradio as gr

    # No analytics: Gradio would post the layout to api.gradio.app and ask PyPI for a version.
    with gr.Blocks(title="鹭岛 Ludao · 管理 Admin", analytics_enabled=False) as blocks:
        gr.HTML("<h1 style='margin:0.2em 0;font-size:1.5em'>鹭岛 Ludao · 管理 Admin</h1>")
        who = gr.HTML(elem_id="admin-who")
        with gr.Tab("文档 Documents", elem_id="admin-tab-documents"):
            listing = gr.HTML(elem_id="admin-documents-box")
            with gr.Row(equal_height=True):
                # A button, not gr.File: the drop zone's accessible name differs from its text.
                group = gr.Textbox(
                    "everyone",
                    label="访问组 Access group for uploads",
                    scale=2,
                    elem_id="admin-group",
                )
                upload = gr.UploadButton(
                    "上传文件 Upload files",
                    file_count="multiple",
                    type="filepath",
                    variant="primary",
                    elem_id="admin-upload",
                    scale=1,
                )
            with gr.Row(equal_height=True):
                doc = gr.Dropdown([], label="文档 Document", scale=3, elem_id="admin-doc")
                remove = gr.Button("移除 Remove", variant="stop", scale=1, elem_id="admin-remove")
                reindex = gr.Button("重新索引 Reindex", scale=1, elem_id="admin-reindex")
            with gr.Row(equal_height=True):
                removed_doc = gr.Dropdown([], label="已移除的文档 Removed document", scale=3)
                restore = gr.Button("恢复 Restore", scale=1, elem_id="admin-restore")
            report = gr.HTML(elem_id="admin-report-box")
            gr.HTML("<h2 style='font-size:1.1em'>已移除 Removed</h2>")
            removed = gr.HTML(elem_id="admin-removed-box")
        with gr.Tab("反馈与使用 Feedback & usage", elem_id="admin-tab-usage"):
            threshold = gr.Slider(0, 1, 0.5, step=0.05, label="置信度阈值 Confidence threshold")
            summary = gr.HTML(elem_id="admin-summary-box")
            with gr.Row():
                per_day = gr.LinePlot(
                    x="day",
                    y="questions",
                    y_lim=[0, None],
                    title="每日问题 Questions per day",
                    elem_id="admin-plot-questions",
                )
                ratings = gr.BarPlot(
                    x="rating",
                    y="count",
                    y_lim=[0, None],
                    title="赞与踩 Likes and dislikes",
                    elem_id="admin-plot-ratings",
                )
            with gr.Row():
                declined = gr.LinePlot(
                    x="day",
                    y="declined_rate",
                    y_lim=[0, 1],
                    title="拒答率 Declined-answer rate",
                    elem_id="admin-plot-declined",
                )
                low = gr.LinePlot(
                    x="day",
                    y="low_confidence_share",
                    y_lim=[0, 1],
                    title="低置信度占比 Answers under the threshold",
                    elem_id="admin-plot-low",
                )
            top = gr.BarPlot(
                x="question",
                y="count",
                y_lim=[0, None],
                title="最常问 Most-asked questions",
                elem_id="admin-plot-top",
            )
            gr.HTML("<h2 style='font-size:1.1em'>差评与拒答 Disliked or declined</h2>")
            flagged = gr.HTML(elem_id="admin-flagged-box")
            with gr.Row():
                export = gr.Button("导出为评测集 Export as ludao eval file", elem_id="admin-export")
                # Hidden until there is a file: the empty drop zone has a prohibited aria-label.
                exported = gr.File(label="导出文件 Exported file", interactive=False, visible=False)
        with gr.Tab("审计 Audit", elem_id="admin-tab-audit"):
            audit = gr.HTML(elem_id="admin-audit-box")

        docs_out = [listing, removed, doc, removed_doc]
        usage_out = [summary, per_day, ratings, declined, low, top, flagged]

        def load(threshold_value: float, request: gr.Request) -> tuple:
            user = page.admin(request)
            name = escape(user.name)
            hello = f"<p class='ludao-meta'>管理员 Signed in as <strong>{name}</strong></p>"
            return (hello, *page.documents(), *page.figures(threshold_value), page.audit_html())

        def on_upload(paths: list[str] | None, group_name: str, request: gr.Request) -> tuple:
            return (
                page.upload(paths, group_name, page.admin(request)),
                *page.documents(),
                page.audit_html(),
            )

        def on_change(action: str) -> Callable[..., tuple]:
            def handler(key: str | None, request: gr.Request) -> tuple:
                report = page.change(action, key, page.admin(request))
                return report, *page.documents(), page.audit_html()

            return handler

        def on_reindex(request: gr.Request) -> tuple:
            report = page.change("reindex", None, page.admin(request))
            return report, *page.documents(), page.audit_html()

        def on_threshold(value: float, request: gr.Request) -> tuple:
            page.admin(request)
            return page.figures(value)

        def on_export(request: gr.Request) -> tuple:
            path = page.export_file(page.admin(request))
            return gr.update(value=path, visible=True), page.audit_html()

        for fn in (load, on_upload, on_reindex, on_threshold, on_export):
            fn.__annotations__["request"] = gr.Request  # postponed annotations: the real class
        blocks.load(load, [threshold], [who, *docs_out, *usage_out, audit])
        changed = [report, *docs_out, audit]
        upload.upload(on_upload, [upload, group], changed)
        for button, action, source in ((remove, "remove", doc), (restore, "restore", removed_doc)):
            handler = on_change(action)
            handler.__annotations__["request"] = gr.Request
            button.click(handler, [source], changed)
        reindex.click(on_reindex, None, changed)
        threshold.release(on_threshold, [threshold], usage_out)
        export.click(on_export, None, [exported, audit])
    blocks.queue(default_concurrency_limit=1)  # admin changes one at a time
    return blocks


def mount_admin_page(
    app: FastAPI,
    ops: Any,
    feedback: Any,
    *,
    upload_dir: str | os.PathLike[str] | None = None,
    root_path: str = "",
) -> AdminPage:
    """Mount the page at ``/admin`` and add ``GET /api/admin/export``; before the chat's mount."""
    import gradio as gr

    from qa.uploads import MAX_UPLOAD_BYTES

    page = AdminPage(ops, feedback, upload_dir)

    @app.get("/api/admin/export", include_in_schema=False)
    def export(request: Request) -> HTTPResponse:
        user = ops.identity.check_admin(request)
        text, count = page.export_text(user)
        headers = {
            "Content-Disposition": 'attachment; filename="ludao-feedback-questions.jsonl"',
            "X-Ludao-Questions": str(count),
        }
        return HTTPResponse(text, media_type="application/x-ndjson", headers=headers)

    dependency = page.proxy_dependency()
    gr.mount_gradio_app(
        app,
        build_admin_page(page),
        path=PATH,
        root_path=f"{root_path.rstrip('/')}{PATH}" if root_path else None,
        auth=None if dependency else page.login,
        auth_dependency=dependency,
        auth_message="鹭岛 Ludao 管理 — 管理员登录 Admins only",
        max_file_size=MAX_UPLOAD_BYTES,
        css=CSS + ADMIN_CSS,
        footer_links=[],
        run_history=False,
        show_error=True,
    )
    return page
