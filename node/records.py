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
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from node.errors import ConflictError, NotFoundError, ValidationError
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
    _EVENT_ORDER,
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
from node.store import ISSUE_STATES, Clock, Store, wall_clock_ms


class Records:
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

    # -- issues ----------------------------------------------------------------------------------

    def open_issue(self, ref: int | str, title: str, *, at: int | None = None) -> Issue:
        """Open a complaint; it starts ``waiting_on_vendor`` (see the module docstring)."""
        title = _text("title", title, max_len=MAX_NAME * 2)
        at = self._at("at", at)
        with self._store.transaction():
            row = resolve_vendor(self._store, ref)
            issue_id = self._store.insert(
                "issues",
                {"vendor_id": row["id"], "title": title, "state": "waiting_on_vendor", "opened_at": at},
            )
        return self.get_issue(issue_id)

    def add_reply(self, issue_id: int, author: str, text: str, *, at: int | None = None) -> Issue:
        """Record a reply by ``"me"`` or ``"vendor"``; it moves the state to whoever owes the next word."""
        if author not in REPLY_AUTHORS:
            raise ValidationError("author", f"{author!r} is not one of {', '.join(REPLY_AUTHORS)}")
        text = _text("text", text)
        at = self._at("at", at)
        with self._store.transaction():
            issue = self._issue_row(issue_id)
            if issue["state"] == "resolved":
                raise ConflictError(f"issue {issue_id} is resolved; reopen it to add a reply")
            if at < issue["opened_at"]:
                raise ValidationError("at", "a reply cannot predate its issue")
            self._store.insert(
                "issue_replies", {"issue_id": issue["id"], "author": author, "text": text, "at": at}
            )
            state = "open" if author == "vendor" else "waiting_on_vendor"
            self._store.execute("UPDATE issues SET state = ? WHERE id = ?", [state, issue["id"]])
        return self.get_issue(issue["id"])

    def resolve_issue(self, issue_id: int, *, at: int | None = None) -> Issue:
        """Mark an issue resolved. ConflictError if it already is."""
        at = self._at("at", at)
        with self._store.transaction():
            issue = self._issue_row(issue_id)
            if issue["state"] == "resolved":
                raise ConflictError(f"issue {issue_id} is already resolved")
            if at < issue["opened_at"]:
                raise ValidationError("at", "an issue cannot be resolved before it was opened")
            self._store.execute(
                "UPDATE issues SET state = 'resolved', resolved_at = ? WHERE id = ?", [at, issue["id"]]
            )
        return self.get_issue(issue["id"])

    def reopen_issue(self, issue_id: int) -> Issue:
        """Reopen a resolved issue (the problem came back); the vendor owes an answer again."""
        with self._store.transaction():
            issue = self._issue_row(issue_id)
            if issue["state"] != "resolved":
                raise ConflictError(f"issue {issue_id} is not resolved")
            self._store.execute(
                "UPDATE issues SET state = 'waiting_on_vendor', resolved_at = NULL WHERE id = ?",
                [issue["id"]],
            )
        return self.get_issue(issue["id"])

    def get_issue(self, issue_id: int) -> Issue:
        issue = self._issue_row(issue_id)
        replies = self._store.query(
            "SELECT * FROM issue_replies WHERE issue_id = ? ORDER BY at, id", [issue["id"]]
        )
        return _from_row(Issue, issue, replies=tuple(_from_row(Reply, r) for r in replies))

    def list_issues(
        self, ref: int | str | None = None, *, state: str | None = None, unresolved: bool = False
    ) -> list[Issue]:
        """Issues newest first, for one vendor or all; filter by ``state`` or to every ``unresolved`` one."""
        clauses, params = [], []
        if ref is not None:
            clauses.append("vendor_id = ?")
            params.append(resolve_vendor(self._store, ref)["id"])
        if state is not None:
            if state not in ISSUE_STATES:
                raise ValidationError("state", f"{state!r} is not one of {', '.join(ISSUE_STATES)}")
            clauses.append("state = ?")
            params.append(state)
        if unresolved:
            clauses.append("state != 'resolved'")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        ids = [
            r["id"]
            for r in self._store.query(
                f"SELECT id FROM issues {where} ORDER BY opened_at DESC, id DESC", params
            )
        ]
        return [self.get_issue(i) for i in ids]

    def _issue_row(self, issue_id: int) -> dict[str, Any]:
        if isinstance(issue_id, str) and issue_id.strip().lstrip("#").isdigit():
            issue_id = int(issue_id.strip().lstrip("#"))
        if isinstance(issue_id, bool) or not isinstance(issue_id, int):
            raise ValidationError("issue", "refer to an issue by its number")
        row = (
            self._store.query_one("SELECT * FROM issues WHERE id = ?", [issue_id])
            if issue_id <= MAX_INT
            else None
        )
        if row is None:
            raise NotFoundError("issue", issue_id)
        return row

    # -- timeline --------------------------------------------------------------------------------

    def timeline(self, ref: int | str) -> list[TimelineEvent]:
        """Everything recorded about one vendor as dated events, newest first."""
        v = resolve_vendor(self._store, ref)
        vid = v["id"]
        events = [TimelineEvent(v["started_at"], "started", vid, vid, "relationship started")]
        if v["ended_at"] is not None:
            reason = f": {v['end_reason']}" if v["end_reason"] else ""
            events.append(
                TimelineEvent(
                    v["ended_at"],
                    "ended",
                    vid,
                    vid,
                    f"relationship ended{reason}",
                    {"reason": v["end_reason"]},
                )
            )
        q = self._store.query
        for r in q("SELECT * FROM engagement_changes WHERE vendor_id = ?", [vid]):
            events.append(
                TimelineEvent(
                    r["at"],
                    "engagement",
                    vid,
                    r["id"],
                    f"engagement set to {r['level']}",
                    {"level": r["level"]},
                )
            )
        for r in q("SELECT * FROM purchases WHERE vendor_id = ?", [vid]):
            events.append(
                TimelineEvent(
                    r["bought_at"],
                    "purchase",
                    vid,
                    r["id"],
                    f"bought {r['product']}",
                    {"product": r["product"], "price_minor": r["price_minor"], "currency": r["currency"]},
                )
            )
        for r in q("SELECT * FROM notes WHERE vendor_id = ?", [vid]):
            events.append(
                TimelineEvent(
                    r["at"], "note", vid, r["id"], _clip(r["text"]), {"tags": json.loads(r["tags"])}
                )
            )
        for r in q("SELECT * FROM ratings WHERE vendor_id = ?", [vid]):
            comment = f": {_clip(r['comment'])}" if r["comment"] else ""
            events.append(
                TimelineEvent(
                    r["at"], "rating", vid, r["id"], f"rated {r['stars']}/5{comment}", {"stars": r["stars"]}
                )
            )
        for r in q("SELECT * FROM recommendations WHERE vendor_id = ?", [vid]):
            verdict = "would recommend" if r["would_recommend"] else "would not recommend"
            text = f": {_clip(r['text'])}" if r["text"] else ""
            events.append(
                TimelineEvent(
                    r["at"],
                    "recommendation",
                    vid,
                    r["id"],
                    verdict + text,
                    {"would_recommend": bool(r["would_recommend"])},
                )
            )
        for r in q("SELECT * FROM issues WHERE vendor_id = ?", [vid]):
            events.append(
                TimelineEvent(
                    r["opened_at"],
                    "issue_opened",
                    vid,
                    r["id"],
                    f"opened issue #{r['id']}: {_clip(r['title'])}",
                    {"issue_id": r["id"]},
                )
            )
            if r["resolved_at"] is not None:
                events.append(
                    TimelineEvent(
                        r["resolved_at"],
                        "issue_resolved",
                        vid,
                        r["id"],
                        f"resolved issue #{r['id']}",
                        {"issue_id": r["id"]},
                    )
                )
        for r in q(
            "SELECT r.* FROM issue_replies r JOIN issues i ON i.id = r.issue_id WHERE i.vendor_id = ?", [vid]
        ):
            who = "the vendor replied" if r["author"] == "vendor" else "I replied"
            events.append(
                TimelineEvent(
                    r["at"],
                    "reply",
                    vid,
                    r["id"],
                    f"{who} on issue #{r['issue_id']}: {_clip(r['text'])}",
                    {"issue_id": r["issue_id"], "author": r["author"]},
                )
            )
        events.sort(key=lambda e: (e.at, _EVENT_ORDER[e.kind], e.ref_id), reverse=True)
        return events


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
