"""A person's issues with a vendor (mixed into ``node.records.Records``): opening, replies, resolving.

The states follow who owes the next word (see node.records): opening and a ``me`` reply leave it
``waiting_on_vendor``, a ``vendor`` reply ``open``; a resolved issue takes no replies until reopened.
"""

from __future__ import annotations

from typing import Any

from node.errors import ConflictError, NotFoundError, ValidationError
from node.records_model import MAX_INT, MAX_NAME, REPLY_AUTHORS, Issue, Reply, _from_row, _text, resolve_vendor
from node.store import ISSUE_STATES


class IssueRecords:
    """The issues part of ``Records``; its store and clock (``_store``, ``_at``) are ``Records``'."""

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
