"""Agreements: an accepted offer, kept as the deal both sides signed (PROTOCOL.md section 8).

An agreement is two signed envelopes: the vendor's ``offer`` (which names the intent and, from body
version 2 on, the person's terms it agrees to) and the person's ``accept`` of it (which names the
offer by id, so her signature covers the offer's every byte, terms included). The person's node makes
one when it accepts; the vendor's node makes the same one when the acceptance arrives. Both keep it,
show it and export it; its id is the acceptance's id, so the two copies are the same row.

``Agreements.record`` checks that the pair is one deal (the acceptance names the offer, its intent and
its vendor, and is signed by the offer's addressee); ``verify`` checks both signatures again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from node import envelope
from node.backends import NATIVE, Backend
from node.envelope import Envelope
from node.errors import ConflictError, ValidationError, VrmError
from node.nodeid import encode_node_id
from node.offer_bodies import check_decision_body, check_offer_body, offer_terms
from node.prefix import row_by_prefix
from node.store import Clock, Store, wall_clock_ms


@dataclass(frozen=True)
class Agreement:
    """A stored agreement. ``id`` is the acceptance's id; ``offer_raw`` and ``accept_raw`` are the two
    signed envelopes (the vendor's and the person's signatures); ``terms`` those the offer agreed to."""

    id: str
    intent_id: str
    offer_id: str
    person: str  # hex key
    vendor: str  # hex key
    vendor_name: str
    vendor_handle: str
    terms: tuple[str, ...]
    price_minor: int
    currency: str
    text: str
    made_at: int  # when the person accepted (the acceptance's created)
    expires: int  # the offer's expiry: how long its price held
    offer_raw: bytes
    accept_raw: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "intent_id": self.intent_id,
            "offer_id": self.offer_id,
            "person": self.person,
            "person_node_id": encode_node_id(bytes.fromhex(self.person)),
            "vendor": self.vendor,
            "vendor_node_id": encode_node_id(bytes.fromhex(self.vendor)),
            "vendor_name": self.vendor_name,
            "vendor_handle": self.vendor_handle,
            "terms": list(self.terms),
            "price_minor": self.price_minor,
            "currency": self.currency,
            "text": self.text,
            "made_at": self.made_at,
            "expires": self.expires,
            "offer_raw": self.offer_raw.hex(),
            "accept_raw": self.accept_raw.hex(),
        }


def _agreement(row: dict[str, Any]) -> Agreement:
    return Agreement(
        id=row["id"],
        intent_id=row["intent_id"],
        offer_id=row["offer_id"],
        person=row["person"],
        vendor=row["vendor"],
        vendor_name=row["vendor_name"],
        vendor_handle=row["vendor_handle"],
        terms=tuple(json.loads(row["terms"])),
        price_minor=row["price_minor"],
        currency=row["currency"],
        text=row["text"],
        made_at=row["made_at"],
        expires=row["expires_at"],
        offer_raw=bytes(row["offer_raw"]),
        accept_raw=bytes(row["accept_raw"]),
    )


def agreement_row(offer: Envelope, accept: Envelope) -> dict[str, Any]:
    """The ``agreements`` row of an offer and its acceptance; ValidationError unless they are one deal."""
    if offer.kind != "offer" or accept.kind != "accept":
        raise ValidationError("agreement", "an agreement is an offer and its acceptance")
    body = check_offer_body(offer.body)
    decision = check_decision_body(accept.body)
    if (
        decision["offer"] != offer.id
        or decision["intent"] != body["intent"]
        or decision["to"] != offer.author
        or accept.author != body["to"]
    ):
        raise ValidationError("agreement", "the acceptance is not the offer's addressee accepting that offer")
    return {
        "id": accept.id.hex(),
        "intent_id": body["intent"].hex(),
        "offer_id": offer.id.hex(),
        "person": accept.author.hex(),
        "vendor": offer.author.hex(),
        "vendor_name": body["vendor"]["name"],
        "vendor_handle": body["vendor"]["handle"],
        "terms": json.dumps(list(offer_terms(body))),
        "price_minor": body["price"]["money"],
        "currency": body["price"]["cur"],
        "text": body["text"],
        "made_at": accept.created,
        "expires_at": offer.expires,
        "offer_raw": offer.raw,
        "accept_raw": accept.raw,
    }


class Agreements:
    """The agreements over one Store (a person's or a vendor's)."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms, backend: Backend = NATIVE) -> None:
        self._store = store
        self._clock = clock
        self._backend = backend

    def record(self, offer: Envelope, accept: Envelope) -> Agreement:
        """Keep the agreement of ``offer`` and its ``accept`` (joins the caller's transaction). The
        same pair again is kept once; another acceptance of the same offer is a ConflictError."""
        row = agreement_row(offer, accept)
        with self._store.transaction():
            held = self._store.query_one("SELECT id FROM agreements WHERE offer_id = ?", [row["offer_id"]])
            if held is not None and held["id"] != row["id"]:
                raise ConflictError(f"offer {row['offer_id'][:12]} already has an agreement")
            if held is None:
                self._store.insert("agreements", row)
        return self.get(row["id"])

    def list(self) -> list[Agreement]:
        """Every agreement, oldest first."""
        return [_agreement(r) for r in self._store.query("SELECT * FROM agreements ORDER BY made_at, id")]

    def get(self, ref: str) -> Agreement:
        """The agreement with id ``ref`` (its acceptance's id), or the only one whose id starts with it."""
        return _agreement(row_by_prefix(self._store, "agreements", "agreement", ref))

    def for_offer(self, offer_id: str) -> Agreement | None:
        row = self._store.query_one("SELECT * FROM agreements WHERE offer_id = ?", [offer_id])
        return None if row is None else _agreement(row)

    def verify(self, agreement: Agreement) -> bool:
        """Whether both envelopes still verify (each at its own creation time: an agreement outlives the
        offer's price) and are the pair the row says."""
        try:
            offer = envelope.verify(
                agreement.offer_raw, envelope.decode(agreement.offer_raw).created,
                self._backend.Verifier(1), self._backend,
            )  # fmt: skip
            accept = envelope.verify(
                agreement.accept_raw, envelope.decode(agreement.accept_raw).created,
                self._backend.Verifier(1), self._backend,
            )  # fmt: skip
            row = agreement_row(offer, accept)
        except VrmError:  # any refusal means the pair does not prove the deal
            return False
        return _agreement(row) == agreement
