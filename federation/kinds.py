"""Envelope kinds as the pipeline routes them, and the outbox kinds it queues under.

Gossiped kinds travel from peer to peer; direct kinds (``request``, ``grant``, ``revoke``,
``deletion``, ``receipt``) go to the key their body names as ``to`` and nowhere else, and only a node
acting in the role the kind is for takes one.
"""

from __future__ import annotations

from node.envelope import Envelope
from node.errors import ValidationError

GOSSIP_KIND = "gossip"  # the outbox kind of gossip items (and of direct envelopes, sent as items)
ACCESS_KIND = "access"  # the outbox kind of pushed access data (POST /v1/access/push)
GOSSIPED_KINDS = frozenset({"intent", "withdraw", "offer", "accept", "decline"})
ADDRESSED_KINDS = frozenset({"offer", "accept", "decline"})
# Direct kinds and the role their addressee must act as.
DIRECT_ROLES = {"request": "person", "grant": "vendor", "revoke": "vendor", "deletion": "person", "receipt": "vendor"}
DIRECT_KINDS = frozenset(DIRECT_ROLES)


def addressee(env: Envelope) -> str:
    """The hex key a direct envelope's body names as ``to``."""
    to = env.body.get("to") if isinstance(env.body, dict) else None
    if not isinstance(to, bytes) or len(to) != 32:
        raise ValidationError("to", f"a {env.kind} names its addressee in 'to' (32 bytes)")
    return to.hex()


def access_ref(grant_hex: str, version: int) -> str:
    """The outbox ref of a push of a grant's data: one delivery per (grant, version)."""
    return f"{grant_hex}:{version}"


def access_refs_of(grant_hex: str) -> str:
    """A LIKE pattern matching ``access_ref`` of every version of a grant (hex holds no wildcard)."""
    return f"{grant_hex}:%"


def grant_of(ref: str) -> str:
    """The grant (hex id) an access push's outbox ref is under."""
    return ref.split(":", 1)[0]
