"""The record tables (SQLAlchemy Core), imported only when a record store is opened."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

METADATA = MetaData()

FEEDBACK = Table(
    "feedback",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", String(40), nullable=False),
    Column("source", String(20), nullable=False),
    Column("rating", String(40), nullable=False),
    Column("user", String(200), nullable=True),
    Column("question", String(2000), nullable=False),
    Column("record", Text, nullable=False),
    Index("feedback_time", "time"),
)
"""One rating per row; ``record`` is the whole :class:`~qa.feedback.FeedbackRecord` as JSON."""

USAGE = Table(
    "usage",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", String(40), nullable=False),
    Column("user", String(200), nullable=False),
    Column("groups", String(1000), nullable=False),
    Column("question", String(2000), nullable=False),
    Column("interpreted_as", String(2000), nullable=True),
    Column("no_answer", Integer, nullable=False),
    Column("top_score", Float, nullable=True),
    Column("passage_ids", Text, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Index("usage_time", "time"),
)
"""One answered question per row (``qa.usage``): who asked what, and how it went."""

AUDIT = Table(
    "audit",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", String(40), nullable=False),
    Column("user", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("target", String(1000), nullable=False),
    Column("result", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Index("audit_time", "time"),
)
"""One admin action per row (``qa.audit``); the same entries go to ``audit.jsonl``."""
