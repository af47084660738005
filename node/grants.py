"""Consented access: a vendor's requests, the person's grants, enforced on every access, revocable.

Vendor side: ``request`` signs a ``request`` for fields of a person's vault; ``grant_received`` keeps a
grant addressed to us; ``store_fetched``/``store_pushed`` keep the data got under it (``held``);
``revoke_received`` ends it, deletes what we hold and signs the ``deletion`` statement the person's node
gets back; ``end_expired_received`` deletes the data of grants past their expiry.

Person side: ``request_received`` keeps a request, ``pending``/``approve`` (narrower only)/``deny``
answer it, ``create`` grants without one. ``check`` is the pure grant check of an access; ``access``
runs it, spends a use and appends the receipt in ONE transaction (a revocation committed before is
always seen: the use is spent with a conditional update under the write lock). ``revoke`` and
``end_due`` (expiry, a spent budget, the intent served withdrawn or expired) end grants with a signed
``revoke``; ``deletion_received`` records the vendor's statement; ``pushes_due`` says which push
grants have vault fields to (re)send.

Bodies are checked exactly (``check_*_body``, ValidationError naming the field); an addressee refuses
any other shape with ``invalid_body`` and changes nothing. Values from the vault never enter this
module's tables on the person's side, nor a receipt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from node import envelope
from node.backends import NATIVE, Backend
from node.blocks import Blocks
from node.envelope import Envelope
from node.errors import ConflictError, NotFoundError, PassphraseError, ValidationError, VaultError
from node.identity import Identity
from node.intents import normalize_terms
from node.nodeid import encode_node_id
from node.reasons import Reason
from node.receipts import NO_GRANT_ID, Receipts
from node.seal import SealError, x25519_public_key
from node.store import Clock, Store, wall_clock_ms
from node.vault import FIELD_NAME, Vault

REQUEST_KEYS = ("duration", "fields", "for", "purpose", "to")
GRANT_KEYS = ("fields", "for", "purpose", "push", "request", "terms", "to", "uses")
REVOKE_KEYS = ("grant", "reason", "to")
DELETION_KEYS = ("fields", "grant", "revoke", "to")
END_REASONS = ("revoked", "expired", "budget_spent", "intent_ended")
REQUEST_STATUSES = ("pending", "approved", "denied", "expired")
GRANT_STATUSES = ("live", "ended", "all")
MAX_FIELDS = 32
MAX_PURPOSE = 500
MIN_DURATION_MS = 60_000
MAX_DURATION_MS = 365 * 86_400_000
REQUEST_TTL_MS = 7 * 86_400_000
REVOKE_TTL_MS = DELETION_TTL_MS = 30 * 86_400_000
MAX_USES = 2**32 - 1
MIN_PREFIX = 6
_HEX = re.compile(r"[0-9a-f]+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# How an ended grant answers an access: an intent that ended is the person's doing, like a revocation.
_ENDED_REASON = {
    "revoked": Reason.REVOKED,
    "intent_ended": Reason.REVOKED,
    "expired": Reason.EXPIRED,
    "budget_spent": Reason.BUDGET_SPENT,
}


# -- records -----------------------------------------------------------------------------------------


def _node_id(key_hex: str) -> str:
    return encode_node_id(bytes.fromhex(key_hex))


@dataclass(frozen=True)
class AccessRequest:
    """A request for access. ``direction`` is ``sent`` (we are the vendor) or ``received`` (we are the
    person); keys and ids are hex. ``status``: ``pending``, ``approved``, ``denied`` or ``expired``
    (pending past its own expiry). A vendor's sent request becomes ``approved`` when the grant naming
    it arrives; a denial is not sent, so it stays pending until it expires."""

    id: str
    direction: str
    vendor: str
    person: str
    fields: tuple[str, ...]
    purpose: str
    duration_ms: int
    for_ref: str | None
    created: int
    expires: int
    status: str
    decided_at: int | None
    grant_id: str | None
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction,
            "vendor": self.vendor,
            "vendor_node_id": _node_id(self.vendor),
            "person": self.person,
            "person_node_id": _node_id(self.person),
            "fields": list(self.fields),
            "purpose": self.purpose,
            "duration_ms": self.duration_ms,
            "for": self.for_ref,
            "created": self.created,
            "expires": self.expires,
            "status": self.status,
            "decided_at": self.decided_at,
            "grant_id": self.grant_id,
            "raw": self.raw.hex(),
        }


@dataclass(frozen=True)
class Grant:
    """A grant. ``direction`` is ``given`` (we are the person) or ``received`` (the vendor). ``status``
    is what is stored: ``live`` until the grant is ended (``end_reason``); whether an access would pass
    right now is ``Grants.check``'s answer (a live grant may be past its expiry or spent until the
    sweep ends it). ``uses_spent`` counts answered accesses (on the vendor's side: its fetches).
    ``deletion_confirmed_at`` (person side) is when the vendor's deletion statement arrived."""

    id: str
    direction: str
    person: str
    grantee: str
    fields: tuple[str, ...]
    purpose: str
    terms: tuple[str, ...]
    uses_allowed: int | None
    uses_spent: int
    for_ref: str | None
    request_id: str | None
    push: bool
    created: int
    expires: int
    status: str
    end_reason: str | None
    ended_at: int | None
    revoke_id: str | None
    deletion_id: str | None
    deletion_confirmed_at: int | None
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction,
            "person": self.person,
            "person_node_id": _node_id(self.person),
            "grantee": self.grantee,
            "grantee_node_id": _node_id(self.grantee),
            "fields": list(self.fields),
            "purpose": self.purpose,
            "terms": list(self.terms),
            "uses_allowed": self.uses_allowed,
            "uses_spent": self.uses_spent,
            "for": self.for_ref,
            "request_id": self.request_id,
            "push": self.push,
            "created": self.created,
            "expires": self.expires,
            "status": self.status,
            "end_reason": self.end_reason,
            "ended_at": self.ended_at,
            "revoke_id": self.revoke_id,
            "deletion_id": self.deletion_id,
            "deletion_confirmed_at": self.deletion_confirmed_at,
            "raw": self.raw.hex(),
        }


