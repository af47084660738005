"""The vendor side of offers (mixed into ``node.offers.Offers``): making one for a lead, and learning
the person's decision, or that her intent was closed by another offer.
"""

from __future__ import annotations

from node import envelope
from node.agreements import Agreements
from node.envelope import Envelope
from node.errors import ConflictError, ValidationError
from node.identity import Identity
from node.intents import normalize_terms
from node.leads import Lead, Leads
from node.offer_bodies import check_decision_body, check_ttl, offer_body
from node.offers_model import DECISION_KINDS, Offer, _offer_row
from node.reasons import Reason


class VendorOffers:
    """``make``, ``decision_received``, ``intent_closed``; the store, clock and backend are ``Offers``'."""

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
