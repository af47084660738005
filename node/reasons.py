"""Reason codes: why an envelope (or a canonical value) was refused.

The numbers are part of the wire protocol (PROTOCOL.md, "Reason codes"): the native core returns them
as one byte per item, peers send them back for every rejected envelope, and both implementations must
give the same code for the same input. Append new codes; never renumber.

Codes 0..16 and 30 are the envelope verifier's (native core and reference alike; ``ENVELOPE_REASONS``).
Codes 17..29 are given by a node's gossip pipeline after an envelope verified: they judge what it says
(its body, its addressee, the node's own state); of those, ``Verifier.ingest`` gives DUPLICATE and, for
intents, INVALID_BODY too.
"""

from __future__ import annotations

import enum


class Reason(enum.IntEnum):
    OK = 0
    MALFORMED = 1
    NON_CANONICAL = 2
    FLOAT_FORBIDDEN = 3
    TRAILING_BYTES = 4
    TOO_DEEP = 5
    TOO_LARGE = 6
    WRONG_TYPE = 7
    MISSING_FIELD = 8
    UNKNOWN_FIELD = 9
    UNSUPPORTED_VERSION = 10
    UNKNOWN_KIND = 11
    BAD_EXPIRY = 12
    NOT_YET_VALID = 13
    EXPIRED = 14
    BAD_KEY = 15
    BAD_SIGNATURE = 16
    # -- gossip (PROTOCOL.md section 7): judged after the envelope verified --
    DUPLICATE = 17  # already held (or already decided): not an error, the sender can stop
    RATE_LIMITED = 18  # the sender exceeded the receiver's rate; try again later
    INVALID_BODY = 19  # the body breaks its kind's rules
    UNKNOWN_INTENT = 20  # the addressee never cast that intent (or never made that offer)
    WITHDRAWN = 21  # the intent was withdrawn
    BLOCKED = 22  # the person blocked this vendor
    WRONG_AUTHOR = 23  # a withdrawal or decision not by whom it must be, or with another expiry
    NOT_FOR_ROLE = 24  # a kind this node's role does not take from that sender
    # -- consented access (PROTOCOL.md, consented access): a person's node refusing a data access, and
    # the addressee of a revocation, deletion statement or pushed data refusing what it names --
    NO_GRANT = 25  # no grant this node gave (or, for a vendor, received) has that id
    NOT_GRANTEE = 26  # the grant exists, but the signer is not its grantee
    REVOKED = 27  # the grant was revoked or ended with the intent it served
    OUT_OF_SCOPE = 28  # a field asked is not among the grant's fields
    BUDGET_SPENT = 29  # the grant's uses are all spent
    # -- envelope verification, added later --
    TOO_LONG_LIVED = 30  # expires - created beyond its kind's maximum lifetime (MAX_LIFETIME_MS)
    # -- admission (PROTOCOL.md, open-network defences): retryable, the item was not looked at --
    BUSY = 31  # the receiver is over a source or global budget, or the sender is throttled; try later
    POW_REQUIRED = 32  # an unknown author under pressure: resend with a proof of work on the envelope id
    # -- offers (PROTOCOL.md section 8): judged by the addressee after the envelope verified --
    TERMS_NOT_AGREED = 33  # an offer that does not agree to every one of its intent's terms

    @property
    def label(self) -> str:
        """The name used on the wire and in messages: ``bad_signature``."""
        return self.name.lower()

    @property
    def retryable(self) -> bool:
        """Whether the sender should send the same item again later (it was not looked at). So is
        ``pow_required``: only the author can add the work, and the receiver asks for it only while
        under pressure, so a relaying node sends the same bytes again once that may have passed."""
        return self in (Reason.RATE_LIMITED, Reason.BUSY, Reason.POW_REQUIRED)

    @property
    def held(self) -> bool:
        """Whether the receiver now holds the envelope (``ok`` or ``duplicate``): resending is useless."""
        return self in (Reason.OK, Reason.DUPLICATE)

    @classmethod
    def parse(cls, value: int | str | Reason) -> Reason:
        if isinstance(value, str):
            return cls[value.upper()]
        return cls(value)


# What envelope verification (node.envelope.verify, the native Verifier and its reference) can return.
ENVELOPE_REASONS: frozenset[Reason] = frozenset(
    r for r in Reason if r <= Reason.BAD_SIGNATURE or r == Reason.TOO_LONG_LIVED
)
