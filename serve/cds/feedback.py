"""Card feedback, stored append-only in SQLite (CDS Hooks 2.0, "Feedback").

A client posts ``{"feedback": [{"card": <uuid>, "outcome": "accepted" | "overridden",
"acceptedSuggestions": [{"id": <uuid>}], "overrideReason": {"reason": <Coding>,
"userComment": <str>}, "outcomeTimestamp": <instant>}]}`` to ``/cds-services/{id}/feedback``
(``acceptedSuggestions`` is required for an accepted card). Every item is one row; a post is
one transaction, so it is stored whole or not at all. Triggers refuse ``UPDATE`` and
``DELETE``: the table only grows. SQLite serialises writers (WAL journal, a busy timeout), and
each write uses its own connection, so concurrent posts from many threads or processes never
lose one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["FeedbackItem", "FeedbackRequest", "FeedbackStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    service TEXT NOT NULL,
    card TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    outcome_timestamp TEXT NOT NULL,
    item TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS feedback_no_update BEFORE UPDATE ON feedback
BEGIN SELECT RAISE(ABORT, 'feedback is append-only'); END;
CREATE TRIGGER IF NOT EXISTS feedback_no_delete BEFORE DELETE ON feedback
BEGIN SELECT RAISE(ABORT, 'feedback is append-only'); END;
"""


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Coding(_Open):
    system: str | None = None
    code: str = Field(min_length=1)
    display: str | None = None


class OverrideReason(_Open):
    reason: Coding | None = None
    userComment: str | None = None


class AcceptedSuggestion(_Open):
    id: str = Field(min_length=1)


class FeedbackItem(_Open):
    """One card's outcome."""

    card: UUID
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime

    @model_validator(mode="after")
    def _accepted_names_its_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is required when outcome is 'accepted'")
        return self


class FeedbackRequest(_Open):
    """The body of a feedback post."""

    feedback: list[FeedbackItem] = Field(min_length=1)


class FeedbackStore:
    """An append-only SQLite table of feedback items.

    Parameters
    ----------
    path : pathlib.Path
        The database file; its folder is created when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def append(self, service: str, items: Iterable[FeedbackItem]) -> int:
        """Store every item of one post in one transaction; return how many were stored."""
        rows = [
            (
                service,
                str(item.card),
                item.outcome,
                item.outcomeTimestamp.isoformat(),
                json.dumps(item.model_dump(mode="json"), sort_keys=True),
            )
            for item in items
        ]
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO feedback (service, card, outcome, outcome_timestamp, item) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        return len(rows)

    def items(self, service: str | None = None) -> list[dict[str, Any]]:
        """Every stored item (oldest first), as posted, with ``service`` and ``seq`` added."""
        query = "SELECT seq, service, item FROM feedback"
        args: tuple[str, ...] = ()
        if service is not None:
            query += " WHERE service = ?"
            args = (service,)
        db = self._connect()
        try:
            rows = db.execute(query + " ORDER BY seq", args).fetchall()
        finally:
            db.close()
        return [{"seq": seq, "service": svc, **json.loads(item)} for seq, svc, item in rows]
