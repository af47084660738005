"""Ops of the market: a vendor's subscriptions and offers, a person's decisions on offers (accepting
closes the intent and keeps the agreement, node.offers)."""

from __future__ import annotations

from typing import Any

from app.access import sweep_grants
from app.args import Args
from app.services import SUBSCRIPTIONS, Services, require_role, sign_and_publish
from node.store import Store


async def subscriptions_add(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    text = Args("subscriptions.add", args, ("text",)).text("text")
    require_role(services, "vendor", "subscribing to intents")
    sub = await services.store.run(services.subscriptions.add, text)
    services.changed({SUBSCRIPTIONS})
    return sub.to_json()


async def subscriptions_remove(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    sub_id = Args("subscriptions.remove", args, ("id",)).integer("id")
    sub = await services.store.run(services.subscriptions.remove, sub_id)
    services.changed({SUBSCRIPTIONS})
    return sub.to_json()


async def offers_make(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    a = Args("offers.make", args, ("lead", "price_minor", "currency", "text", "ttl_ms", "terms"))
    lead_ref, price = a.ref("lead"), a.integer("price_minor")
    currency, text, ttl_ms = a.text("currency"), a.text("text"), a.integer("ttl_ms")
    terms = a.optional_strings("terms")  # None: every term of the intent
    require_role(services, "vendor", "making offers")
    home = services.home

    def make(store: Store):
        lead = services.leads.get(lead_ref)
        return services.offers.make(
            services.identity,
            lead,
            price_minor=price,
            currency=currency,
            text=text,
            ttl_ms=ttl_ms,
            handle=home.handle,
            name=home.name,
            terms=terms,
        )

    made = await sign_and_publish(services, make)
    # read again once queued: its delivery state is the outbox's, which publish just filled
    return (await services.store.run(services.offers.get, made.id)).to_json()


async def offers_accept(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """Accept an offer; unless ``keep_open``, its intent is closed (a signed withdrawal, reason
    ``fulfilled``) and the other offers on it superseded. The acceptance, the withdrawal and the
    revocations of grants the deal ends (``delete-after-use``) are published in the one transaction
    that made them."""
    a = Args("offers.accept", args, ("ref", "keep_open"))
    ref, keep_open = a.ref(), a.flag("keep_open")
    require_role(services, "person", "accepting offers")

    def work(store: Store) -> tuple[dict[str, Any], set[str]]:
        peers: set[str] = set()
        with store.transaction():
            done = services.offers.accept_deal(services.identity, ref, services.records, keep_open=keep_open)
            offer = done.offer
            revokes = services.grants.end_after_deal(
                services.identity,
                intent_id=offer.intent_id,
                offer_id=offer.id,
                vendor=offer.vendor,
                now=done.accept.created,
            )
            for env in [*done.envelopes, *revokes]:
                peers |= set(services.pipeline.publish(env) or ())
        result = offer.to_json() | {
            "intent_closed": done.withdrawal is not None,
            "withdrawal_id": None if done.withdrawal is None else done.withdrawal.id.hex(),
            "superseded": done.superseded,
            "agreement": None if done.agreement is None else done.agreement.to_json(),
            "grants_ended": len(revokes),
        }
        return result, peers

    result, peers = await services.store.run(work, services.store.store)
    if peers:
        services.changed(peers)
    if result["intent_closed"]:
        await sweep_grants(services)  # grants serving the intent end with it, now rather than at the next sweep
    return result


async def offers_decline(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = Args("offers.decline", args, ("ref",)).ref()
    require_role(services, "person", "declining offers")

    def make(store: Store):
        return services.offers.decline(services.identity, ref)

    return (await sign_and_publish(services, make)).to_json()
