"""Offers: a vendor's signed answer to a lead, and the person's signed acceptance or refusal.

The vendor side ``make``s an ``offer`` envelope for a live lead and learns the person's decision with
``decision_received``. The person side ``receive``s offers addressed to it (refused with the reason
codes of PROTOCOL.md section 8 when they are for no intent of hers, a withdrawn or expired one, leave
out one of its terms, or come from a vendor she blocked), then ``accept``s one (signing an ``accept`` envelope and recording the
purchase in her relationship records) or ``decline``s it. Bodies are checked exactly (node.offer_bodies,
re-exported here): any other shape is refused with ``invalid_body`` and changes nothing.

An offer's status is ``open``, ``accepted``, ``declined``, ``superseded`` (its intent was closed as
fulfilled by another offer) or ``expired``; expiry follows from the injected clock (an offer is dead
from the instant ``expires``). A decision carries the offer's ``expires``, so both die together.

The person's terms are part of the deal: an offer of body version 2 lists the terms of its intent the
vendor agrees to, and the person's node refuses (``terms_not_agreed``) an offer that leaves out any
term of the intent. Accepting closes the intent by default: a signed ``withdraw`` with the reason
``fulfilled`` goes out with the ``accept``, the other open offers on it become ``superseded``, and the
pair (offer, accept) is kept as an agreement (node.agreements) on both sides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from node import envelope
from node.agreements import Agreement, Agreements
from node.backends import NATIVE, Backend
from node.blocks import Blocks
from node.envelope import Envelope
from node.errors import ConflictError, NotFoundError, ValidationError
from node.identity import Identity
from node.intents import Intents, normalize_terms
from node.leads import Lead, Leads
from node.nodeid import encode_node_id
from node.offer_bodies import (  # noqa: F401 (re-exported: the bodies are part of this module's API)
    CURRENCY,
    DECISION_KEYS,
    HANDLE,
    MAX_NAME,
    MAX_TEXT,
    MAX_TTL_MS,
    MIN_TTL_MS,
    OFFER_KEYS,
    OFFER_V2_KEYS,
    OFFER_VERSION,
    check_decision_body,
    check_offer_body,
    check_ttl,
    missing_terms,
    offer_body,
    offer_terms,
)
from node.prefix import row_by_prefix
from node.reasons import Reason
from node.records import Records
from node.store import Clock, Store, wall_clock_ms

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


class Offers:
    """Offers over one Store: sent ones on a vendor's node, received ones on a person's."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms, backend: Backend = NATIVE) -> None:
        self._store = store
        self._clock = clock
        self._backend = backend

    # -- vendor side -------------------------------------------------------------------------------

    def make(
        self,
        identity: Identity,
        lead: Lead,
        *,
        price_minor: int,
        currency: str,
        text: str,
        ttl_ms: int,
        handle: str,
        name: str,
        terms: object = None,
    ) -> tuple[Offer, Envelope]:
        """Sign an ``offer`` (body version 2) for a live lead, addressed to the intent's author, and keep
        it as sent. ``terms`` are the person's terms the vendor agrees to: by default every term of the
        intent (an offer that leaves one out is refused by the person's node). It expires after
        ``ttl_ms`` or with the intent, whichever comes first (the permission to contact ends with the
        intent). ConflictError if the lead was withdrawn, closed or has expired."""
        if not isinstance(lead, Lead):
            raise ValidationError("lead", "make an offer for a lead")
        ttl_ms = check_ttl(ttl_ms)
        currency = currency.strip().upper() if isinstance(currency, str) else currency
        handle = handle.strip().lower().removeprefix("@") if isinstance(handle, str) else handle
        name = name.strip() if isinstance(name, str) else name
        if handle == "" or name == "":
            field_ = "handle" if handle == "" else "name"
            raise ValidationError(field_, "an offer names its vendor: set the node's name and handle")
        now = self._clock()
        current = Leads(self._store, clock=self._clock).get(lead.intent_id)
        agreed = normalize_terms(current.body.get("terms", ()) if terms is None else terms)
        body = offer_body(
            bytes.fromhex(lead.intent_id),
            bytes.fromhex(lead.author),
            price_minor,
            currency,
            text,
            handle,
            name,
            agreed,
        )
        if current.status != "live":
            raise ConflictError(f"lead {current.id} is {current.status}: its intent no longer takes offers")
        expires = min(now + ttl_ms, current.expires)
        signed = envelope.create(identity, "offer", body, created=now, expires=expires, backend=self._backend)
        with self._store.transaction():
            self._store.insert("offers", _offer_row(signed, "sent", now))
        return self._by_id(signed.id.hex(), now), signed

    def decision_received(self, env: Envelope) -> Reason:
        """Apply an ``accept`` or ``decline`` addressed to us to the offer we sent; an acceptance also
        keeps the agreement (the offer and the acceptance). Refusals, checked in this order:
        ``invalid_body`` (not a decision body, or naming another intent or addressee than the offer),
        ``unknown_intent`` (no offer of ours has that id), ``wrong_author`` (not signed by the offer's
        addressee, or with another expiry than the offer's), ``duplicate`` (the offer is already
        decided: the first decision stands). A superseded offer can still be accepted: the acceptance
        may arrive after the withdrawal that closed its intent."""
        if env.kind not in DECISION_KINDS:
            raise ValidationError("kind", f"{env.kind!r} is not a decision")
        try:
            body = check_decision_body(env.body)
        except ValidationError:
            return Reason.INVALID_BODY
        row = self._store.query_one(
            "SELECT * FROM offers WHERE id = ? AND direction = 'sent'", [body["offer"].hex()]
        )
        if row is None:
            return Reason.UNKNOWN_INTENT
        if body["intent"].hex() != row["intent_id"] or body["to"].hex() != row["vendor"]:
            return Reason.INVALID_BODY
        if env.author.hex() != row["person"] or env.expires != row["expires_at"]:
            return Reason.WRONG_AUTHOR
        status = "accepted" if env.kind == "accept" else "declined"
        with self._store.transaction():
            changed = self._store.execute(
                "UPDATE offers SET status = ?, decided_at = ?, decision_id = ?, decision_raw = ?"
                " WHERE id = ? AND status = 'open'",
                [status, env.created, env.id.hex(), env.raw, row["id"]],
            )
            if changed == 1 and status == "accepted":
                offer = envelope.decode(bytes(row["raw"]), self._backend)
                Agreements(self._store, clock=self._clock, backend=self._backend).record(offer, env)
        return Reason.OK if changed == 1 else Reason.DUPLICATE

    def intent_closed(self, intent_id: str, at: int) -> int:
        """A withdrawal with the reason ``fulfilled`` arrived for ``intent_id``: the person took an
        offer for it. Mark the lead closed and our open offers on it superseded (an acceptance of one
        of them that arrives later still applies); how many offers. Joins the caller's transaction."""
        with self._store.transaction():
            self._store.execute(
                "UPDATE leads SET closed_reason = 'fulfilled' WHERE intent_id = ? AND closed_reason IS NULL",
                [intent_id],
            )
            return self._store.execute(
                "UPDATE offers SET superseded_at = ? WHERE intent_id = ? AND direction = 'sent'"
                " AND status = 'open' AND superseded_at IS NULL",
                [at, intent_id],
            )

    # -- person side -------------------------------------------------------------------------------

    def receive(self, env: Envelope, *, me: bytes) -> Reason:
        """Keep an ``offer`` addressed to ``me`` (our public key) as received. Refusals, checked in this
        order: ``invalid_body``, ``unknown_intent`` (addressed to someone else, or for an intent we never
        cast), ``duplicate`` (already received), ``withdrawn`` and ``expired`` (the intent is dead now),
        ``terms_not_agreed`` (it leaves out a term of the intent), ``blocked`` (we blocked its author)."""
        if env.kind != "offer":
            raise ValidationError("kind", f"{env.kind!r} is not an offer")
        try:
            body = check_offer_body(env.body)
        except ValidationError:
            return Reason.INVALID_BODY
        me_hex = bytes(me).hex()
        intent = self._store.query_one(
            "SELECT status, expires_at, body FROM intents WHERE id = ? AND author = ?",
            [body["intent"].hex(), me_hex],
        )
        if body["to"].hex() != me_hex or intent is None:
            return Reason.UNKNOWN_INTENT
        if self._store.query_one("SELECT 1 FROM offers WHERE id = ?", [env.id.hex()]) is not None:
            return Reason.DUPLICATE
        now = self._clock()
        if intent["status"] == "withdrawn":
            return Reason.WITHDRAWN
        if intent["expires_at"] <= now:
            return Reason.EXPIRED
        if missing_terms(json.loads(intent["body"]).get("terms"), offer_terms(body)):
            return Reason.TERMS_NOT_AGREED
        if Blocks(self._store, clock=self._clock).is_blocked(env.author.hex()):
            return Reason.BLOCKED
        with self._store.transaction():
            self._store.insert("offers", _offer_row(env, "received", now))
        return Reason.OK

    def accept(
        self, identity: Identity, ref: str, records: Records | None = None, *, keep_open: bool = False
    ) -> tuple[Offer, Envelope]:
        """``accept_deal``, giving the accepted offer and the signed ``accept``."""
        done = self.accept_deal(identity, ref, records, keep_open=keep_open)
        return done.offer, done.accept

    def accept_deal(
        self, identity: Identity, ref: str, records: Records | None = None, *, keep_open: bool = False
    ) -> Acceptance:
        """Accept an open offer made to us, all in one transaction: sign an ``accept`` for its vendor;
        keep the agreement; record the deal in the relationship records (``records`` must be over this
        store; by default they are): the vendor is added if no vendor has its node id yet, then a
        purchase of the intent's text at the offer's price and a note on the timeline. Unless
        ``keep_open``, close the intent: sign a ``withdraw`` with the reason ``fulfilled`` and mark the
        other open offers on it superseded. ConflictError (and nothing changed) when the offer is not
        open, its intent is withdrawn or expired, it leaves out a term of the intent, or its vendor is
        blocked."""
        offer, signed = self._decide(identity, ref, "accept")
        records = records if records is not None else Records(self._store, clock=self._clock)
        agreements = Agreements(self._store, clock=self._clock, backend=self._backend)
        withdrawal = None
        superseded: list[str] = []
        with self._store.transaction():
            self._record_decision(offer, signed)
            agreement = agreements.record(envelope.decode(offer.raw, self._backend), signed)
            vendor_id = self._vendor_for(records, offer, signed.created)
            intent = self._store.query_one("SELECT text FROM intents WHERE id = ?", [offer.intent_id])
            product = _clip(intent["text"] if intent else offer.text, MAX_PRODUCT)
            short = offer.id[:12]
            records.add_purchase(
                vendor_id,
                product,
                price_minor=offer.price_minor,
                currency=offer.currency,
                bought_at=signed.created,
                note=f"accepted offer {short}",
            )
            records.add_note(
                vendor_id, f"Accepted offer {short}: {offer.text}", tags=("offer",), at=signed.created
            )
            if not keep_open and intent is not None:
                closed = Intents(self._store, clock=self._clock, backend=self._backend).withdraw(
                    identity, offer.intent_id, reason="fulfilled"
                )
                assert closed.withdrawal_raw is not None
                withdrawal = envelope.decode(closed.withdrawal_raw, self._backend)
                superseded = [
                    r["id"]
                    for r in self._store.query(
                        "SELECT id FROM offers WHERE intent_id = ? AND direction = 'received' AND status = 'open'"
                        " AND superseded_at IS NULL AND id != ? ORDER BY created_at, id",
                        [offer.intent_id, offer.id],
                    )
                ]
                self._store.execute(
                    "UPDATE offers SET superseded_at = ? WHERE intent_id = ? AND direction = 'received'"
                    " AND status = 'open' AND superseded_at IS NULL AND id != ?",
                    [signed.created, offer.intent_id, offer.id],
                )
        return Acceptance(self._by_id(offer.id, self._clock()), signed, withdrawal, superseded, agreement)

    def decline(self, identity: Identity, ref: str) -> tuple[Offer, Envelope]:
        """Decline an open offer made to us: sign a ``decline`` for its vendor."""
        offer, signed = self._decide(identity, ref, "decline")
        with self._store.transaction():
            self._record_decision(offer, signed)
        return self._by_id(offer.id, self._clock()), signed

    def _decide(self, identity: Identity, ref: str, kind: str) -> tuple[Offer, Envelope]:
        now = self._clock()
        offer = _offer(self._row(ref), now)
        short = offer.id[:12]
        if offer.direction != "received":
            raise ConflictError(f"offer {short} is one you made; only the person it is for can {kind} it")
        if identity.public_key.hex() != offer.person:
            raise ConflictError(f"offer {short} is addressed to another identity")
        if offer.status != "open":
            state = {"expired": "has expired", "superseded": "was superseded: you accepted another offer"}.get(
                offer.status, f"is already {offer.status}"
            )
            raise ConflictError(f"offer {short} {state}")
        if kind == "accept":
            # the intent is the permission: once it is withdrawn or expired, nothing made for it may close
            intent = self._store.query_one(
                "SELECT status, expires_at, body FROM intents WHERE id = ?", [offer.intent_id]
            )
            if intent is not None and intent["status"] == "withdrawn":
                raise ConflictError(f"offer {short} is for an intent you withdrew; it can no longer be accepted")
            if intent is not None and intent["expires_at"] <= now:
                raise ConflictError(f"offer {short} is for an intent that has expired")
            missing = missing_terms(json.loads(intent["body"]).get("terms") if intent else (), offer.terms)
            if missing:
                raise ConflictError(f"offer {short} does not agree to your terms: {', '.join(missing)}")
        if kind == "accept" and Blocks(self._store, clock=self._clock).is_blocked(offer.vendor):
            raise ConflictError(f"offer {short} is from a vendor you blocked; unblock it first")
        body = {
            "intent": bytes.fromhex(offer.intent_id),
            "offer": bytes.fromhex(offer.id),
            "to": bytes.fromhex(offer.vendor),
        }
        signed = envelope.create(
            identity, kind, body, created=now, expires=offer.expires, backend=self._backend
        )
        return offer, signed

    def _record_decision(self, offer: Offer, signed: Envelope) -> None:
        status = "accepted" if signed.kind == "accept" else "declined"
        changed = self._store.execute(
            "UPDATE offers SET status = ?, decided_at = ?, decision_id = ?, decision_raw = ?"
            " WHERE id = ? AND status = 'open'",
            [status, signed.created, signed.id.hex(), signed.raw, offer.id],
        )
        if changed != 1:
            raise ConflictError(f"offer {offer.id[:12]} was decided meanwhile")

    def _vendor_for(self, records: Records, offer: Offer, at: int) -> int:
        """The records' vendor with the offer's vendor's node id, added under its handle if there is
        none. A handle already taken by another vendor gets the node id's first characters appended, so
        no offer can slip its purchase into somebody else's relationship by claiming a handle."""
        node_id = encode_node_id(bytes.fromhex(offer.vendor))
        row = self._store.query_one("SELECT id FROM vendors WHERE node_id = ? ORDER BY id LIMIT 1", [node_id])
        if row is not None:
            return row["id"]
        handle = "@" + offer.vendor_handle
        if self._store.query_one("SELECT 1 FROM vendors WHERE handle = ?", [handle]) is not None:
            handle = f"@{offer.vendor_handle[:54]}-{node_id[4:12]}"
        return records.add_vendor(offer.vendor_name, handle=handle, node_id=node_id, started_at=at).id

    # -- reading -----------------------------------------------------------------------------------

    def list(self, *, direction: str | None = None, status: str = "open") -> list[Offer]:
        """Offers, oldest first, of one ``direction`` (``"sent"``/``"received"``, None for both) and
        ``status`` (``"open"`` by default: undecided and unexpired; ``"accepted"``, ``"declined"``,
        ``"expired"`` or ``"all"``)."""
        if status not in OFFER_STATUSES:
            raise ValidationError("status", f"{status!r} is not one of {', '.join(OFFER_STATUSES)}")
        if direction is not None and direction not in DIRECTIONS:
            raise ValidationError("direction", f"{direction!r} is not one of {', '.join(DIRECTIONS)}")
        now = self._clock()
        where, params = {
            "open": (["status = 'open'", "superseded_at IS NULL", "expires_at > ?"], [now]),
            "expired": (["status = 'open'", "superseded_at IS NULL", "expires_at <= ?"], [now]),
            "superseded": (["status = 'open'", "superseded_at IS NOT NULL"], []),
            "accepted": (["status = 'accepted'"], []),
            "declined": (["status = 'declined'"], []),
            "all": ([], []),
        }[status]
        if direction is not None:
            where, params = [*where, "direction = ?"], [*params, direction]
        sql = "SELECT * FROM offers" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._store.query(sql + " ORDER BY created_at, id", params)
        sent = [r["id"] for r in rows if r["direction"] == "sent"]
        pending, refused = self._queued(sent), self.refusals(sent)
        return [_offer(r, now, pending, refused) for r in rows]

    def get(self, ref: str) -> Offer:
        """The offer with id ``ref``, or the only one whose id starts with ``ref`` (6+ hex characters)."""
        row = self._row(ref)
        return _offer(row, self._clock(), self._queued([row["id"]]), self.refusals([row["id"]]))

    def _queued(self, offer_ids: list[str]) -> set[str]:
        """Which of these sent offers the outbox still holds a delivery of (one query per 500)."""
        found: set[str] = set()
        for chunk in _chunks(offer_ids):
            marks = ", ".join("?" for _ in chunk)
            rows = self._store.query(f"SELECT DISTINCT ref FROM outbox WHERE ref IN ({marks})", chunk)
            found |= {r["ref"] for r in rows}
        return found

    def refusals(self, offer_ids: list[str]) -> dict[str, str]:
        """The reason the addressee's node refused each of these sent offers with, where it did: the
        deliverer dead-letters such a delivery ``rejected``, ``refused: <reason>`` (``is_sent_to``)."""
        found: dict[str, str] = {}
        for chunk in _chunks(offer_ids):
            marks = ", ".join("?" for _ in chunk)
            rows = self._store.query(
                "SELECT d.ref, d.last_error FROM outbox_dead d JOIN offers o ON o.id = d.ref AND o.person = d.peer "
                f"WHERE d.ref IN ({marks}) AND d.reason = 'rejected' AND d.last_error LIKE 'refused: %' "
                "ORDER BY d.id",
                chunk,
            )
            found |= {r["ref"]: r["last_error"].removeprefix("refused: ") for r in rows}
        return found

    def is_sent_to(self, offer_id: str | None, person: str) -> bool:
        """Whether ``offer_id`` is an offer we sent to ``person`` (hex key): a refusal of its delivery
        to that peer is the person's answer, kept for ``refusals``."""
        if not offer_id:
            return False
        row = self._store.query_one(
            "SELECT 1 AS one FROM offers WHERE id = ? AND direction = 'sent' AND person = ?", [offer_id, person]
        )
        return row is not None

    def _by_id(self, offer_id: str, now: int) -> Offer:
        row = self._store.query_one("SELECT * FROM offers WHERE id = ?", [offer_id])
        if row is None:
            raise NotFoundError("offer", offer_id)
        return _offer(row, now, self._queued([offer_id]), self.refusals([offer_id]))

    def _row(self, ref: object) -> dict[str, Any]:
        return row_by_prefix(self._store, "offers", "offer", ref)


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    """``ids`` in slices a statement's parameters can hold."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]
