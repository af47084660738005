"""Trends: what people ask for, and where, over the intents this node holds for gossip.

A trend is a ``?token`` in an area (the first characters of the intent's ``near`` geohash, "" for
intents without one) and how many different people cast an intent with it in the window.
People, not intents, are counted, so one author repeating an intent does not make a trend. Withdrawn
intents do not count: their authors no longer want it; one withdrawn as ``fulfilled`` (its author took
an offer) does: that demand was real and met.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from node import envelope
from node.backends import NATIVE, Backend
from node.errors import EnvelopeError, ValidationError
from node.store import Store

GEOHASH = re.compile(r"[0-9b-hjkmnp-z]{1,12}")
DEFAULT_NEAR_LEN = 3  # a geohash of 3 characters is a cell of about 156 km x 156 km
MAX_LIMIT = 1000
_MAX_INT = 2**63 - 1


def _positive(value: object, field: str, high: int = _MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValidationError(field, f"must be a whole number from 1 to {high}")
    return value


def _geohash(body: Any) -> str:
    near = body.get("constraints", {}).get("near") if isinstance(body.get("constraints"), dict) else None
    value = near.get("geohash") if isinstance(near, dict) else None
    return value if isinstance(value, str) and GEOHASH.fullmatch(value) else ""


def trends(
    store: Store,
    *,
    now: int,
    window_ms: int,
    near: str | None = None,
    near_len: int = DEFAULT_NEAR_LEN,
    limit: int = 100,
    backend: Backend = NATIVE,
) -> list[dict[str, Any]]:
    """``[{"token", "area", "count"}]``, most people first (then token, area), over the intents created
    in ``(now - window_ms, now]``. With ``near`` (a geohash prefix) only intents whose ``near`` starts
    with it count, and areas are at least as precise as ``near``."""
    if isinstance(now, bool) or not isinstance(now, int) or not 0 <= now <= _MAX_INT:
        raise ValidationError("now", "must be a time in milliseconds")
    _positive(window_ms, "window")
    _positive(near_len, "near_len", 12)
    _positive(limit, "limit", MAX_LIMIT)
    if near is not None:
        if not isinstance(near, str) or not GEOHASH.fullmatch(near.strip().lower()):
            raise ValidationError("near", "must be a geohash: 1 to 12 of 0-9 and b-z except i, l, o")
        near = near.strip().lower()
        near_len = max(near_len, len(near))
    rows = store.query(
        "SELECT e.author, e.raw, (SELECT w.raw FROM envelopes w WHERE w.ref = e.id AND w.kind = 'withdraw'"
        " AND w.author = e.author LIMIT 1) AS withdrawal FROM envelopes e WHERE e.kind = 'intent'"
        " AND e.created_at > ? AND e.created_at <= ?",
        [now - window_ms, now],
    )
    people: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        try:
            body = envelope.decode(bytes(row["raw"]), backend).body
            if row["withdrawal"] is not None:
                withdrawal = envelope.decode(bytes(row["withdrawal"]), backend).body
                if not isinstance(withdrawal, dict) or withdrawal.get("reason") != "fulfilled":
                    continue
        except EnvelopeError:  # held rows were verified; a damaged one is skipped, not fatal
            continue
        if not isinstance(body, dict) or not isinstance(body.get("tokens"), list):
            continue
        geohash = _geohash(body)
        if near is not None and not geohash.startswith(near):
            continue
        area = geohash[:near_len]
        for token in set(body["tokens"]):
            if isinstance(token, str):
                people[(token, area)].add(row["author"])
    ranked = sorted(people.items(), key=lambda item: (-len(item[1]), item[0]))
    return [{"token": token, "area": area, "count": len(who)} for (token, area), who in ranked[:limit]]
