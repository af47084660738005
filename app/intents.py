"""Ops on this person's intents: cast one, withdraw one."""

from __future__ import annotations

from typing import Any

from app.access import sweep_grants
from app.args import Args
from app.services import Services, sign_and_publish
from node.intents import DEFAULT_TTL_MS
from node.store import Store


async def intent_cast(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    a = Args("intent.cast", args, ("text", "ttl_ms", "terms"))
    text, ttl_ms, terms = a.text("text"), a.integer("ttl_ms", DEFAULT_TTL_MS), a.strings("terms")

    def make(store: Store):
        record = services.intents.cast(services.identity, text, ttl_ms=ttl_ms, terms=terms)
        return record, record.raw

    return (await sign_and_publish(services, make)).to_json()


async def intent_withdraw(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = Args("intent.withdraw", args, ("ref",)).ref()

    def make(store: Store):
        record = services.intents.withdraw(services.identity, ref)
        assert record.withdrawal_raw is not None
        return record, record.withdrawal_raw

    record = await sign_and_publish(services, make)
    await sweep_grants(services)  # grants serving the intent end with it, now rather than at the next sweep
    return record.to_json()
