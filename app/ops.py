"""The node's write operations by name: one table for the admin API and for the CLI without a daemon.

Each op takes a ``Services`` (what it may touch) and JSON-able arguments, and returns a JSON-able
result. Bad arguments raise ValidationError before anything is written; domain refusals come from the
node/ modules (NotFoundError, ConflictError, …) unchanged, so the CLI's exit codes are the same
whether the daemon ran the op (federation.admin) or the CLI did (``app.root.direct_services``).

Everything an op signs is stored and queued for peers in one store transaction (``Pipeline.publish``),
so a crash never leaves an intent cast but not queued, or queued but not cast. Afterwards the op calls
``services.changed`` with the peers that got new deliveries (and ``"subscriptions"`` / ``"peers"`` when
those changed): the daemon wakes its deliverer, rebuilds its matcher or pulls from a new peer. In the
CLI's direct mode queued deliveries wait in the store for the next `vrm serve`.

The ops live by area: app.intents, app.peers (peers and blocks), app.market (subscriptions and
offers), app.access (access, grants, vault), app.sync.
"""

from __future__ import annotations

from typing import Any

from app import access, intents, market, peers
from app.services import Op, Services
from app.sync import sync
from node.errors import ValidationError

OPS: dict[str, Op] = {
    "intent.cast": intents.intent_cast,
    "intent.withdraw": intents.intent_withdraw,
    "peers.add": peers.peers_add,
    "peers.remove": peers.peers_remove,
    "peers.resend": peers.peers_resend,
    "subscriptions.add": market.subscriptions_add,
    "subscriptions.remove": market.subscriptions_remove,
    "offers.make": market.offers_make,
    "offers.accept": market.offers_accept,
    "offers.decline": market.offers_decline,
    "blocks.add": peers.blocks_add,
    "blocks.remove": peers.blocks_remove,
    "sync": sync,
    "access.request": access.access_request,
    "access.fetch": access.access_fetch,
    "grants.approve": access.grants_approve,
    "grants.deny": access.grants_deny,
    "grants.create": access.grants_create,
    "grants.revoke": access.grants_revoke,
    "vault.set": access.vault_set,
    "vault.delete": access.vault_delete,
}


async def run_op(services: Services, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run op ``name``; ValidationError for an unknown op or bad arguments."""
    op = OPS.get(name) if isinstance(name, str) else None
    if op is None:
        raise ValidationError("op", f"unknown operation {name!r}; one of {', '.join(sorted(OPS))}")
    return await op(services, {} if args is None else args)
