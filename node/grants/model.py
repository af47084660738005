"""Consented access: the constants, the records (AccessRequest, Grant, AccessOutcome) and their rows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from node.envelope import Envelope
from node.nodeid import encode_node_id
from node.reasons import Reason


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
    receipt: Envelope | None  # None: the access named no grant we gave (counted, not receipted)

    @property
    def ok(self) -> bool:
        return self.reason == Reason.OK


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
