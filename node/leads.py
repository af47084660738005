"""Leads: the intents a vendor's node received that match its subscriptions (the ``leads`` table).

A lead is the vendor's permission to contact a person about one intent, so it lives exactly as long as
the intent: ``withdrawn`` once the author's withdrawal arrives (``closed`` when it says the intent was
``fulfilled``: the person took an offer for it), ``expired`` from the intent's
``expires`` on (derived from the injected clock, not stored). The pipeline stores leads only for
intents that verified and passed the body check of PROTOCOL.md section 5.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from node.envelope import Envelope
from node.errors import NotFoundError, ValidationError
from node.prefix import MIN_PREFIX, is_hex_prefix, rows_by_prefix
from node.store import Clock, Store, joined, wall_clock_ms

LEAD_STATUSES = ("live", "withdrawn", "closed", "expired", "all")
_MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class Lead:
    id: int
    intent_id: str  # hex
    author: str  # hex: the person's key
    text: str
    body: dict[str, Any]  # the intent body (section 5)
    subscription_ids: list[int]  # the subscriptions it matched
    created: int
    expires: int
    received_at: int
    status: str  # "live" | "withdrawn" | "closed" | "expired"
    withdrawn_at: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "intent_id": self.intent_id,
            "author": self.author,
            "text": self.text,
            "body": self.body,
            "subscription_ids": list(self.subscription_ids),
            "created": self.created,
            "expires": self.expires,
            "received_at": self.received_at,
            "status": self.status,
            "withdrawn_at": self.withdrawn_at,
        }


def _lead(row: dict[str, Any], now: int) -> Lead:
    if row["status"] == "withdrawn":
        status = "closed" if row.get("closed_reason") == "fulfilled" else "withdrawn"
    else:
        status = "expired" if row["expires_at"] <= now else "live"
    return Lead(
        id=row["id"],
        intent_id=row["intent_id"],
        author=row["author"],
        text=row["text"],
        body=json.loads(row["body"]),
        subscription_ids=json.loads(row["subscription_ids"]),
        created=row["created_at"],
        expires=row["expires_at"],
        received_at=row["received_at"],
        status=status,
        withdrawn_at=row["withdrawn_at"],
    )


def _lead_row(env: object, subscription_ids: object, now: int) -> tuple[Any, ...]:
    if not isinstance(env, Envelope) or env.kind != "intent":
        raise ValidationError("envelope", "a lead is made from an intent envelope")
    body = env.body
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise ValidationError("body", "an intent body has a text")
    if not isinstance(subscription_ids, (list, tuple)) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in subscription_ids
    ):
        raise ValidationError("subscription_ids", "must be a list of subscription ids")
    return (env.id.hex(), env.author.hex(), body["text"], json.dumps(body, ensure_ascii=False, sort_keys=True),
            json.dumps(sorted(set(subscription_ids))), env.created, env.expires, now)  # fmt: skip


# One statement for a batch (multi-row: on a fleet's PostgreSQL one round trip, not one per lead);
# a new lead is ``live`` (the column's default).
_INSERT = (
    "INSERT INTO leads (intent_id, author, text, body, subscription_ids, created_at, expires_at, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (intent_id) DO NOTHING"
)


class Leads:
    """The vendor's leads over one Store."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms) -> None:
        self._store = store
        self._clock = clock

    def add_many(self, rows: Sequence[tuple[Envelope, Sequence[int]]]) -> int:
        """Store a lead per (intent envelope, matched subscription ids); an intent already a lead is
        skipped. How many were new. Joins the caller's transaction."""
        now = self._clock()
        return self._insert([_lead_row(env, ids, now) for env, ids in rows])

    def add_matched(self, rows: Sequence[tuple[str, str, str, str, Sequence[int], int, int]]) -> int:
        """Store a lead per intent the ingest pass accepted and matched, from that pass's columns:
        (intent id hex, author hex, text, body as JSON text, subscription ids, created, expires), each
        field checked by the pass (``IngestResult.intents_json``), so no Envelope is built and nothing is
        checked again. An intent already a lead is skipped; how many were new. Joins the caller's
        transaction."""
        now = self._clock()
        return self._insert([(intent_id, author, text, body, json.dumps(sorted(set(ids))), created, expires, now)
                             for intent_id, author, text, body, ids, created, expires in rows])  # fmt: skip

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        with joined(self._store):
            return self._store.execute_many(_INSERT, rows)

    def withdraw(self, intent_id: str, at: int) -> bool:
        """Mark the lead of a withdrawn intent; False when there is no live lead for it."""
        with self._store.transaction():
            changed = self._store.execute(
                "UPDATE leads SET status = 'withdrawn', withdrawn_at = ?"
                " WHERE intent_id = ? AND status = 'live'",
                [at, intent_id],
            )
        return changed == 1

    def list(self, *, status: str = "live") -> list[Lead]:
        """Leads, oldest first: ``"live"`` (default: neither withdrawn nor expired), ``"withdrawn"``,
        ``"closed"`` (withdrawn as fulfilled), ``"expired"`` or ``"all"``."""
        if status not in LEAD_STATUSES:
            raise ValidationError("status", f"{status!r} is not one of {', '.join(LEAD_STATUSES)}")
        now = self._clock()
        where, params = {
            "live": ("WHERE status = 'live' AND expires_at > ?", [now]),
            "expired": ("WHERE status = 'live' AND expires_at <= ?", [now]),
            "withdrawn": ("WHERE status = 'withdrawn' AND closed_reason IS NULL", []),
            "closed": ("WHERE status = 'withdrawn' AND closed_reason IS NOT NULL", []),
            "all": ("", []),
        }[status]
        rows = self._store.query(f"SELECT * FROM leads {where} ORDER BY created_at, id", params)
        return [_lead(r, now) for r in rows]

    def get(self, ref: object) -> Lead:
        """The lead with this number, or whose intent id is ``ref`` or starts with it (6+ hex characters)."""
        if isinstance(ref, bool) or not isinstance(ref, (int, str)):
            raise ValidationError("lead", "refer to a lead by its number or its intent's id")
        text = str(ref).strip().lower()
        row = None
        if is_hex_prefix(text) and not isinstance(ref, int):
            rows = rows_by_prefix(self._store, "leads", "intent_id", text)
            if len(rows) > 1:
                raise ValidationError("lead", f"{ref!r} matches more than one lead; give more characters")
            row = rows[0] if rows else None
        elif not text.isdigit():
            raise ValidationError(
                "lead", f"{ref!r} is not a lead: its number, or {MIN_PREFIX}+ characters of its intent id"
            )
        if row is None and text.isdigit() and int(text) <= _MAX_INT:  # a number (or digits that are no prefix)
            row = self._store.query_one("SELECT * FROM leads WHERE id = ?", [int(text)])
        if row is None:
            raise NotFoundError("lead", ref)
        return _lead(row, self._clock())
