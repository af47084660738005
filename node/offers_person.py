"""The person side of offers (mixed into ``node.offers.Offers``): receiving one addressed to her, and
accepting (the deal recorded, the intent closed) or declining it.
"""

from __future__ import annotations

import json

from node import envelope
from node.agreements import Agreements
from node.blocks import Blocks
from node.envelope import Envelope
from node.errors import ConflictError, ValidationError
from node.identity import Identity
from node.intents import Intents
from node.nodeid import encode_node_id
from node.offer_bodies import check_offer_body, missing_terms, offer_terms
from node.offers_model import MAX_PRODUCT, Acceptance, Offer, _clip, _offer, _offer_row
from node.reasons import Reason
from node.records import Records


class PersonOffers:
    """``receive``, ``accept``/``accept_deal``, ``decline``; the store, clock and backend are ``Offers``'."""

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
