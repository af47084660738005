"""What each page shows, read from the store (run on its thread through the ``read`` callable).

Every function takes the store first and returns plain data for a template. They use the node/
modules' list and show functions (what the CLI prints), never write.
"""

from __future__ import annotations

from typing import Any

from node.backends import NATIVE
from node.errors import NotFoundError
from node.grants import Grants
from node.intents import Intents
from node.leads import Leads
from node.nodeid import encode_node_id
from node.offers import Offers
from node.peers import Peers
from node.scores import Scores
from node.receipts import Receipts
from node.records import Records
from node.scorecard import Scorecard, scorecard, scorecards
from node.search import search
from node.store import Clock, Store
from node.subscriptions import Subscriptions, parse_subscription
from node.trends import trends
from node.vault import Vault


def node_id_of(key_hex: str) -> str:
    try:
        return encode_node_id(bytes.fromhex(key_hex))
    except ValueError:
        return key_hex


def _vendor_by_node(store: Store, clock: Clock) -> dict[str, Any]:
    """node id -> vendor record, for the vendors she has a node id of."""
    return {v.node_id: v for v in Records(store, clock=clock).list_vendors(status="all") if v.node_id}


def _history(store: Store, clock: Clock, vendor: Any) -> dict[str, Any]:
    """What her own records say of one vendor: the side of an offer comparison."""
    if vendor is None:
        return {"known": False}
    records = Records(store, clock=clock)
    card: Scorecard = scorecard(store, vendor.id)
    purchases = records.list_purchases(vendor.id)
    return {
        "known": True,
        "vendor": vendor,
        "card": card,
        "purchases": len(purchases),
        "spent": _spent(purchases),
    }


def _spent(purchases: list[Any]) -> str:
    totals: dict[str, int] = {}
    for p in purchases:
        if p.price_minor is not None and p.currency:
            totals[p.currency] = totals.get(p.currency, 0) + p.price_minor
    return ", ".join(f"{amount / 100:.2f} {cur}" for cur, amount in sorted(totals.items())) or "-"


# -- the person's pages ------------------------------------------------------------------------------


def home(store: Store, clock: Clock) -> dict[str, Any]:
    return {
        "offers": Offers(store, clock=clock).list(direction="received", status="open"),
        "requests": Grants(store, clock=clock).pending(),
        "intents": Intents(store, clock=clock).list(status="live"),
        "receipts": list(reversed(Receipts(store, clock=clock).list()))[:5],
        "now": clock(),
    }


def intents(store: Store, clock: Clock) -> dict[str, Any]:
    return {"intents": Intents(store, clock=clock).list(status="all")[::-1], "now": clock()}


def offers(store: Store, clock: Clock, status: str) -> dict[str, Any]:
    """Offers grouped by intent, each beside her records of its vendor."""
    known = _vendor_by_node(store, clock)
    all_intents = {i.id: i for i in Intents(store, clock=clock).list(status="all")}
    groups: dict[str, dict[str, Any]] = {}
    histories: dict[str, dict[str, Any]] = {}
    for offer in Offers(store, clock=clock).list(direction="received", status=status):
        vendor_id = node_id_of(offer.vendor)
        if vendor_id not in histories:
            histories[vendor_id] = _history(store, clock, known.get(vendor_id))
        intent = all_intents.get(offer.intent_id)
        group = groups.setdefault(offer.intent_id, {"intent": intent, "rows": []})
        group["rows"].append({"offer": offer, "history": histories[vendor_id], "vendor_node_id": vendor_id})
    for group in groups.values():
        group["rows"].sort(key=lambda row: (row["offer"].currency, row["offer"].price_minor))
    return {"groups": list(groups.values()), "status": status, "now": clock()}


def vendors(store: Store, clock: Clock) -> dict[str, Any]:
    cards = {c.vendor_id: c for c in scorecards(store, status="all")}
    rows = Records(store, clock=clock).list_vendors(status="all")
    return {"vendors": [{"vendor": v, "card": cards.get(v.id)} for v in rows]}


def vendor(store: Store, clock: Clock, ref: str) -> dict[str, Any]:
    records = Records(store, clock=clock)
    v = records.get_vendor(ref)
    issues = records.list_issues(v.id)
    return {
        "vendor": v,
        "card": scorecard(store, v.id),
        "timeline": records.timeline(v.id),
        "notes": records.list_notes(v.id),
        "purchases": records.list_purchases(v.id),
        "issues": issues,
        "ratings": records.list_ratings(v.id),
        "recommendations": records.list_recommendations(v.id),
    }


def find(store: Store, clock: Clock, query: str) -> dict[str, Any]:
    del clock
    return {"hits": search(store, query, literal=True, limit=50, mark=("\x02", "\x03")), "query": query}


def vault(store: Store, clock: Clock) -> dict[str, Any]:
    return {"entries": Vault(store, None, clock=clock).list()}


def vault_value(store: Store, key: bytes | None, name: str) -> str:
    return Vault(store, key).get(name)


def access(store: Store, clock: Clock) -> dict[str, Any]:
    grants = Grants(store, clock=clock)
    receipts = Receipts(store, clock=clock)
    given = grants.list(direction="given", status="all")[::-1]
    return {
        "requests": grants.pending(),
        "grants": [{"grant": g, "check": _state(grants, g, clock)} for g in given],
        "receipts": receipts.list()[::-1],
        "now": clock(),
    }


def verify_receipts(store: Store, clock: Clock, public_key: bytes) -> Any:
    return Receipts(store, clock=clock).verify(public_key)