@dataclass(frozen=True)
class AccessOutcome:
    """What ``Grants.access`` decided: ``reason`` (OK or the refusal), the grant named (None when it is
    not one of ours), the values answered (only fields present in the vault; empty on refusal) and the
    signed receipt to send to the requester."""

    reason: Reason
    grant: Grant | None
    values: dict[str, str] = field(repr=False)
    receipt: Envelope

    @property
    def ok(self) -> bool:
        return self.reason == Reason.OK


# -- bodies ------------------------------------------------------------------------------------------


def _exact_map(value: object, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict) or sorted(value) != list(keys):
        raise ValidationError("body", f"must be a map with exactly the keys {', '.join(keys)}")
    return value


def _key(value: object, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValidationError(name, "must be 32 bytes")
    return value


def _optional_key(value: object, name: str) -> bytes | None:
    return None if value is None else _key(value, name)


def check_fields(value: object, name: str = "fields", *, minimum: int = 1) -> list[str]:
    """``value`` if it is a list of ``minimum``..32 vault field names, distinct and sorted ascending."""
    if not isinstance(value, list) or not minimum <= len(value) <= MAX_FIELDS:
        raise ValidationError(name, f"must be a list of {minimum} to {MAX_FIELDS} field names")
    for item in value:
        if not isinstance(item, str) or not FIELD_NAME.fullmatch(item):
            raise ValidationError(name, f"{item!r} is not a field name (1-64 of a-z 0-9 _ . -)")
    if any(a >= b for a, b in zip(value, value[1:])):
        raise ValidationError(name, "must be distinct and sorted ascending")
    return value


def check_purpose(value: object, name: str = "purpose", *, empty: bool = False) -> str:
    """Text of 1..500 characters, not only white space, without control characters (or "" if
    ``empty``)."""
    if empty and value == "":
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "must be non-empty text")
    if len(value) > MAX_PURPOSE:
        raise ValidationError(name, f"longer than {MAX_PURPOSE} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValidationError(name, "must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(name, "is not valid Unicode text") from None
    return value


def _uint(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(name, f"must be a whole number from {low} to {high}")
    return value


def check_request_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly a ``request`` body; ValidationError naming the field otherwise."""
    body = _exact_map(body, REQUEST_KEYS)
    _key(body["to"], "to")
    check_fields(body["fields"])
    check_purpose(body["purpose"])
    _uint(body["duration"], "duration", MIN_DURATION_MS, MAX_DURATION_MS)
    _optional_key(body["for"], "for")
    return body


def check_grant_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly a ``grant`` body."""
    body = _exact_map(body, GRANT_KEYS)
    _key(body["to"], "to")
    check_fields(body["fields"])
    check_purpose(body["purpose"])
    if body["uses"] is not None:
        _uint(body["uses"], "uses", 1, MAX_USES)
    terms = body["terms"]
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ValidationError("terms", "must be a list of term names")
    if normalize_terms(terms) != tuple(terms):
        raise ValidationError("terms", "must be known term names, lower case, each once")
    _optional_key(body["for"], "for")
    _optional_key(body["request"], "request")
    if not isinstance(body["push"], bool):
        raise ValidationError("push", "must be true or false")
    return body


def check_revoke_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly a ``revoke`` body."""
    body = _exact_map(body, REVOKE_KEYS)
    _key(body["to"], "to")
    _key(body["grant"], "grant")
    if body["reason"] not in END_REASONS or not isinstance(body["reason"], str):
        raise ValidationError("reason", f"must be one of {', '.join(END_REASONS)}")
    return body


def check_deletion_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly a ``deletion`` body (``fields`` may be empty: nothing was held)."""
    body = _exact_map(body, DELETION_KEYS)
    _key(body["to"], "to")
    _key(body["grant"], "grant")
    _optional_key(body["revoke"], "revoke")
    check_fields(body["fields"], minimum=0)
    return body


def field_list(fields: object, name: str = "fields") -> list[str]:
    """Field names as given by a person or a vendor (any order, repeats allowed), as a body wants
    them: checked, distinct, sorted."""
    if isinstance(fields, str):
        fields = [f for f in re.split(r"[,\s]+", fields) if f]
    if not isinstance(fields, (list, tuple)):
        raise ValidationError(name, "give a list of field names")
    names = sorted({f.strip().lower() if isinstance(f, str) else f for f in fields}, key=str)
    return check_fields(names, name)


# -- rows --------------------------------------------------------------------------------------------


def _request(row: dict[str, Any], now: int) -> AccessRequest:
    status = row["status"]
    if status == "pending" and row["expires_at"] <= now:
        status = "expired"
    return AccessRequest(
        id=row["id"],
        direction=row["direction"],
        vendor=row["vendor"],
        person=row["person"],
        fields=tuple(json.loads(row["fields"])),
        purpose=row["purpose"],
        duration_ms=row["duration_ms"],
        for_ref=row["for_ref"],
        created=row["created_at"],
        expires=row["expires_at"],
        status=status,
        decided_at=row["decided_at"],
        grant_id=row["grant_id"],
        raw=bytes(row["raw"]),
    )


def _grant(row: dict[str, Any]) -> Grant:
    return Grant(
        id=row["id"],
        direction=row["direction"],
        person=row["person"],
        grantee=row["grantee"],
        fields=tuple(json.loads(row["fields"])),
        purpose=row["purpose"],
        terms=tuple(json.loads(row["terms"])),
        uses_allowed=row["uses_allowed"],
        uses_spent=row["uses_spent"],
        for_ref=row["for_ref"],
        request_id=row["request_id"],
        push=bool(row["push"]),
        created=row["created_at"],
        expires=row["expires_at"],
        status=row["status"],
        end_reason=row["end_reason"],
        ended_at=row["ended_at"],
        revoke_id=row["revoke_id"],
        deletion_id=row["deletion_id"],
        deletion_confirmed_at=row["deletion_confirmed_at"],
        raw=bytes(row["raw"]),
    )


def _grant_row(env: Envelope, direction: str, now: int) -> dict[str, Any]:
    body = env.body
    return {
        "id": env.id.hex(),
        "direction": direction,
        "person": env.author.hex(),
        "grantee": body["to"].hex(),
        "fields": json.dumps(body["fields"]),
        "purpose": body["purpose"],
        "terms": json.dumps(body["terms"]),
        "uses_allowed": body["uses"],
        "for_ref": None if body["for"] is None else body["for"].hex(),
        "request_id": None if body["request"] is None else body["request"].hex(),
        "push": int(body["push"]),
        "raw": env.raw,
        "created_at": env.created,
        "expires_at": env.expires,
        "received_at": now,
    }


def _hex_key(value: object, name: str) -> str:
    """A 32-byte key given as bytes or 64 hex characters, as lower-case hex."""
    if isinstance(value, (bytes, bytearray)) and len(value) == 32:
        return bytes(value).hex()
    if isinstance(value, str) and _HEX64.fullmatch(value.strip().lower()):
        return value.strip().lower()
    raise ValidationError(name, "must be a 32-byte key (or its 64 hex characters)")


# The grant check's one query: the grant this node gave, and the intent it serves if any.
_CHECK_SQL = (
    "SELECT g.*, i.status AS intent_status, i.expires_at AS intent_expires FROM grants g"
    " LEFT JOIN intents i ON i.id = g.for_ref WHERE g.id = ? AND g.direction = 'given'"
)
_SPEND_SQL = (
    "UPDATE grants SET uses_spent = uses_spent + 1 WHERE id = ? AND direction = 'given' AND status = 'live'"
    " AND expires_at > ? AND (uses_allowed IS NULL OR uses_spent < uses_allowed)"
)


class Grants:
    """Requests and grants over one Store, on a vendor's node or a person's."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms, backend: Backend = NATIVE) -> None:
        self._store = store
        self._clock = clock
        self._backend = backend

    # -- vendor side -----------------------------------------------------------------------------------

    def request(
        self,
        identity: Identity,
        person_key: bytes,
        *,
        fields: Sequence[str],
        purpose: str,
        duration_ms: int,
        for_ref: str | None,
    ) -> tuple[AccessRequest, Envelope]:
        """Sign a ``request`` to the person ``person_key`` for ``fields`` (any order) for ``purpose`` and
        ``duration_ms``, optionally naming the intent (a lead) or offer it serves by id or prefix; kept
        as sent. The request itself expires in 7 days."""
        person = bytes.fromhex(_hex_key(person_key, "person"))
        if person == identity.public_key:
            raise ValidationError("person", "a request goes to somebody else's node")
        for_id = None if for_ref is None else self._resolve_for(for_ref, vendor=True)
        body = check_request_body(
            {
                "to": person,
                "fields": field_list(fields),
                "purpose": purpose.strip() if isinstance(purpose, str) else purpose,
                "duration": _uint(duration_ms, "duration_ms", MIN_DURATION_MS, MAX_DURATION_MS),
                "for": None if for_id is None else bytes.fromhex(for_id),
            }
        )
        now = self._clock()
        signed = envelope.create(
            identity, "request", body, created=now, ttl_ms=REQUEST_TTL_MS, backend=self._backend
        )
        with self._store.transaction():
            self._store.insert("access_requests", self._request_row(signed, "sent", now))
        return self._request_by_id(signed.id.hex()), signed

    def grant_received(self, env: Envelope, *, me: bytes | None = None) -> Reason:
        """Keep a ``grant`` addressed to us. Refusals, in order: ``invalid_body`` (also a grant to its
        own author); ``not_for_role`` (its ``to`` is not ``me``, when given); ``duplicate``;
        ``unknown_intent`` (it names a request we never sent); ``wrong_author`` (that request went to
        someone else); ``invalid_body`` (it grants a field the request did not ask for). A grant naming
        our request marks it approved."""
        body, refusal = envelope.addressed_body(env, "grant", check_grant_body, me)
        if body is None:
            return refusal
        if self._store.query_one("SELECT 1 FROM grants WHERE id = ?", [env.id.hex()]) is not None:
            return Reason.DUPLICATE
        asked = None
        if body["request"] is not None:
            asked = self._store.query_one(
                "SELECT * FROM access_requests WHERE id = ? AND direction = 'sent'", [body["request"].hex()]
            )
            if asked is None:
                return Reason.UNKNOWN_INTENT
            if asked["person"] != env.author.hex() or asked["vendor"] != body["to"].hex():
                return Reason.WRONG_AUTHOR
            if not set(body["fields"]) <= set(json.loads(asked["fields"])):
                return Reason.INVALID_BODY
        now = self._clock()
        with self._store.transaction():
            self._store.insert("grants", _grant_row(env, "received", now))
            if asked is not None:
                self._store.execute(
                    "UPDATE access_requests SET status = 'approved', decided_at = ?, grant_id = ?"
                    " WHERE id = ? AND status = 'pending'",
                    [env.created, env.id.hex(), asked["id"]],
                )
        return Reason.OK

    def revoke_received(self, identity: Identity, env: Envelope) -> tuple[Reason, Envelope | None]:
        """End a grant we received on the person's ``revoke``: delete what we hold under it and sign
        the ``deletion`` statement (returned, to be sent to her). Refusals, in order: ``invalid_body``;
        ``not_for_role`` (addressed to another key); ``no_grant`` (no grant we received has that id);
        ``wrong_author`` (not signed by the grant's person); ``duplicate`` (already answered)."""
        body, refusal = envelope.addressed_body(
            env, "revoke", check_revoke_body, identity.public_key, refuse_self=False
        )
        if body is None:
            return refusal, None
        row = self._store.query_one(
            "SELECT * FROM grants WHERE id = ? AND direction = 'received'", [body["grant"].hex()]
        )
        if row is None:
            return Reason.NO_GRANT, None
        if env.author.hex() != row["person"]:
            return Reason.WRONG_AUTHOR, None
        if row["revoke_id"] is not None:
            return Reason.DUPLICATE, None
        now = self._clock()
        with self._store.transaction():
            deleted = self._delete_held(row, now, body["reason"])
            statement = check_deletion_body(
                {"to": env.author, "grant": body["grant"], "revoke": env.id, "fields": deleted}
            )
            deletion = envelope.create(
                identity, "deletion", statement, created=now, ttl_ms=DELETION_TTL_MS, backend=self._backend
            )
            self._store.execute(
                "UPDATE grants SET revoke_id = ?, revoke_raw = ?, deletion_id = ?, deletion_raw = ? WHERE id = ?",
                [env.id.hex(), env.raw, deletion.id.hex(), deletion.raw, row["id"]],
            )
        return Reason.OK, deletion

    def store_pushed(self, person_key_hex: str, grant_id: str, version: int, plaintext_map: dict) -> Reason:
        """Keep what a person's node pushed under a grant we received from it: the values replace what
        we held (a field no longer sent was deleted from her vault). Refusals: ``no_grant`` (no such
        grant from that person), ``revoked`` (the grant ended), ``expired``, ``duplicate`` (a version
        not newer than the last taken), ``invalid_body`` (not a map of granted field names to text)."""
        if not isinstance(grant_id, str) or not _HEX64.fullmatch(grant_id) or not isinstance(person_key_hex, str):
            return Reason.NO_GRANT
        row = self._store.query_one(
            "SELECT * FROM grants WHERE id = ? AND direction = 'received' AND person = ?",
            [grant_id, person_key_hex],
        )
        if row is None:
            return Reason.NO_GRANT
        now = self._clock()
        if row["status"] == "ended":
            return Reason.REVOKED
        if row["expires_at"] <= now:
            return Reason.EXPIRED
        if isinstance(version, bool) or not isinstance(version, int) or version < 1 or version >= 2**63:
            return Reason.INVALID_BODY
        if version <= row["held_version"]:
            return Reason.DUPLICATE
        granted = set(json.loads(row["fields"]))
        if not _is_value_map(plaintext_map, granted):
            return Reason.INVALID_BODY
        with self._store.transaction():
            self._store.execute("DELETE FROM held_data WHERE grant_id = ?", [grant_id])
            self._store.insert_many(
                "held_data",
                [{"grant_id": grant_id, "name": n, "value": v, "received_at": now} for n, v in plaintext_map.items()],
            )
            self._store.execute("UPDATE grants SET held_version = ? WHERE id = ?", [version, grant_id])
        return Reason.OK

    def store_fetched(self, grant_id: str, values: dict) -> None:
        """Keep values fetched under a grant we received (merged into what we hold; one use counted).
        Nothing is kept when the grant ended meanwhile: its data must not outlive it. ValidationError
        for values that are not granted field names to text."""
        row = self._row(grant_id)
        if row["direction"] != "received":
            raise ValidationError("grant", "data is kept only under grants this node received")
        if not _is_value_map(values, set(json.loads(row["fields"]))):
            raise ValidationError("values", "must map granted field names to text")
        if row["status"] == "ended":
            return
        now = self._clock()
        with self._store.transaction():
            for name, value in values.items():
                self._store.execute(
                    "INSERT INTO held_data (grant_id, name, value, received_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (grant_id, name) DO UPDATE SET value = excluded.value,"
                    " received_at = excluded.received_at",
                    [row["id"], name, value, now],
                )
            self._store.execute(
                "UPDATE grants SET uses_spent = uses_spent + 1 WHERE id = ?"
                " AND (uses_allowed IS NULL OR uses_spent < uses_allowed)",
                [row["id"]],
            )

    def held(self, grant_id: str) -> dict[str, str]:
        """The values we hold under a grant we received, by field name (empty when none)."""
        rows = self._store.query("SELECT name, value FROM held_data WHERE grant_id = ? ORDER BY name", [grant_id])
        return {r["name"]: r["value"] for r in rows}

    def end_expired_received(self, now: int) -> list[str]:
        """End the live grants we received that are past their expiry and delete what we hold under
        them; their ids."""
        rows = self._store.query(
            "SELECT * FROM grants WHERE direction = 'received' AND status = 'live' AND expires_at <= ?", [now]
        )
        with self._store.transaction():
            for row in rows:
                self._delete_held(row, now, "expired")
        return [r["id"] for r in rows]

    def _delete_held(self, row: dict[str, Any], now: int, reason: str) -> list[str]:
        """Delete the data held under a received grant and end it (if live); every field name deleted
        under it so far, sorted."""
        names = [r["name"] for r in self._store.query("SELECT name FROM held_data WHERE grant_id = ?", [row["id"]])]
        self._store.execute("DELETE FROM held_data WHERE grant_id = ?", [row["id"]])
        deleted = sorted(set(json.loads(row["deleted_fields"] or "[]")) | set(names))
        self._store.execute("UPDATE grants SET deleted_fields = ? WHERE id = ?", [json.dumps(deleted), row["id"]])
        if row["status"] == "live":
            self._store.execute(
                "UPDATE grants SET status = 'ended', end_reason = ?, ended_at = ? WHERE id = ? AND status = 'live'",
                [reason, now, row["id"]],
            )
        return deleted

    # -- person side -----------------------------------------------------------------------------------

    def request_received(self, env: Envelope, *, me: bytes | None = None) -> Reason:
        """Keep a ``request`` addressed to us as pending. Refusals, in order: ``invalid_body`` (also a
        request to its own author); ``not_for_role`` (``to`` is not ``me``, when given); ``duplicate``;
        ``unknown_intent`` (``for`` names neither an intent we cast nor an offer this vendor made us);
        ``withdrawn`` / ``expired`` (that intent ended); ``blocked`` (we blocked the vendor)."""
        body, refusal = envelope.addressed_body(env, "request", check_request_body, me)
        if body is None:
            return refusal
        if self._store.query_one("SELECT 1 FROM access_requests WHERE id = ?", [env.id.hex()]) is not None:
            return Reason.DUPLICATE
        now = self._clock()
        if body["for"] is not None:
            ref = body["for"].hex()
            intent = self._store.query_one(
                "SELECT status, expires_at FROM intents WHERE id = ? AND author = ?", [ref, body["to"].hex()]
            )
            offer = self._store.query_one(
                "SELECT 1 FROM offers WHERE id = ? AND direction = 'received' AND vendor = ?", [ref, env.author.hex()]
            )
            if intent is None and offer is None:
                return Reason.UNKNOWN_INTENT
            if intent is not None and intent["status"] == "withdrawn":
                return Reason.WITHDRAWN
            if intent is not None and intent["expires_at"] <= now:
                return Reason.EXPIRED
        if Blocks(self._store, clock=self._clock).is_blocked(env.author.hex()):
            return Reason.BLOCKED
        with self._store.transaction():
            self._store.insert("access_requests", self._request_row(env, "received", now))
        return Reason.OK

    def pending(self) -> list[AccessRequest]:
        """Requests received and not answered yet (nor expired), oldest first."""
        return self.requests(direction="received", status="pending")

    def approve(
        self,
        identity: Identity,
        request_ref: str,
        *,
        fields: Sequence[str] | None = None,
        duration_ms: int | None = None,
        uses: int | None = None,
        push: bool = False,
    ) -> tuple[Grant, Envelope]:
        """Grant a pending request, as asked or narrower: ``fields`` a subset of those asked,
        ``duration_ms`` at most the one asked, a budget of ``uses``. ValidationError for anything wider;
        ConflictError when the request is not pending."""
        asked = self.request_by_ref(request_ref, direction="received")
        if asked.status != "pending":
            raise ConflictError(f"request {asked.id[:12]} is {asked.status}: only a pending request is approved")
        names = list(asked.fields) if fields is None else field_list(fields)
        wider = sorted(set(names) - set(asked.fields))
        if wider:
            raise ValidationError("fields", f"{', '.join(wider)} not asked for; an approval can only narrow")
        duration = asked.duration_ms if duration_ms is None else duration_ms
        _uint(duration, "duration_ms", MIN_DURATION_MS, MAX_DURATION_MS)
        if duration > asked.duration_ms:
            raise ValidationError("duration_ms", "longer than asked; an approval can only narrow")
        grant, signed = self._make_grant(
            identity,
            bytes.fromhex(asked.vendor),
            fields=names,
            purpose=asked.purpose,
            duration_ms=duration,
            uses=uses,
            terms=None,
            for_id=asked.for_ref,
            request_id=asked.id,
            push=push,
        )
        return grant, signed

    def deny(self, request_ref: str) -> AccessRequest:
        """Refuse a pending request (the vendor is not told; its request expires). ConflictError when it
        is not pending."""
        asked = self.request_by_ref(request_ref, direction="received")
        if asked.status != "pending":
            raise ConflictError(f"request {asked.id[:12]} is {asked.status}: only a pending request is denied")
        with self._store.transaction():
            self._store.execute(
                "UPDATE access_requests SET status = 'denied', decided_at = ? WHERE id = ? AND status = 'pending'",
                [self._clock(), asked.id],
            )
        return self._request_by_id(asked.id)

    def create(
        self,
        identity: Identity,
        grantee_key: bytes,
        *,
        fields: Sequence[str],
        purpose: str,
        duration_ms: int,
        uses: int | None = None,
        terms: Sequence[str] | str = (),
        for_ref: str | None = None,
        push: bool = False,
    ) -> tuple[Grant, Envelope]:
        """Grant ``grantee_key`` access to ``fields`` without a request. ``for_ref`` names an intent we
        cast (the grant then ends with it and expires no later) or an offer we received."""
        _uint(duration_ms, "duration_ms", MIN_DURATION_MS, MAX_DURATION_MS)
        for_id = None if for_ref is None else self._resolve_for(for_ref, vendor=False)
        return self._make_grant(
            identity,
            bytes.fromhex(_hex_key(grantee_key, "grantee")),
            fields=field_list(fields),
            purpose=purpose.strip() if isinstance(purpose, str) else purpose,
            duration_ms=duration_ms,
            uses=uses,
            terms=normalize_terms(terms),
            for_id=for_id,
            request_id=None,
            push=push,
        )

    def _make_grant(
        self,
        identity: Identity,
        grantee: bytes,
        *,
        fields: list[str],
        purpose: object,
        duration_ms: int,
        uses: int | None,
        terms: tuple[str, ...] | None,
        for_id: str | None,
        request_id: str | None,
        push: bool,
    ) -> tuple[Grant, Envelope]:
        """Sign and keep a grant. Terms None: those of the intent served, if any. A grant serving an
        intent needs it live and ends no later than it."""
        if grantee == identity.public_key:
            raise ValidationError("grantee", "a grant goes to somebody else")
        try:
            x25519_public_key(grantee)  # data is sealed to it: refuse a key nothing can be sealed to
        except SealError:
            raise ValidationError("grantee", "not a valid node key") from None
        if uses is not None:
            _uint(uses, "uses", 1, MAX_USES)
        if not isinstance(push, bool):
            raise ValidationError("push", "must be true or false")
        now = self._clock()
        expires = now + duration_ms
        intent = None
        if for_id is not None:
            intent = self._store.query_one(
                "SELECT status, expires_at, body FROM intents WHERE id = ? AND author = ?",
                [for_id, identity.public_key.hex()],
            )
        if intent is not None:
            if intent["status"] != "live" or intent["expires_at"] <= now:
                state = "withdrawn" if intent["status"] != "live" else "expired"
                raise ConflictError(f"intent {for_id[:12]} is {state}: a grant cannot serve it")
            expires = min(expires, intent["expires_at"])
            if terms is None:
                terms = tuple(json.loads(intent["body"]).get("terms", ()))
        body = check_grant_body(
            {
                "to": grantee,
                "fields": fields,
                "purpose": purpose,
                "uses": uses,
                "terms": list(terms or ()),
                "for": None if for_id is None else bytes.fromhex(for_id),
                "request": None if request_id is None else bytes.fromhex(request_id),
                "push": push,
            }
        )
        signed = envelope.create(identity, "grant", body, created=now, expires=expires, backend=self._backend)
        with self._store.transaction():
            self._store.insert("grants", _grant_row(signed, "given", now))
            if request_id is not None:
                changed = self._store.execute(
                    "UPDATE access_requests SET status = 'approved', decided_at = ?, grant_id = ?"
                    " WHERE id = ? AND status = 'pending'",
                    [now, signed.id.hex(), request_id],
                )
                if changed != 1:
                    raise ConflictError(f"request {request_id[:12]} was answered meanwhile")
        return self._grant_by_id(signed.id.hex()), signed

    def check(
        self, grant_id_hex: str, requester_hex: str, fields: Sequence[str] | None, now: int
    ) -> tuple[Reason, Grant | None]:
        """Whether ``requester_hex`` may read ``fields`` (None: all granted) under grant ``grant_id_hex``
        at ``now``; reads only. The first that applies: ``no_grant`` (no grant we gave has that id),
        ``not_grantee``, ``revoked`` (revoked, or the intent it serves withdrawn or ended),
        ``expired``, ``budget_spent``, ``out_of_scope``; else OK. The grant is returned when it is
        ours."""
        if not isinstance(grant_id_hex, str) or not _HEX64.fullmatch(grant_id_hex):
            return Reason.NO_GRANT, None
        row = self._store.query_one(_CHECK_SQL, [grant_id_hex])
        if row is None:
            return Reason.NO_GRANT, None
        grant = _grant(row)
        if requester_hex != grant.grantee:
            return Reason.NOT_GRANTEE, grant
        if grant.status != "live":
            return _ENDED_REASON[grant.end_reason], grant
        if grant.expires <= now:
            return Reason.EXPIRED, grant
        if _intent_ended(row, now):
            return Reason.REVOKED, grant
        if grant.uses_allowed is not None and grant.uses_spent >= grant.uses_allowed:
            return Reason.BUDGET_SPENT, grant
        if fields is not None:
            if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
                raise ValidationError("fields", "give a list of field names")
            if not set(fields) <= set(grant.fields):
                return Reason.OUT_OF_SCOPE, grant
        return Reason.OK, grant

    def access(
        self,
        identity: Identity,
        vault: Vault,
        grant_id_hex: str,
        requester_hex: str,
        fields: Sequence[str] | None,
    ) -> AccessOutcome:
        """Answer an access by ``requester_hex`` (the verified signer) in ONE transaction: the check,
        one use spent when it passes, the values read (only fields present in the vault), and a receipt
        appended whatever the answer. ValidationError (nothing written) for field names that are not
        names, or more than 32 of them."""
        requester = bytes.fromhex(_hex_key(requester_hex, "requester"))
        asked = None if fields is None else _asked(fields)
        with self._store.transaction():
            now = self._clock()
            reason, grant = self.check(grant_id_hex, requester.hex(), asked, now)
            if reason == Reason.OK and self._store.execute(_SPEND_SQL, [grant_id_hex, now]) != 1:
                # Changed since the check read it: look again, now under the write lock.
                reason, grant = self.check(grant_id_hex, requester.hex(), asked, now)
                if reason == Reason.OK:  # cannot happen under the lock; never answer unspent
                    raise ConflictError(f"grant {grant_id_hex[:12]} changed during the access")
            values: dict[str, str] = {}
            if reason == Reason.OK:
                assert grant is not None
                values = _read_vault(vault, asked if asked is not None else list(grant.fields))
                shown = sorted(values)
            elif asked is not None:
                shown = asked
            else:
                shown = list(grant.fields) if grant is not None and reason != Reason.NOT_GRANTEE else []
            # A stranger (not the grantee) learns nothing from its receipt but what it sent.
            ours = grant is not None and reason != Reason.NOT_GRANTEE
            receipt = Receipts(self._store, clock=self._clock, backend=self._backend).append(
                identity,
                to=requester,
                grant=bytes.fromhex(grant.id) if grant is not None else NO_GRANT_ID,
                fields=shown,
                purpose=grant.purpose if ours and grant is not None else "",
                outcome=reason.label,
            )
            if grant is not None and reason == Reason.OK:
                grant = self._grant_by_id(grant.id)
        return AccessOutcome(reason, grant, values, receipt)

    def revoke(self, identity: Identity, ref: str, *, reason: str = "revoked") -> tuple[Grant, Envelope]:
        """End a grant we gave, now: every access is refused from this commit on. Returns the ended
        grant and the signed ``revoke`` for its vendor. ConflictError if it already ended."""
        if reason not in END_REASONS:
            raise ValidationError("reason", f"must be one of {', '.join(END_REASONS)}")
        row = self._row(ref)
        if row["direction"] != "given":
            raise ValidationError("grant", "only the person who gave a grant revokes it")
        if row["status"] != "live":
            raise ConflictError(f"grant {row['id'][:12]} already ended ({row['end_reason']})")
        signed = self._end(identity, row, reason, self._clock())
        return self._grant_by_id(row["id"]), signed

    def _end(self, identity: Identity, row: dict[str, Any], reason: str, now: int) -> Envelope:
        body = check_revoke_body(
            {"to": bytes.fromhex(row["grantee"]), "grant": bytes.fromhex(row["id"]), "reason": reason}
        )
        signed = envelope.create(identity, "revoke", body, created=now, ttl_ms=REVOKE_TTL_MS, backend=self._backend)
        with self._store.transaction():
            changed = self._store.execute(
                "UPDATE grants SET status = 'ended', end_reason = ?, ended_at = ?, revoke_id = ?, revoke_raw = ?"
                " WHERE id = ? AND status = 'live'",
                [reason, now, signed.id.hex(), signed.raw, row["id"]],
            )
            if changed != 1:
                raise ConflictError(f"grant {row['id'][:12]} ended meanwhile")
        return signed

    def deletion_received(self, env: Envelope, *, me: bytes | None = None) -> Reason:
        """Record a vendor's ``deletion`` statement on the grant we gave. Refusals, in order:
        ``invalid_body``; ``not_for_role`` (``to`` is not ``me``, when given); ``no_grant`` (no grant we
        gave has that id); ``not_grantee`` (not signed by its grantee); ``invalid_body`` (it names
        another revocation than ours, or fields not granted); ``duplicate`` (already recorded)."""
        body, refusal = envelope.addressed_body(env, "deletion", check_deletion_body, me, refuse_self=False)
        if body is None:
            return refusal
        row = self._store.query_one(
            "SELECT * FROM grants WHERE id = ? AND direction = 'given'", [body["grant"].hex()]
        )
        if row is None or body["to"].hex() != row["person"]:
            return Reason.NO_GRANT
        if env.author.hex() != row["grantee"]:
            return Reason.NOT_GRANTEE
        if body["revoke"] is not None and body["revoke"].hex() != row["revoke_id"]:
            return Reason.INVALID_BODY
        if not set(body["fields"]) <= set(json.loads(row["fields"])):
            return Reason.INVALID_BODY
        if row["deletion_id"] is not None:
            return Reason.DUPLICATE
        with self._store.transaction():
            self._store.execute(
                "UPDATE grants SET deletion_id = ?, deletion_raw = ?, deletion_confirmed_at = ?"
                " WHERE id = ? AND deletion_id IS NULL",
                [env.id.hex(), env.raw, self._clock(), row["id"]],
            )
        return Reason.OK

    def end_due(self, identity: Identity, now: int) -> list[Envelope]:
        """End every live grant we gave that is due at ``now``: past its expiry (``expired``), serving
        an intent withdrawn or expired (``intent_ended``), or with its budget spent (``budget_spent``);
        the signed revocations, one per grant, to send to the vendors."""
        rows = self._store.query(
            "SELECT g.*, i.status AS intent_status, i.expires_at AS intent_expires FROM grants g"
            " LEFT JOIN intents i ON i.id = g.for_ref"
            " WHERE g.direction = 'given' AND g.status = 'live' AND (g.expires_at <= ?"
            " OR (g.uses_allowed IS NOT NULL AND g.uses_spent >= g.uses_allowed)"
            " OR i.status = 'withdrawn' OR i.expires_at <= ?) ORDER BY g.created_at, g.id",
            [now, now],
        )
        revokes = []
        with self._store.transaction():
            for row in rows:
                if row["expires_at"] <= now:
                    reason = "expired"
                elif _intent_ended(row, now):
                    reason = "intent_ended"
                else:
                    reason = "budget_spent"
                revokes.append(self._end(identity, row, reason, now))
        return revokes

    def pushes_due(self, vault: Vault) -> list[tuple[str, str, int, dict[str, str]]]:
        """(grantee hex, grant id hex, version, values) for each live push grant we gave whose vault
        fields changed (set, replaced or deleted) since it was last pushed, marking them pushed: call it
        in the transaction that queues them. ``values`` holds the granted fields present now (a field
        deleted from the vault is left out, so the vendor drops it); ``version`` counts up from 1 per
        grant. A grant whose fields cannot be read now (an encrypted vault opened without its key) waits
        for the next call."""
        now = self._clock()
        rows = self._store.query(
            "SELECT g.*, i.status AS intent_status, i.expires_at AS intent_expires FROM grants g"
            " LEFT JOIN intents i ON i.id = g.for_ref WHERE g.direction = 'given' AND g.status = 'live'"
            " AND g.push = 1 AND g.expires_at > ? ORDER BY g.created_at, g.id",
            [now],
        )
        if not rows:
            return []
        stamps = {e.name: e.updated_at for e in vault.list()}
        due = []
        with self._store.transaction():
            for row in rows:
                if _intent_ended(row, now):
                    continue  # ending: end_due revokes it
                if row["uses_allowed"] is not None and row["uses_spent"] >= row["uses_allowed"]:
                    continue
                names = [n for n in json.loads(row["fields"]) if n in stamps]
                # What was pushed, by field names and update times only: never a value, nor its hash.
                state = json.dumps([[n, stamps[n]] for n in names])
                if state == row["pushed_state"] or (row["pushed_state"] is None and not names):
                    continue
                try:
                    values = _read_vault(vault, names)
                except (VaultError, PassphraseError):
                    continue
                version = row["pushed_version"] + 1
                self._store.execute(
                    "UPDATE grants SET pushed_version = ?, pushed_state = ? WHERE id = ?", [version, state, row["id"]]
                )
                due.append((row["grantee"], row["id"], version, values))
        return due

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
        row = _by_prefix(self._store, "access_requests", "request", ref)
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
        return _by_prefix(self._store, "grants", "grant", ref)

    def _resolve_for(self, ref: object, *, vendor: bool) -> str:
        """The id of the intent or offer ``ref`` names: a full 64-hex id as is, else the only intent
        (a lead on a vendor's node) or offer (sent by a vendor, received by a person) it prefixes."""
        if not isinstance(ref, str):
            raise ValidationError("for", "name an intent or offer by its id or a prefix of it")
        key = ref.strip().lower()
        if _HEX64.fullmatch(key):
            return key
        if len(key) < MIN_PREFIX or not _HEX.fullmatch(key):
            raise ValidationError("for", f"{ref!r} is not an id: give at least {MIN_PREFIX} hex characters")
        sources = (
            [("leads", "intent_id"), ("offers", "id")] if vendor else [("intents", "id"), ("offers", "id")]
        )
        found: set[str] = set()
        for table, column in sources:
            rows = self._store.query(
                f"SELECT {column} AS id FROM {table} WHERE substr({column}, 1, ?) = ? LIMIT 2", [len(key), key]
            )
            found |= {r["id"] for r in rows}
        if not found:
            raise NotFoundError("intent or offer", ref)
        if len(found) > 1:
            raise ValidationError("for", f"{ref!r} matches more than one intent or offer; give more characters")
        return found.pop()


def _by_prefix(store: Store, table: str, what: str, ref: object) -> dict[str, Any]:
    if not isinstance(ref, str):
        raise ValidationError("id", f"refer to a {what} by its id or a prefix of it")
    key = ref.strip().lower()
    if len(key) < MIN_PREFIX or len(key) > 64 or not _HEX.fullmatch(key):
        raise ValidationError("id", f"{ref!r} is not a {what} id: give its hex id or at least {MIN_PREFIX} characters")
    rows = store.query(f"SELECT * FROM {table} WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 2", [len(key), key])
    if not rows:
        raise NotFoundError(what, ref)
    if len(rows) > 1:
        raise ValidationError("id", f"{ref!r} matches more than one {what}; give more characters")
    return rows[0]


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
