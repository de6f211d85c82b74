"""The record tables (SQLAlchemy Core), imported only when a record store is opened."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

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