def export_receipts(store: Store, clock: Clock) -> dict[str, Any]:
    return Receipts(store, clock=clock).export()


def _state(grants: Grants, grant: Any, clock: Clock) -> str:
    if grant.status != "live":
        return f"ended ({grant.end_reason})" if grant.end_reason else grant.status
    if grant.expires <= clock():
        return "expired"
    if grant.uses_allowed is not None and grant.uses_spent >= grant.uses_allowed:
        return "spent"
    return "live"


def peers(store: Store, clock: Clock) -> dict[str, Any]:
    dead = {row["peer"]: row["n"] for row in store.query("SELECT peer, count(*) AS n FROM outbox_dead GROUP BY peer")}
    queued = {row["peer"]: row["n"] for row in store.query("SELECT peer, count(*) AS n FROM outbox GROUP BY peer")}
    rows = Peers(store, clock=clock).list()
    now = clock()
    scores = Scores(store)
    return {
        "peers": [
            {
                "peer": p,
                "dead": dead.get(p.public_key, 0),
                "queued": queued.get(p.public_key, 0),
                "standing": scores.get(p.public_key).to_json(now),  # its score, state and why
            }
            for p in rows
        ]
    }


# -- a vendor's pages --------------------------------------------------------------------------------


def leads(store: Store, clock: Clock) -> dict[str, Any]:
    sent = {o.intent_id for o in Offers(store, clock=clock).list(direction="sent", status="all")}
    rows = Leads(store, clock=clock).list(status="live")[::-1]
    return {"leads": [{"lead": lead, "offered": lead.intent_id in sent} for lead in rows], "now": clock()}


def lead(store: Store, clock: Clock, ref: str) -> Any:
    return Leads(store, clock=clock).get(ref)


def offers_sent(store: Store, clock: Clock) -> dict[str, Any]:
    """The vendor's sent offers, newest first, each with its delivery as the outbox says it. Offers are
    queued as gossip (outbox kind ``gossip``, ref the offer id), so they are found by ref; a dead
    letter counts only for the person it was addressed to (a relay's is not hers)."""
    offers = Offers(store, clock=clock).list(direction="sent", status="all")[::-1]
    queued: dict[str, dict[str, Any]] = {}
    dead: dict[tuple[str, str], dict[str, Any]] = {}
    ids = [offer.id for offer in offers]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in store.query(
            f"SELECT ref, max(attempts) AS attempts, max(last_error) AS last_error FROM outbox "
            f"WHERE ref IN ({marks}) GROUP BY ref",
            chunk,
        ):
            queued[row["ref"]] = row
        for row in store.query(f"SELECT ref, peer, reason FROM outbox_dead WHERE ref IN ({marks}) ORDER BY id", chunk):
            dead[(row["ref"], row["peer"])] = row
    rows = []
    for offer in offers:
        if offer.delivery == "refused":
            delivery = f"refused ({offer.refused_reason})"
        elif (offer.id, offer.person) in dead:
            delivery = f"not delivered ({dead[(offer.id, offer.person)]['reason']})"
        elif offer.id in queued:
            q = queued[offer.id]
            delivery = "queued" + (f", {q['attempts']} tries: {q['last_error']}" if q["attempts"] else "")
        else:
            delivery = "delivered"
        rows.append({"offer": offer, "delivery": delivery, "person": node_id_of(offer.person)})
    return {"offers": rows, "now": clock()}


def subscriptions(store: Store, clock: Clock) -> dict[str, Any]:
    subs = Subscriptions(store, clock=clock).list()
    live = Leads(store, clock=clock).list(status="all")
    counts = {s.id: sum(s.id in lead.subscription_ids for lead in live) for s in subs}
    return {"subscriptions": [{"sub": s, "matched": counts[s.id]} for s in subs]}


def subscription_preview(store: Store, clock: Clock, text: str) -> dict[str, Any]:
    """What a subscription's text says and which intents this node has heard it would match."""
    from node.subscriptions import SubscriptionIndex

    parsed = parse_subscription(text)
    index = SubscriptionIndex.from_parsed([(1, parsed)])
    rows = Leads(store, clock=clock).list(status="all")
    bodies = [NATIVE.encode(lead.body) for lead in rows]
    hits = index.match_bodies(bodies) if bodies else []
    matched = [lead.text for lead, ids in zip(rows, hits, strict=True) if ids][:10]
    return {
        "tokens": list(parsed.tokens),
        "tags": list(parsed.tags),
        "handles": list(parsed.handles),
        "constraints": parsed.constraints,
        "comparisons": [f"{c.key} {c.op} {_value(c.value)}" for c in parsed.comparisons],
        "matches": matched,
        "heard": len(rows),
    }


def _value(value: dict[str, Any]) -> str:
    if "money" in value:
        return f"{value['money'] / 100:g} {value.get('cur', '')}".strip()
    return str(next(iter(value.values()), ""))


def trend_rows(store: Store, clock: Clock, window_ms: int, near: str | None) -> list[dict[str, Any]]:
    return trends(store, now=clock(), window_ms=window_ms, near=near, limit=20)


def access_held(store: Store, clock: Clock) -> dict[str, Any]:
    grants = Grants(store, clock=clock)
    rows = []
    for g in grants.list(direction="received", status="all")[::-1]:
        rows.append({"grant": g, "held": grants.held_names(g.id), "person": node_id_of(g.person)})
    requests = grants.requests(direction="sent")[::-1]
    return {"grants": rows, "requests": requests, "now": clock()}


def not_found(kind: str, key: str) -> NotFoundError:
    return NotFoundError(kind, key)
