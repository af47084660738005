"""Ops of the market: a vendor's subscriptions and offers, a person's decisions on offers."""

from __future__ import annotations

from typing import Any

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
    a = Args("offers.make", args, ("lead", "price_minor", "currency", "text", "ttl_ms"))
    lead_ref, price = a.ref("lead"), a.integer("price_minor")
    currency, text, ttl_ms = a.text("currency"), a.text("text"), a.integer("ttl_ms")
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
        )

    return (await sign_and_publish(services, make)).to_json()


async def offers_accept(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = Args("offers.accept", args, ("ref",)).ref()
    require_role(services, "person", "accepting offers")

    def make(store: Store):
        return services.offers.accept(services.identity, ref, services.records)

    return (await sign_and_publish(services, make)).to_json()


async def offers_decline(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = Args("offers.decline", args, ("ref",)).ref()
    require_role(services, "person", "declining offers")

    def make(store: Store):
        return services.offers.decline(services.identity, ref)

    return (await sign_and_publish(services, make)).to_json()
