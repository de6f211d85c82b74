"""The JSON bodies of ``POST /api/ask`` and ``POST /api/feedback``, checked before any work.

Unknown keys are refused (``extra="forbid"``) so a misspelt ``topk`` is a 422, not silently the
default; lengths are bounded so a request cannot make the server store or read megabytes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

MAX_TOP_K = 20


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)


class FeedbackRequest(BaseModel):
    """A rating sent by a script or another front end; the chat's own buttons store the same."""

    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(min_length=1, max_length=2000)
    rating: Literal["like", "dislike"]
    answer: StrictStr | None = Field(default=None, max_length=2000)
    passage_ids: list[StrictStr] = Field(default_factory=list, max_length=50)
    comment: StrictStr | None = Field(default=None, max_length=2000)
