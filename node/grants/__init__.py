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

The package: ``model`` (constants, records, rows), ``bodies`` (the exact body checks), ``base``
(reading and resolving refs, shared), ``vendor`` and ``person`` (each side's methods); ``Grants``
joins both sides.
"""

from __future__ import annotations

from node.grants.bodies import (
    check_deletion_body,
    check_fields,
    check_grant_body,
    check_purpose,
    check_request_body,
    check_revoke_body,
    field_list,
)
from node.grants.model import (
    DELETION_KEYS,
    DELETION_TTL_MS,
    END_REASONS,
    GRANT_KEYS,
    GRANT_STATUSES,
    MAX_DURATION_MS,
    MAX_FIELDS,
    MAX_PURPOSE,
    MAX_USES,
    MIN_DURATION_MS,
    REQUEST_KEYS,
    REQUEST_STATUSES,
    REQUEST_TTL_MS,
    REVOKE_KEYS,
    REVOKE_TTL_MS,
    AccessOutcome,
    AccessRequest,
    Grant,
)
from node.grants.person import PersonSide
from node.grants.vendor import VendorSide

__all__ = [
    "DELETION_KEYS",
    "DELETION_TTL_MS",
    "END_REASONS",
    "GRANT_KEYS",
    "GRANT_STATUSES",
    "MAX_DURATION_MS",
    "MAX_FIELDS",
    "MAX_PURPOSE",
    "MAX_USES",
    "MIN_DURATION_MS",
    "REQUEST_KEYS",
    "REQUEST_STATUSES",
    "REQUEST_TTL_MS",
    "REVOKE_KEYS",
    "REVOKE_TTL_MS",
    "AccessOutcome",
    "AccessRequest",
    "Grant",
    "Grants",
    "check_deletion_body",
    "check_fields",
    "check_grant_body",
    "check_purpose",
    "check_request_body",
    "check_revoke_body",
    "field_list",
]


class Grants(VendorSide, PersonSide):
    """Requests and grants over one Store, on a vendor's node or a person's (node.grants.vendor,
    node.grants.person; the records in node.grants.model, the body checks in node.grants.bodies)."""
