"""The JSON bodies of ``POST /api/ask`` and ``POST /api/feedback``, checked before any work.

Unknown keys are refused (``extra="forbid"``) so a misspelt ``topk`` is a 422, not silently the
default; lengths are bounded so a request cannot make the server store or read megabytes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

from qa.conversation import MAX_ANSWER_CHARS, MAX_HISTORY_TURNS, MAX_TURN_CHARS, Turn, ask_options

MAX_TOP_K = 20


def _encodable(text: str) -> str:
    """Refuse text that is not valid Unicode (a lone surrogate from ``"\\ud800"`` in JSON):
    it cannot be written to a UTF-8 file or log, and was a 500 when a comment was stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text contains an unpaired surrogate (invalid Unicode)") from None
    return text


Text = Annotated[StrictStr, AfterValidator(_encodable)]
"""A JSON string that is valid Unicode."""


class HistoryTurn(BaseModel):
    """An earlier turn of the conversation: its question and, if the caller has it, the answer."""

    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(min_length=1, max_length=MAX_TURN_CHARS)
    answer: StrictStr | None = Field(default=None, max_length=MAX_ANSWER_CHARS)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    """Earlier turns, oldest first; a follow-up is answered as the question it stands for."""

    def history_options(self) -> dict[str, Any]:
        """``{"history": [...]}`` for ``Pipeline.ask`` when there is one, else nothing, so a
        pipeline that predates conversations is called exactly as before."""
        return ask_options([Turn(t.question, t.answer) for t in self.history])


class FeedbackRequest(BaseModel):
    """A rating sent by a script or another front end; the chat's own buttons store the same."""

    model_config = ConfigDict(extra="forbid")

    question: Text = Field(min_length=1, max_length=2000)
    rating: Literal["like", "dislike"]
    answer: Text | None = Field(default=None, max_length=2000)
    passage_ids: list[Annotated[Text, Field(max_length=200)]] = Field(
        default_factory=list, max_length=50
    )
    comment: Text | None = Field(default=None, max_length=2000)
