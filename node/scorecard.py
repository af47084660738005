"""Vendor scorecards, computed from the person's own records (never from anything the vendor says).

* ``issues_opened`` / ``issues_resolved`` / ``issues_open`` (not yet resolved) / ``issues_unanswered``
  (no vendor reply at all);
* ``median_first_reply_ms``: over issues the vendor answered, the median time from opening to the first
  vendor reply; with an even count, the mean of the middle two rounded down to a whole millisecond;
* ``resolved_at_first_contact``: resolved issues with at most one vendor reply, and
  ``first_contact_resolution``, their share of all resolved issues (None before any is resolved);
* ratings and the latest recommendation;
* ``median_intent_response_ms``: how fast the vendor answers the person's intents with offers. It is
  filled by the federation issue, where offers arrive; until then it is always None.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from node.errors import ValidationError
from node.records import VENDOR_STATUSES, resolve_vendor
from node.store import Store


@dataclass(frozen=True)
class Scorecard:
    vendor_id: int
    vendor_handle: str
    vendor_name: str
    ended: bool
    issues_opened: int
    issues_resolved: int
    issues_open: int
    issues_unanswered: int
    median_first_reply_ms: int | None
    resolved_at_first_contact: int
    first_contact_resolution: float | None
    ratings_count: int
    average_rating: float | None
    would_recommend: bool | None
    median_intent_response_ms: int | None = None


_ISSUE_FACTS = """
    SELECT i.id, i.state, i.opened_at, min(r.at) AS first_reply_at, count(r.id) AS vendor_replies
    FROM issues i LEFT JOIN issue_replies r ON r.issue_id = i.id AND r.author = 'vendor'
    WHERE i.vendor_id = ? GROUP BY i.id
"""


def _median_ms(values: list[int]) -> int | None:
    return int(statistics.median(values) // 1) if values else None


def scorecard(store: Store, ref: int | str) -> Scorecard:
    """The scorecard of one vendor (by id or handle); NotFoundError if unknown."""
    vendor = resolve_vendor(store, ref)
    issues = store.query(_ISSUE_FACTS, [vendor["id"]])
    resolved = [i for i in issues if i["state"] == "resolved"]
    first_contact = [i for i in resolved if i["vendor_replies"] <= 1]
    reply_times = [i["first_reply_at"] - i["opened_at"] for i in issues if i["first_reply_at"] is not None]
    ratings = store.query_one(
        "SELECT count(*) AS n, avg(stars) AS mean FROM ratings WHERE vendor_id = ?", [vendor["id"]]
    )
    latest = store.query_one(
        "SELECT would_recommend FROM recommendations WHERE vendor_id = ? ORDER BY at DESC, id DESC LIMIT 1",
        [vendor["id"]],
    )
    return Scorecard(
        vendor_id=vendor["id"],
        vendor_handle=vendor["handle"],
        vendor_name=vendor["name"],
        ended=vendor["ended_at"] is not None,
        issues_opened=len(issues),
        issues_resolved=len(resolved),
        issues_open=len(issues) - len(resolved),
        issues_unanswered=sum(1 for i in issues if i["first_reply_at"] is None),
        median_first_reply_ms=_median_ms(reply_times),
        resolved_at_first_contact=len(first_contact),
        first_contact_resolution=len(first_contact) / len(resolved) if resolved else None,
        ratings_count=ratings["n"],
        average_rating=round(ratings["mean"], 2) if ratings["n"] else None,
        would_recommend=None if latest is None else bool(latest["would_recommend"]),
    )


def scorecards(store: Store, *, status: str = "all") -> list[Scorecard]:
    """Scorecards of every vendor (``status``: ``"active"``, ``"ended"`` or ``"all"``), by name."""
    if status not in VENDOR_STATUSES:
        raise ValidationError("status", f"{status!r} is not one of {', '.join(VENDOR_STATUSES)}")
    where = {"active": "WHERE ended_at IS NULL", "ended": "WHERE ended_at IS NOT NULL", "all": ""}[status]
    ids = [r["id"] for r in store.query(f"SELECT id FROM vendors {where} ORDER BY name COLLATE NOCASE, id")]
    return [scorecard(store, i) for i in ids]
