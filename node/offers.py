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

The vendor side is node.offers_vendor, the person side node.offers_person, the stored offer
node.offers_model; ``Offers`` joins them with the reading both sides share.
"""

from __future__ import annotations

from typing import Any

from node.backends import NATIVE, Backend
from node.errors import NotFoundError, ValidationError
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
from node.offers_model import (  # noqa: F401 (re-exported: the shapes are part of this module's API)
    DECISION_KINDS,
    DIRECTIONS,
    MAX_PRODUCT,
    OFFER_STATUSES,
    Acceptance,
    Offer,
    _offer,
)
from node.offers_person import PersonOffers
from node.offers_vendor import VendorOffers
from node.prefix import row_by_prefix
from node.store import Clock, Store, wall_clock_ms


class Offers(VendorOffers, PersonOffers):
    """Offers over one Store: sent ones on a vendor's node, received ones on a person's."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms, backend: Backend = NATIVE) -> None:
        self._store = store
        self._clock = clock
        self._backend = backend

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
