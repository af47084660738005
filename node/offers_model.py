"""What ``node.offers`` keeps: the ``Offer`` as stored and read, its row, and an ``Acceptance``.

A stored offer's ``status`` follows from its row and the clock (``superseded`` and ``expired`` are not
stored); a sent one's ``delivery`` from the outbox and the refusals its addressee answered with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from node.agreements import Agreement
from node.envelope import Envelope
from node.nodeid import encode_node_id
from node.offer_bodies import OFFER_VERSION

DECISION_KINDS = ("accept", "decline")
OFFER_STATUSES = ("open", "accepted", "declined", "superseded", "expired", "all")
DIRECTIONS = ("sent", "received")
MAX_PRODUCT = 200  # node.records' limit for a purchase's product


@dataclass(frozen=True)
class Offer:
    """A stored offer. ``direction`` is ``sent`` (we are the vendor) or ``received`` (we are the person);
    ``vendor`` and ``person`` are hex keys, ``raw`` the signed offer, ``decision_raw`` the signed accept or
    decline once there is one."""

    id: str
    direction: str
    intent_id: str
    vendor: str
    person: str
    vendor_name: str
    vendor_handle: str  # without '@'
    price_minor: int
    currency: str
    text: str
    created: int
    expires: int
    received_at: int
    status: str  # "open" | "accepted" | "declined" | "superseded" | "expired"
    decided_at: int | None
    decision_id: str | None
    raw: bytes
    decision_raw: bytes | None = None
    terms: tuple[str, ...] = ()  # the person's terms the vendor agrees to
    version: int = 1  # the body version: 1 has no terms
    superseded_at: int | None = None
    # A sent offer's delivery state: "queued" (the outbox still holds a delivery of it), "delivered"
    # (no delivery of it waits), "refused" (the person's node answered it with a reason, kept in
    # ``refused_reason``), or its status once decided, superseded or expired. None when received.
    delivery: str | None = None
    refused_reason: str | None = None  # the reason label the person's node refused it with

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction,
            "intent_id": self.intent_id,
            "vendor": self.vendor,
            "vendor_node_id": encode_node_id(bytes.fromhex(self.vendor)),
            "person": self.person,
            "person_node_id": encode_node_id(bytes.fromhex(self.person)),
            "vendor_name": self.vendor_name,
            "vendor_handle": self.vendor_handle,
            "price_minor": self.price_minor,
            "currency": self.currency,
            "text": self.text,
            "created": self.created,
            "expires": self.expires,
            "received_at": self.received_at,
            "status": self.status,
            "decided_at": self.decided_at,
            "decision_id": self.decision_id,
            "raw": self.raw.hex(),
            "decision_raw": None if self.decision_raw is None else self.decision_raw.hex(),
            "terms": list(self.terms),
            "version": self.version,
            "superseded_at": self.superseded_at,
            "delivery": self.delivery,
            "refused_reason": self.refused_reason,
        }


# -- the store -------------------------------------------------------------------------------------


def _offer(
    row: dict[str, Any], now: int, pending: set[str] | None = None, refused: dict[str, str] | None = None
) -> Offer:
    status = row["status"]
    if status == "open" and row.get("superseded_at") is not None:
        status = "superseded"
    elif status == "open" and row["expires_at"] <= now:
        status = "expired"
    delivery = None
    refused_reason = (refused or {}).get(row["id"]) if row["direction"] == "sent" else None
    if row["direction"] == "sent":
        if status in ("accepted", "declined", "superseded"):
            delivery = status  # a decision is news even after a refusal (it came by another way)
        elif refused_reason is not None:
            delivery = "refused"  # more telling than "expired": it never reached the person
        elif status != "open":
            delivery = status
        else:
            delivery = "queued" if pending and row["id"] in pending else "delivered"
    terms = row.get("terms")
    return Offer(
        id=row["id"],
        direction=row["direction"],
        intent_id=row["intent_id"],
        vendor=row["vendor"],
        person=row["person"],
        vendor_name=row["vendor_name"],
        vendor_handle=row["vendor_handle"],
        price_minor=row["price_minor"],
        currency=row["currency"],
        text=row["text"],
        created=row["created_at"],
        expires=row["expires_at"],
        received_at=row["received_at"],
        status=status,
        decided_at=row["decided_at"],
        decision_id=row["decision_id"],
        raw=bytes(row["raw"]),
        decision_raw=None if row["decision_raw"] is None else bytes(row["decision_raw"]),
        terms=() if terms is None else tuple(json.loads(terms)),
        version=1 if terms is None else OFFER_VERSION,
        superseded_at=row.get("superseded_at"),
        delivery=delivery,
        refused_reason=refused_reason,
    )


def _offer_row(env: Envelope, direction: str, received_at: int) -> dict[str, Any]:
    body = env.body
    return {
        "id": env.id.hex(),
        "direction": direction,
        "intent_id": body["intent"].hex(),
        "vendor": env.author.hex(),
        "person": body["to"].hex(),
        "vendor_name": body["vendor"]["name"],
        "vendor_handle": body["vendor"]["handle"],
        "price_minor": body["price"]["money"],
        "currency": body["price"]["cur"],
        "text": body["text"],
        "raw": env.raw,
        "created_at": env.created,
        "expires_at": env.expires,
        "received_at": received_at,
        "status": "open",
        "terms": json.dumps(body["terms"]) if "v" in body else None,
    }


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


@dataclass(frozen=True)
class Acceptance:
    """What accepting an offer made: the offer now accepted, the signed ``accept``, the signed
    ``withdraw`` (reason ``fulfilled``) that closed its intent (None with ``keep_open``), the other
    offers on the intent it superseded, and the agreement kept."""

    offer: Offer
    accept: Envelope
    withdrawal: Envelope | None
    superseded: list[str] = field(default_factory=list)  # offer ids
    agreement: Agreement | None = None

    @property
    def envelopes(self) -> list[Envelope]:
        """What to publish, in order: the acceptance first, then the withdrawal."""
        return [self.accept] if self.withdrawal is None else [self.accept, self.withdrawal]
