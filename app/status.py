"""What `vrm status` shows of a running node: who it is, where it listens, each peer (its breaker,
failures, last success, what is queued and dead for it), the queues, the last sync, uptime.

A read model apart from the daemon (app/runtime.py gathers its inputs): ``store_counts`` runs on the
store's thread, ``report`` shapes the answer. Times are ``*_at`` (ms since the epoch); ``uptime_s`` is
seconds.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple


class StoreCounts(NamedTuple):
    peers: list[Any]
    pending: dict[str, int]
    dead: int
    dead_by_peer: dict[str, int]
    envelopes: dict[str, int]
    subscriptions: int


def store_counts(store: Any, domain: Any, outbox: Any) -> StoreCounts:
    """The store's part, in one call on its thread."""
    return StoreCounts(
        domain.peers.list(),
        outbox.pending_counts(),
        store.count("outbox_dead"),
        {r["peer"]: r["n"] for r in store.query("SELECT peer, count(*) AS n FROM outbox_dead GROUP BY peer")},
        domain.log.count_by_kind(),
        store.count("subscriptions"),
    )


def report(
    home: Any,
    counts: StoreCounts,
    deliverer: Any,
    *,
    now: int,
    urls: dict[str, str | None],
    started_at: int | None,
    uptime_s: float,
    last_sync: Any,
    discovery: list[Any],
) -> dict[str, Any]:
    stats = deliverer.stats if deliverer is not None else {}
    breakers = deliverer.breakers if deliverer is not None else {}

    def breaker(key: str) -> dict[str, Any]:
        b = breakers.get(key)
        if b is None:  # nothing sent to it in this run: nothing has failed
            return {"state": "closed", "failures": 0, "retry_at": None}
        return {"state": b.state(now).value, "failures": b.failures, "retry_at": b.retry_at(now)}

    admin_url, lan_url = urls["admin_url"], urls["ui_lan_url"]
    return {
        "node_id": home.node_id,
        "role": home.role,
        "name": home.name,
        "running": True,
        "url": urls["url"],
        "public_url": urls["public_url"],
        "admin_url": admin_url,
        "ui_url": f"{admin_url}/ui/" if admin_url else None,
        "ui_lan_url": f"{lan_url}/ui/" if lan_url else None,
        "pid": os.getpid(),
        "started_at": started_at,
        "uptime_s": uptime_s,
        "peers": [
            {
                **p.to_json(),
                "queued": counts.pending.get(p.public_key, 0),
                "dead": counts.dead_by_peer.get(p.public_key, 0),
                "delivered": stats[p.public_key].delivered if p.public_key in stats else 0,
                "delivery_failures": stats[p.public_key].failures if p.public_key in stats else 0,
                "breaker": breaker(p.public_key),
            }
            for p in counts.peers
        ],
        "queues": {"outbox": sum(counts.pending.values()), "dead": counts.dead},
        "last_sync": last_sync,
        "envelopes": counts.envelopes,
        "subscriptions": counts.subscriptions,
        "discovery": discovery,
    }
