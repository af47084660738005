"""The person's relationship records: the vendors they deal with and everything that happened.

Every method validates its whole input first and then writes in one transaction, so bad input raises a
typed error (ValidationError, NotFoundError, ConflictError) and changes nothing. Results are frozen
dataclasses; ``dataclasses.asdict`` gives their JSON form with stable keys. Times are integers
(milliseconds since the epoch), taken from the injected ``clock`` unless given explicitly (to record
something that happened earlier).

A vendor is referred to by numeric id (``7`` or ``"7"``) or by handle (``"@acme-air"`` or ``"acme-air"``);
a handle made only of digits needs its ``@``.

Issue states follow who owes the next word:

* ``open_issue`` → ``waiting_on_vendor``: opening an issue is the first contact, the vendor owes an answer;
* a ``vendor`` reply → ``open``: the vendor answered, the issue is still open and the next step is mine;
* a ``me`` reply → ``waiting_on_vendor`` again;
* ``resolve_issue`` → ``resolved``; a resolved issue takes no replies until ``reopen_issue``
  (→ ``waiting_on_vendor``), so the scorecard's "resolved at first contact" stays meaningful.

Ending a relationship sets ``ended_at`` (and a reason) and keeps every record; ended vendors are listed
with ``status="ended"`` or ``"all"``.

Issues are node.records_issues, the timeline node.records_timeline; ``Records`` joins them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from node.errors import ConflictError, ValidationError
from node.records_model import (  # the shapes, re-exported: callers take them from here
    CURRENCY,
    HANDLE,
    MAX_INT,
    MAX_NAME,
    MAX_TAGS,
    MAX_TEXT,
    RECORD_TABLES,
    REPLY_AUTHORS,
    TAG,
    VENDOR_STATUSES,
    EngagementChange,
    Issue,
    Note,
    Purchase,
    Rating,
    Recommendation,
    Reply,
    TimelineEvent,
    Vendor,
    canonical_node_id,
    handle_from_name,
    normalize_handle,
    normalize_tags,
    resolve_vendor,
    _from_row,
    _level,
    _note,
    _recommendation,
    _status,
    _text,
    _time,
    _vendor,
    _website,
)
from node.records_issues import IssueRecords
from node.records_timeline import TimelineRecords
from node.store import Clock, Store, wall_clock_ms


class Records(IssueRecords, TimelineRecords):
    """Relationship records over one Store."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms) -> None:
        self._store = store
        self._clock = clock

    def _at(self, name: str, at: int | None) -> int:
        return self._clock() if at is None else _time(name, at)

    # -- vendors ---------------------------------------------------------------------------------

    def add_vendor(
        self,
        name: str,
        *,
        handle: str | None = None,
        node_id: str | None = None,
        website: str | None = None,
        notes: str = "",
        engagement: str = "none",
        started_at: int | None = None,
    ) -> Vendor:
        """Start a relationship with a vendor. The handle defaults to one derived from the name."""
        name = _text("name", name, max_len=MAX_NAME)
        handle = normalize_handle(handle) if handle is not None else handle_from_name(name)
        values = {
            "handle": handle,
            "name": name,
            "node_id": canonical_node_id(node_id),
            "website": _website(website),
            "notes": _text("notes", notes, required=False),
            "engagement": _level(engagement),
        }
        now = self._clock()
        started_at = now if started_at is None else _time("started_at", started_at)
        with self._store.transaction():
            if self._store.query_one("SELECT 1 FROM vendors WHERE handle = ?", [handle]):
                raise ConflictError(f"the handle {handle} is taken; choose another")
            vendor_id = self._store.insert(
                "vendors", {**values, "started_at": started_at, "created_at": now, "updated_at": now}
            )
            if values["engagement"] != "none":
                self._store.insert(
                    "engagement_changes",
                    {"vendor_id": vendor_id, "level": values["engagement"], "at": started_at},
                )
        return self.get_vendor(vendor_id)

    def get_vendor(self, ref: int | str) -> Vendor:
        return _vendor(resolve_vendor(self._store, ref))

    def list_vendors(self, *, status: str = "active") -> list[Vendor]:
        """Vendors by name; ``status`` is ``"active"`` (default), ``"ended"`` or ``"all"``."""
        where = {"active": "WHERE ended_at IS NULL", "ended": "WHERE ended_at IS NOT NULL", "all": ""}[
            _status(status)
        ]
        return [
            _vendor(r)
            for r in self._store.query(f"SELECT * FROM vendors {where} ORDER BY name COLLATE NOCASE, id")
        ]

    def update_vendor(
        self,
        ref: int | str,
        *,
        name: str | None = None,
        node_id: str | None = None,
        website: str | None = None,
        notes: str | None = None,
    ) -> Vendor:
        """Change the given fields (None leaves a field as is; ``""`` clears node_id or website)."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = _text("name", name, max_len=MAX_NAME)
        if node_id is not None:
            changes["node_id"] = canonical_node_id(node_id)
        if website is not None:
            changes["website"] = _website(website)
        if notes is not None:
            changes["notes"] = _text("notes", notes, required=False)
        with self._store.transaction():
            row = resolve_vendor(self._store, ref)
            if changes:
                self._update_vendor_row(row["id"], changes)
        return self.get_vendor(row["id"])

    def _update_vendor_row(self, vendor_id: int, changes: dict[str, Any]) -> None:
        changes = {**changes, "updated_at": self._clock()}
        assignments = ", ".join(f"{column} = ?" for column in changes)
        self._store.execute(f"UPDATE vendors SET {assignments} WHERE id = ?", [*changes.values(), vendor_id])

    def set_engagement(self, ref: int | str, level: str, *, at: int | None = None) -> Vendor:
        """Choose how engaged to be with a vendor; every change stays on the timeline."""
        level = _level(level)
        at = self._at("at", at)
        with self._store.transaction():
            row = resolve_vendor(self._store, ref)
            self._store.insert("engagement_changes", {"vendor_id": row["id"], "level": level, "at": at})
            self._update_vendor_row(row["id"], {"engagement": level})
        return self.get_vendor(row["id"])

    def end_relationship(self, ref: int | str, *, reason: str | None = None, at: int | None = None) -> Vendor:
        """Mark a relationship ended; all its history stays. ConflictError if it already ended."""
        reason = (
            None if reason is None else _text("reason", reason, max_len=MAX_NAME * 5, required=False) or None
        )
        at = self._at("at", at)
        with self._store.transaction():
            row = resolve_vendor(self._store, ref)
            if row["ended_at"] is not None:
                raise ConflictError(f"the relationship with {row['handle']} already ended")
            if at < row["started_at"]:
                raise ValidationError("at", "a relationship cannot end before it started")
            self._update_vendor_row(row["id"], {"ended_at": at, "end_reason": reason})
        return self.get_vendor(row["id"])

    # -- what happened ---------------------------------------------------------------------------

    def add_purchase(
        self,
        ref: int | str,
        product: str,
        *,
        price_minor: int | None = None,
        currency: str | None = None,
        bought_at: int | None = None,
        note: str = "",
    ) -> Purchase:
        """Record a product bought; a price is given in minor units with its ISO 4217 currency."""
        product = _text("product", product, max_len=MAX_NAME)
        if price_minor is not None and (
            isinstance(price_minor, bool)
            or not isinstance(price_minor, int)
            or not 0 <= price_minor <= MAX_INT
        ):
            raise ValidationError("price_minor", "must be a non-negative integer in minor units (cents)")
        if currency is not None:
            if not isinstance(currency, str) or not CURRENCY.fullmatch(currency.strip().upper()):
                raise ValidationError("currency", f"{currency!r} is not a three-letter ISO 4217 code")
            currency = currency.strip().upper()
        if (price_minor is None) != (currency is None):
            raise ValidationError(
                "currency" if currency is None else "price_minor", "give a price and its currency together"
            )
        note = _text("note", note, required=False)
        bought_at = self._at("bought_at", bought_at)
        with self._store.transaction():
            row = resolve_vendor(self._store, ref)
            values = {
                "vendor_id": row["id"],
                "product": product,
                "price_minor": price_minor,
                "currency": currency,
                "bought_at": bought_at,
                "note": note,
            }
            purchase_id = self._store.insert("purchases", values)
        return Purchase(id=purchase_id, **values)

    def list_purchases(self, ref: int | str) -> list[Purchase]:
        vendor_id = resolve_vendor(self._store, ref)["id"]
        rows = self._store.query(
            "SELECT * FROM purchases WHERE vendor_id = ? ORDER BY bought_at DESC, id DESC", [vendor_id]
        )
        return [_from_row(Purchase, r) for r in rows]

    def add_note(self, ref: int | str, text: str, *, tags: Iterable[str] = (), at: int | None = None) -> Note:
        """Record a note or opinion about a vendor, with optional tags (``#`` optional)."""
        text = _text("text", text)
        tag_list = normalize_tags(tags)
        at = self._at("at", at)
        with self._store.transaction():
            row = resolve_vendor(self._store, ref)
            note_id = self._store.insert(
                "notes", {"vendor_id": row["id"], "text": text, "tags": json.dumps(list(tag_list)), "at": at}
            )
        return Note(id=note_id, vendor_id=row["id"], text=text, tags=tag_list, at=at)

    def list_notes(self, ref: int | str | None = None, *, tag: str | None = None) -> list[Note]:
        """Notes newest first, for one vendor or all, optionally only those with ``tag``."""
        clauses, params = [], []
        if ref is not None:
            clauses.append("vendor_id = ?")
            params.append(resolve_vendor(self._store, ref)["id"])
        if tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(notes.tags) WHERE value = ?)")
            params.append(normalize_tags([tag])[0])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [
            _note(r)
            for r in self._store.query(f"SELECT * FROM notes {where} ORDER BY at DESC, id DESC", params)
        ]

    def rate(self, ref: int | str, stars: int, *, comment: str = "", at: int | None = None) -> Rating:
        """Rate a vendor 1–5 stars; the newest rating is the current one, older ones stay on the timeline."""
        if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
            raise ValidationError("stars", f"{stars!r} is not a rating from 1 to 5")
        comment = _text("comment", comment, required=False)
        at = self._at("at", at)
        with self._store.transaction():
            row = resolve_vendor(self._store, ref)
            rating_id = self._store.insert(
                "ratings", {"vendor_id": row["id"], "stars": stars, "comment": comment, "at": at}
            )
        return Rating(id=rating_id, vendor_id=row["id"], stars=stars, comment=comment, at=at)

    def list_ratings(self, ref: int | str) -> list[Rating]:
        vendor_id = resolve_vendor(self._store, ref)["id"]
        return [
            _from_row(Rating, r)
            for r in self._store.query(
                "SELECT * FROM ratings WHERE vendor_id = ? ORDER BY at DESC, id DESC", [vendor_id]
            )
        ]

    def recommend(
        self, ref: int | str, would_recommend: bool, *, text: str = "", at: int | None = None
    ) -> Recommendation:
        """Record whether I would recommend this vendor to a friend, and why."""
        if not isinstance(would_recommend, bool):
            raise ValidationError("would_recommend", "must be true or false")
        text = _text("text", text, required=False)
        at = self._at("at", at)
        with self._store.transaction():
            row = resolve_vendor(self._store, ref)
            rec_id = self._store.insert(
                "recommendations",
                {"vendor_id": row["id"], "would_recommend": int(would_recommend), "text": text, "at": at},
            )
        return Recommendation(
            id=rec_id, vendor_id=row["id"], would_recommend=would_recommend, text=text, at=at
        )

    def list_recommendations(self, ref: int | str) -> list[Recommendation]:
        vendor_id = resolve_vendor(self._store, ref)["id"]
        rows = self._store.query(
            "SELECT * FROM recommendations WHERE vendor_id = ? ORDER BY at DESC, id DESC", [vendor_id]
        )
        return [_recommendation(r) for r in rows]
