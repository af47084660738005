"""Consented access: what the vendor side and the person side share (reading, resolving refs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from node.backends import NATIVE, Backend
from node.envelope import Envelope
from node.errors import NotFoundError, ValidationError
from node.grants.bodies import check_fields
from node.grants.model import (
    GRANT_STATUSES,
    MAX_FIELDS,
    REQUEST_STATUSES,
    AccessRequest,
    Grant,
    _grant,
    _HEX64,
    _request,
)
from node.prefix import MIN_PREFIX, is_hex_prefix, row_by_prefix, rows_by_prefix
from node.store import Clock, Store, wall_clock_ms
from node.vault import Vault


class GrantsBase:
    """What both sides share: the store, the clock, reading grants and requests, resolving refs."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = wall_clock_ms,
        backend: Backend = NATIVE,
        held_key: bytes | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._backend = backend
        # A vendor's vault key (None: no passphrase): seals the data held under received grants.
        self._held_key = held_key


    # -- reading ---------------------------------------------------------------------------------------

    def list(self, *, direction: str | None = None, status: str = "live") -> list[Grant]:
        """Grants of one ``direction`` (``given``/``received``, None for both) and stored ``status``
        (``live``, ``ended`` or ``all``), newest first."""
        if status not in GRANT_STATUSES:
            raise ValidationError("status", f"{status!r} is not one of {', '.join(GRANT_STATUSES)}")
        if direction not in (None, "given", "received"):
            raise ValidationError("direction", f"{direction!r} is not one of given, received")
        where, params = [], []
        if status != "all":
            where, params = ["status = ?"], [status]
        if direction is not None:
            where, params = [*where, "direction = ?"], [*params, direction]
        sql = "SELECT * FROM grants" + (" WHERE " + " AND ".join(where) if where else "")
        return [_grant(r) for r in self._store.query(sql + " ORDER BY created_at DESC, id", params)]

    def get(self, ref: str) -> Grant:
        """The grant with id ``ref``, or the only one whose id starts with ``ref`` (6+ hex characters)."""
        return _grant(self._row(ref))

    def requests(self, direction: str | None = None, status: str | None = None) -> list[AccessRequest]:
        """Requests of one ``direction`` (``sent``/``received``) and ``status`` (``pending``,
        ``approved``, ``denied``, ``expired``; None for all), oldest first."""
        if status is not None and status not in REQUEST_STATUSES:
            raise ValidationError("status", f"{status!r} is not one of {', '.join(REQUEST_STATUSES)}")
        if direction not in (None, "sent", "received"):
            raise ValidationError("direction", f"{direction!r} is not one of sent, received")
        now = self._clock()
        where, params = [], []
        if direction is not None:
            where, params = ["direction = ?"], [direction]
        sql = "SELECT * FROM access_requests" + (" WHERE " + " AND ".join(where) if where else "")
        found = [_request(r, now) for r in self._store.query(sql + " ORDER BY created_at, id", params)]
        return [r for r in found if status is None or r.status == status]

    def request_by_ref(self, ref: str, *, direction: str | None = None) -> AccessRequest:
        """The request with id ``ref`` or the only one starting with it (6+ hex characters)."""
        row = row_by_prefix(self._store, "access_requests", "request", ref)
        if direction is not None and row["direction"] != direction:
            raise NotFoundError("request", ref)
        return _request(row, self._clock())

    # -- helpers ---------------------------------------------------------------------------------------

    def _request_row(self, env: Envelope, direction: str, now: int) -> dict[str, Any]:
        body = env.body
        return {
            "id": env.id.hex(),
            "direction": direction,
            "vendor": env.author.hex(),
            "person": body["to"].hex(),
            "fields": json.dumps(body["fields"]),
            "purpose": body["purpose"],
            "duration_ms": body["duration"],
            "for_ref": None if body["for"] is None else body["for"].hex(),
            "raw": env.raw,
            "created_at": env.created,
            "expires_at": env.expires,
            "received_at": now,
        }

    def _request_by_id(self, request_id: str) -> AccessRequest:
        row = self._store.query_one("SELECT * FROM access_requests WHERE id = ?", [request_id])
        if row is None:
            raise NotFoundError("request", request_id)
        return _request(row, self._clock())

    def _grant_by_id(self, grant_id: str) -> Grant:
        row = self._store.query_one("SELECT * FROM grants WHERE id = ?", [grant_id])
        if row is None:
            raise NotFoundError("grant", grant_id)
        return _grant(row)

    def _row(self, ref: object) -> dict[str, Any]:
        return row_by_prefix(self._store, "grants", "grant", ref)

    def _resolve_for(self, ref: object, *, vendor: bool) -> str:
        """The id of the intent or offer ``ref`` names: a full 64-hex id as is, else the only intent
        (a lead on a vendor's node) or offer (sent by a vendor, received by a person) it prefixes."""
        if not isinstance(ref, str):
            raise ValidationError("for", "name an intent or offer by its id or a prefix of it")
        key = ref.strip().lower()
        if _HEX64.fullmatch(key):
            return key
        if not is_hex_prefix(key):
            raise ValidationError("for", f"{ref!r} is not an id: give at least {MIN_PREFIX} hex characters")
        sources = (
            [("leads", "intent_id"), ("offers", "id")] if vendor else [("intents", "id"), ("offers", "id")]
        )
        found: set[str] = set()
        for table, column in sources:
            found |= {r[column] for r in rows_by_prefix(self._store, table, column, key)}
        if not found:
            raise NotFoundError("intent or offer", ref)
        if len(found) > 1:
            raise ValidationError("for", f"{ref!r} matches more than one intent or offer; give more characters")
        return found.pop()


def _intent_ended(row: dict[str, Any], now: int) -> bool:
    """Whether the intent a grant row serves (joined as intent_status, intent_expires) has ended."""
    return row["intent_status"] is not None and (row["intent_status"] != "live" or row["intent_expires"] <= now)


def _asked(fields: object) -> list[str]:
    """The field names an access asks for: distinct, sorted, each a field name, at most 32."""
    if isinstance(fields, str) or not isinstance(fields, (list, tuple)):
        raise ValidationError("fields", "give a list of field names")
    names = sorted(set(fields), key=str)
    return check_fields(names, minimum=1)


def _read_vault(vault: Vault, names: Sequence[str]) -> dict[str, str]:
    values = {}
    for name in names:
        try:
            values[name] = vault.get(name)
        except NotFoundError:
            continue  # granted but not in the vault: left out of the answer
    return values


def _is_value_map(values: object, granted: set[str]) -> bool:
    return (
        isinstance(values, dict)
        and len(values) <= MAX_FIELDS
        and all(isinstance(k, str) and k in granted and isinstance(v, str) for k, v in values.items())
    )
