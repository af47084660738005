"""Rows named by their hex id or a prefix of it: the one lookup every table with hex ids uses.

A prefix is 6 to 64 lowercase hex characters (people type ids from a screen); it must match exactly
one row. ``rows_by_prefix`` is the query (at most two rows, enough to tell ambiguity);
``row_by_prefix`` adds the refusals every "refer by id" lookup gives.
"""

from __future__ import annotations

import re
from typing import Any

from node.errors import NotFoundError, ValidationError
from node.store import Store

MIN_PREFIX = 6  # hex characters of an id that may stand for it
_HEX = re.compile(r"[0-9a-f]+")


def is_hex_prefix(text: str) -> bool:
    """True when ``text`` (already lowercased) is 6 to 64 hex characters."""
    return MIN_PREFIX <= len(text) <= 64 and _HEX.fullmatch(text) is not None


def rows_by_prefix(store: Store, table: str, column: str, prefix: str) -> list[dict[str, Any]]:
    """At most two rows of ``table`` whose ``column`` starts with ``prefix``, in ``id`` order."""
    return store.query(
        f"SELECT * FROM {table} WHERE substr({column}, 1, ?) = ? ORDER BY id LIMIT 2", [len(prefix), prefix]
    )


def row_by_prefix(store: Store, table: str, what: str, ref: object, *, column: str = "id") -> dict[str, Any]:
    """The one row of ``table`` whose ``column`` is ``ref`` or starts with it. ValidationError (field
    ``id``) for what is no id or matches several rows, NotFoundError(``what``) for none."""
    article = "an" if what[:1] in "aeiou" else "a"
    if not isinstance(ref, str):
        raise ValidationError("id", f"refer to {article} {what} by its id or a prefix of it")
    key = ref.strip().lower()
    if not is_hex_prefix(key):
        raise ValidationError(
            "id", f"{ref!r} is not {article} {what} id: give its hex id or at least {MIN_PREFIX} characters of it"
        )
    rows = rows_by_prefix(store, table, column, key)
    if not rows:
        raise NotFoundError(what, ref)
    if len(rows) > 1:
        raise ValidationError("id", f"{ref!r} matches more than one {what}; give more characters")
    return rows[0]
