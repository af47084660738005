"""Full-text search across every relationship record (SQLite FTS5, kept current by triggers).

Indexed: vendor names, handles, websites, notes and end reasons; purchases (product, note); notes (text,
tags); rating comments; recommendations; issue titles; issue replies. The vault is never indexed.

A query uses FTS5 syntax (``refund OR delay``, ``"late flight"``, ``deliv*``); ``literal=True`` treats
it as plain words instead. Invalid syntax raises SearchQueryError, never a crash.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from node.errors import SearchQueryError, StoreError, ValidationError
from node.store import Store

SEARCH_KINDS = ("vendor", "purchase", "note", "rating", "recommendation", "issue", "reply")
MAX_QUERY = 500
# Messages SQLite gives for a bad MATCH expression (as opposed to a failing disk or a locked file).
_QUERY_ERRORS = ("fts5:", "no such column", "unknown special query", "malformed match", "unterminated string")


@dataclass(frozen=True)
class SearchHit:
    kind: str  # one of SEARCH_KINDS
    ref_id: int  # id of the record in its table (vendors, notes, issues, issue_replies …)
    vendor_id: int
    vendor_handle: str
    vendor_name: str
    snippet: str  # the matching text with hits between the ``mark`` pair
    rank: float  # bm25: lower is a better match


def search(
    store: Store,
    query: str,
    *,
    limit: int = 50,
    literal: bool = False,
    kinds: tuple[str, ...] | None = None,
    mark: tuple[str, str] = ("[", "]"),
) -> list[SearchHit]:
    """Best matches first, at most ``limit``, optionally only records of the given ``kinds``."""
    if not isinstance(query, str) or not query.strip():
        raise SearchQueryError("query", "must not be empty")
    if len(query) > MAX_QUERY:
        raise SearchQueryError("query", f"longer than {MAX_QUERY} characters")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ValidationError("limit", "must be an integer from 1 to 1000")
    if kinds is not None and (not kinds or any(k not in SEARCH_KINDS for k in kinds)):
        raise ValidationError("kinds", f"each kind must be one of {', '.join(SEARCH_KINDS)}")
    match = store.quote_fts(query) if literal else query
    kind_filter = f"AND s.kind IN ({', '.join('?' for _ in kinds)})" if kinds else ""
    sql = (
        "SELECT s.kind, s.ref_id, s.vendor_id, v.handle, v.name, "
        "snippet(search_index, 3, ?, ?, '…', 12) AS snippet, rank "
        "FROM search_index s JOIN vendors v ON v.id = s.vendor_id "
        f"WHERE search_index MATCH ? {kind_filter} ORDER BY rank, s.rowid LIMIT ?"
    )
    try:
        rows = store.query(sql, [mark[0], mark[1], match, *(kinds or ()), limit])
    except sqlite3.OperationalError as exc:
        if str(exc).lower().startswith(_QUERY_ERRORS):
            raise SearchQueryError("query", f"not a valid search ({exc}); try literal search") from None
        raise StoreError(f"search failed: {exc}") from exc
    return [
        SearchHit(
            kind=r["kind"],
            ref_id=r["ref_id"],
            vendor_id=r["vendor_id"],
            vendor_handle=r["handle"],
            vendor_name=r["name"],
            snippet=r["snippet"],
            rank=r["rank"],
        )
        for r in rows
    ]
