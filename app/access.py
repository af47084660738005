"""Ops of consented access: ``access.request``/``access.fetch`` (vendor), ``grants.approve|deny|
create|revoke`` (person) and ``vault.set|delete`` (which queue pushes for live push grants covering
the field). What they sign is a direct envelope, sent to its addressee alone (``Pipeline.publish``
sends a direct kind directly). A refused fetch raises AccessRefused with the person's node's reason.
``sweep_grants`` and ``queue_pushes`` are the daemon's periodic steps (not ops).
"""

from __future__ import annotations

from typing import Any

from app.args import Args
from app.services import Services, require_role, sign_and_publish
from node.errors import ConflictError, DeliveryError, WireError
from node.store import Store


async def access_request(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """A vendor asks a person for access to fields of her vault; the request goes to her node."""
    a = Args("access.request", args, ("person", "fields", "purpose", "duration_ms", "for"))
    person, fields, purpose = a.node_key("person"), a.strings("fields"), a.text("purpose")
    duration_ms, for_ref = a.integer("duration_ms"), a.optional_text("for")
    require_role(services, "vendor", "asking for access")

    def make(store: Store):
        return services.grants.request(
            services.identity, person, fields=fields, purpose=purpose, duration_ms=duration_ms, for_ref=for_ref
        )

    return (await sign_and_publish(services, make)).to_json()


async def access_fetch(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """A vendor fetches data under a grant it holds, from the person's node (signed request); what
    it gets is kept under the grant. AccessRefused(reason) when her node refuses."""
    a = Args("access.fetch", args, ("grant", "fields"))
    ref, fields = a.ref("grant"), a.optional_strings("fields")
    require_role(services, "vendor", "fetching granted data")
    grants = services.grants

    def find(store: Store):
        grant = grants.get(ref)
        peer = services.peers.by_key(grant.person)
        return grant, None if peer is None else peer.url

    grant, url = await services.store.run(find, services.store.store)
    if grant.direction != "received":
        raise ConflictError(f"grant {grant.id[:12]} is one you gave; a vendor fetches under grants it received")
    if url is None:
        raise ConflictError(
            f"grant {grant.id[:12]}: the person's node has no address we know; it pushes the data instead"
        )
    try:
        fetched = await services.http.fetch(url, grant.id, fields)
    except (DeliveryError, WireError) as exc:
        raise ConflictError(f"could not fetch from the person's node at {url}: {exc}") from None
    await services.store.run(grants.store_fetched, fetched.grant, fetched.values)
    return {"grant": fetched.grant, "fields": fetched.fields, "values": fetched.values}


async def grants_approve(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    a = Args("grants.approve", args, ("request", "fields", "duration_ms", "uses", "push"))
    ref, fields = a.ref("request"), a.optional_strings("fields")
    duration_ms, uses, push = a.optional_integer("duration_ms"), a.optional_integer("uses"), a.flag("push")
    require_role(services, "person", "approving access requests")

    def make(store: Store):
        return services.grants.approve(
            services.identity, ref, fields=fields, duration_ms=duration_ms, uses=uses, push=push
        )

    grant = await sign_and_publish(services, make)
    if grant.push:
        await queue_pushes(services)
    return grant.to_json()


async def grants_deny(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = Args("grants.deny", args, ("request",)).ref("request")
    require_role(services, "person", "denying access requests")
    return (await services.store.run(services.grants.deny, ref)).to_json()


async def grants_create(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """A person grants a vendor access without being asked."""
    a = Args("grants.create", args, ("vendor", "fields", "purpose", "duration_ms", "uses", "for", "push", "terms"))
    vendor, fields, purpose = a.node_key("vendor"), a.strings("fields"), a.text("purpose")
    duration_ms, uses, for_ref = a.integer("duration_ms"), a.optional_integer("uses"), a.optional_text("for")
    push, terms = a.flag("push"), a.strings("terms")
    require_role(services, "person", "granting access")

    def make(store: Store):
        return services.grants.create(
            services.identity,
            vendor,
            fields=fields,
            purpose=purpose,
            duration_ms=duration_ms,
            uses=uses,
            terms=terms,
            for_ref=for_ref,
            push=push,
        )

    grant = await sign_and_publish(services, make)
    if grant.push:
        await queue_pushes(services)
    return grant.to_json()


async def grants_revoke(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """End a grant now: every access is refused from this commit on; the signed revocation goes to
    the vendor, whose node answers with a deletion statement."""
    ref = Args("grants.revoke", args, ("ref",)).ref()
    require_role(services, "person", "revoking grants")

    def make(store: Store):
        return services.grants.revoke(services.identity, ref)

    return (await sign_and_publish(services, make)).to_json()


def _vault_entry(entry: Any) -> dict[str, Any]:
    return {
        "name": entry.name,
        "encrypted": entry.encrypted,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
    }


async def vault_set(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """Set a vault field; live push grants covering it get the new value pushed. The value never
    appears in the result (nor in a log)."""
    a = Args("vault.set", args, ("name", "value"))
    name, value = a.text("name"), a.text("value")

    def work(store: Store):
        with store.transaction():
            entry = services.vault.set(name, value)
            return entry, services.access.queue_pushes()

    entry, peers = await services.store.run(work, services.store.store)
    if peers:
        services.changed(peers)
    return _vault_entry(entry)


async def vault_delete(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    name = Args("vault.delete", args, ("name",)).text("name")

    def work(store: Store):
        with store.transaction():
            entry = services.vault.entry(name)
            services.vault.delete(name)
            return entry, services.access.queue_pushes()

    entry, peers = await services.store.run(work, services.store.store)
    if peers:
        services.changed(peers)
    return _vault_entry(entry)


async def queue_pushes(services: Services) -> int:
    """Queue the data of live push grants whose vault fields changed (sealed to each vendor); how many
    vendors got something new. Run after a vault change and at start."""
    peers = await services.store.run(services.access.queue_pushes)
    if peers:
        services.changed(peers)
    return len(peers)


async def sweep_grants(services: Services) -> dict[str, int]:
    """End what is due (person side: grants expired, spent or whose intent ended, each revoked with a
    signed revocation sent to its vendor; vendor side: data held under grants past their expiry
    deleted). Run by the daemon every few seconds and after an intent is withdrawn."""
    grants, pipeline, identity = services.grants, services.pipeline, services.identity

    def work(store: Store) -> tuple[int, int, set[str]]:
        now = services.clock()
        peers: set[str] = set()
        with store.transaction():
            revokes = grants.end_due(identity, now)
            for env in revokes:
                peers |= pipeline.publish(env)
            deleted = grants.end_expired_received(now)
        return len(revokes), len(deleted), peers

    ended, deleted, peers = await services.store.run(work, services.store.store)
    if peers:
        services.changed(peers)
    return {"ended": ended, "deleted": deleted}
