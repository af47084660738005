"""The node's write operations, one implementation for the admin API and for the CLI without a daemon.

Each op takes a ``Services`` (what it may touch) and JSON-able arguments, and returns a JSON-able
result. Bad arguments raise ValidationError before anything is written; domain refusals come from the
node/ modules (NotFoundError, ConflictError, …) unchanged, so the CLI's exit codes are the same
whether the daemon ran the op (federation.admin) or the CLI did (``direct_services``).

Everything an op signs is stored and queued for peers in one store transaction (``Pipeline.publish``),
so a crash never leaves an intent cast but not queued, or queued but not cast. Afterwards the op calls
``services.changed`` with the peers that got new deliveries (and ``"subscriptions"`` / ``"peers"`` when
those changed): the daemon wakes its deliverer, rebuilds its matcher or pulls from a new peer. In the
CLI's direct mode queued deliveries wait in the store for the next `vrm serve`.

Consented access: ``access.request``/``access.fetch`` (vendor), ``grants.approve|deny|create|revoke``
(person) and ``vault.set|delete`` (which queue pushes for live push grants covering the field). What
they sign is a direct envelope, sent to its addressee alone (``Pipeline.publish_direct``). A refused
fetch raises AccessRefused with the person's node's reason. ``sweep_grants`` and ``queue_pushes`` are
the daemon's periodic steps (not ops).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from federation.peerclient import PeerClient
from federation.pipeline import Pipeline
from node import envelope
from node.backends import NATIVE, Backend
from node.blocks import Blocks
from node.errors import ConflictError, DeliveryError, IdentityError, ValidationError, WireError
from node.home import HomeInfo
from node.identity import Identity
from node.intents import DEFAULT_TTL_MS, Intents
from node.leads import Leads
from node.nodeid import decode_node_id, is_node_id
from node.offers import Offers
from node.peers import Peer, Peers, check_url
from node.reasons import Reason
from node.records import Records
from node.store import AsyncStore, Clock, Store, wall_clock_ms
from node.subscriptions import LiveIndex, Subscriptions

SUBSCRIPTIONS = "subscriptions"  # in ``changed``: the matcher must be rebuilt
PEERS = "peers"  # in ``changed``: the peer list changed (pull from a new one, refresh URLs)
PULL_LIMIT = 1000  # items per pull page (the wire's maximum)
MAX_PAGES = 50  # pages per peer and feed in one sync, so one chatty peer cannot hold a sync forever


@dataclass
class Services:
    """What an op may touch. ``public_url`` is where peers reach this node (None: behind NAT or not
    serving), sent in the hello of ``peers.add``."""

    store: AsyncStore
    identity: Identity
    home: HomeInfo
    pipeline: Pipeline
    http: PeerClient
    clock: Clock = wall_clock_ms
    changed: Callable[[set[str]], None] = field(default=lambda _names: None)
    public_url: str | None = None
    pull_lock: trio.Lock = field(default_factory=trio.Lock)


Op = Callable[[Services, dict[str, Any]], Awaitable[dict[str, Any]]]


# -- arguments ---------------------------------------------------------------------------------------


class _Args:
    """Typed access to an op's arguments; every refusal is ValidationError naming the argument."""

    def __init__(self, op: str, args: dict[str, Any], allowed: tuple[str, ...]) -> None:
        if not isinstance(args, dict):
            raise ValidationError("args", f"{op} takes an object of arguments")
        unknown = sorted(set(args) - set(allowed))
        if unknown:
            takes = ", ".join(allowed) or "none"
            raise ValidationError(unknown[0], f"{op} takes no argument {unknown[0]!r} (it takes {takes})")
        self._args = args

    def text(self, name: str, default: str | None = None) -> str:
        value = self._args.get(name)
        if value is None:
            value = default
        if not isinstance(value, str):
            raise ValidationError(name, "must be text")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self._args.get(name)
        if value is not None and not isinstance(value, str):
            raise ValidationError(name, "must be text or null")
        return value

    def integer(self, name: str, default: int | None = None) -> int:
        value = self._args.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(name, "must be an integer")
        return value

    def ref(self, name: str = "ref") -> str:
        """An id, prefix or number, given as text or integer."""
        value = self._args.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(name, "must name the record (its id or number)")
        return value.strip()

    def strings(self, name: str) -> list[str]:
        value = self._args.get(name, [])
        if isinstance(value, str):
            return [value] if value else []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError(name, "must be a list of text")
        return value

    def optional_strings(self, name: str) -> list[str] | None:
        return None if self._args.get(name) is None else self.strings(name)

    def optional_integer(self, name: str) -> int | None:
        return None if self._args.get(name) is None else self.integer(name)

    def flag(self, name: str) -> bool:
        value = self._args.get(name, False)
        if not isinstance(value, bool):
            raise ValidationError(name, "must be true or false")
        return value

    def node_key(self, name: str) -> bytes:
        """A node named by its node id (``vrm1…``) or its 64-hex public key."""
        value = self._args.get(name)
        text = value.strip() if isinstance(value, str) else ""
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower()):
            return bytes.fromhex(text)
        try:
            return decode_node_id(text)
        except (IdentityError, ValueError):
            raise ValidationError(name, f"{value!r} is not a node id (vrm1…)") from None


# -- publishing --------------------------------------------------------------------------------------


Signed = envelope.Envelope | bytes


async def _sign_and_publish(services: Services, make: Callable[[Store], tuple[Any, Signed]]) -> Any:
    """Run ``make(store)`` (which signs and stores something) and publish its envelope in the same
    transaction; then tell the daemon which peers have something new to send."""

    def work(store: Store) -> tuple[Any, set[str]]:
        with store.transaction():
            result, signed = make(store)
            env = envelope.decode(signed) if isinstance(signed, (bytes, bytearray)) else signed
            peers = services.pipeline.publish(env)
        return result, set(peers or ())

    result, peers = await services.store.run(work, services.store.store)
    if peers:
        services.changed(peers)
    return result


def _require_role(services: Services, role: str, what: str) -> None:
    if services.home.role != role:
        raise ValidationError("role", f"{what} is for {role} nodes; this is a {services.home.role} node")


# -- intents -----------------------------------------------------------------------------------------


async def intent_cast(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    a = _Args("intent.cast", args, ("text", "ttl_ms", "terms"))
    text, ttl_ms, terms = a.text("text"), a.integer("ttl_ms", DEFAULT_TTL_MS), a.strings("terms")

    def make(store: Store):
        intents = Intents(store, clock=services.clock)
        record = intents.cast(services.identity, text, ttl_ms=ttl_ms, terms=terms)
        return record, record.raw

    return (await _sign_and_publish(services, make)).to_json()


async def intent_withdraw(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = _Args("intent.withdraw", args, ("ref",)).ref()

    def make(store: Store):
        record = Intents(store, clock=services.clock).withdraw(services.identity, ref)
        assert record.withdrawal_raw is not None
        return record, record.withdrawal_raw

    record = await _sign_and_publish(services, make)
    await sweep_grants(services)  # grants serving the intent end with it, now rather than at the next sweep
    return record.to_json()


# -- peers -------------------------------------------------------------------------------------------


async def peers_add(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """Ask the node at ``url`` who it is, pin its key (refusing another than ``node_id`` when given),
    and say hello so it knows us (and our URL, if we have one) too."""
    a = _Args("peers.add", args, ("url", "node_id"))
    url, expected = check_url(a.text("url")), a.optional_text("node_id")
    if expected is not None and not is_node_id(expected.strip()):
        raise ValidationError("node_id", f"{expected!r} is not a node id (vrm1…)")
    try:
        info = await services.http.node_info(url)
    except (DeliveryError, WireError) as exc:
        raise ConflictError(f"could not reach a vrm node at {url}: {exc}") from None
    if expected is not None and info.node_id != expected.strip().lower():
        raise ConflictError(f"the node at {url} is {info.node_id}, not the expected {expected.strip()}")
    if info.node_id == services.home.node_id:
        raise ValidationError("url", f"{url} is this node itself")
    key = decode_node_id(info.node_id)
    peers = Peers(services.store.store, clock=services.clock)
    peer = await services.store.run(
        partial(peers.add, public_key=key, url=url, role=info.role, name=info.name)
    )
    peer = await say_hello(services, peer)
    services.changed({PEERS})
    return peer.to_json()


async def say_hello(services: Services, peer: Peer) -> Peer:
    """Announce ourselves to ``peer`` (our URL, role, name); the outcome is recorded on the peer."""
    if peer.url is None:
        return peer
    peers = Peers(services.store.store, clock=services.clock)
    try:
        await services.http.hello(peer.url, services.public_url, services.home.role, services.home.name)
    except (DeliveryError, WireError) as exc:
        await services.store.run(peers.record_contact, peer.public_key, False, str(exc))
    else:
        await services.store.run(peers.record_contact, peer.public_key, True)
    return await services.store.run(peers.get, peer.public_key)


async def peers_remove(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = _Args("peers.remove", args, ("ref",)).ref()
    peer = await services.store.run(Peers(services.store.store, clock=services.clock).remove, ref)
    services.changed({PEERS})
    return peer.to_json()


# -- subscriptions -----------------------------------------------------------------------------------


async def subscriptions_add(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    text = _Args("subscriptions.add", args, ("text",)).text("text")
    _require_role(services, "vendor", "subscribing to intents")
    sub = await services.store.run(Subscriptions(services.store.store, clock=services.clock).add, text)
    services.changed({SUBSCRIPTIONS})
    return sub.to_json()


async def subscriptions_remove(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    sub_id = _Args("subscriptions.remove", args, ("id",)).integer("id")
    sub = await services.store.run(Subscriptions(services.store.store, clock=services.clock).remove, sub_id)
    services.changed({SUBSCRIPTIONS})
    return sub.to_json()


# -- offers ------------------------------------------------------------------------------------------


async def offers_make(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    a = _Args("offers.make", args, ("lead", "price_minor", "currency", "text", "ttl_ms"))
    lead_ref, price = a.ref("lead"), a.integer("price_minor")
    currency, text, ttl_ms = a.text("currency"), a.text("text"), a.integer("ttl_ms")
    _require_role(services, "vendor", "making offers")
    home = services.home

    def make(store: Store):
        lead = Leads(store, clock=services.clock).get(lead_ref)
        return Offers(store, clock=services.clock).make(
            services.identity,
            lead,
            price_minor=price,
            currency=currency,
            text=text,
            ttl_ms=ttl_ms,
            handle=home.handle,
            name=home.name,
        )

    return (await _sign_and_publish(services, make)).to_json()


async def offers_accept(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = _Args("offers.accept", args, ("ref",)).ref()
    _require_role(services, "person", "accepting offers")

    def make(store: Store):
        offers = Offers(store, clock=services.clock)
        return offers.accept(services.identity, ref, Records(store, clock=services.clock))

    return (await _sign_and_publish(services, make)).to_json()


async def offers_decline(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = _Args("offers.decline", args, ("ref",)).ref()
    _require_role(services, "person", "declining offers")

    def make(store: Store):
        return Offers(store, clock=services.clock).decline(services.identity, ref)

    return (await _sign_and_publish(services, make)).to_json()


# -- blocks ------------------------------------------------------------------------------------------


async def blocks_add(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    a = _Args("blocks.add", args, ("ref", "note"))
    ref, note = a.ref(), a.text("note", "")
    block = await services.store.run(Blocks(services.store.store, clock=services.clock).block, ref, note)
    return {"public_key": block.public_key, "node_id": block.node_id}


async def blocks_remove(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = _Args("blocks.remove", args, ("ref",)).ref()
    block = await services.store.run(Blocks(services.store.store, clock=services.clock).unblock, ref)
    return {"public_key": block.public_key, "node_id": block.node_id}


# -- sync --------------------------------------------------------------------------------------------


async def sync(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """Pull gossip and our inbox from every peer with a URL, now (all peers at once: a slow one
    delays only itself). One sync at a time, so two never race on a peer's cursors."""
    _Args("sync", args, ())
    async with services.pull_lock:
        peers = await services.store.run(Peers(services.store.store, clock=services.clock).pushable)
        received = [0] * len(peers)

        async def pull(i: int, peer: Peer) -> None:
            received[i] = await pull_peer(services, peer)

        async with trio.open_nursery() as nursery:
            for i, peer in enumerate(peers):
                nursery.start_soon(pull, i, peer)
    return {"peers": len(peers), "received": sum(received)}


async def pull_peer(services: Services, peer: Peer) -> int:
    """Pull ``peer``'s gossip and our inbox there, from the cursors we keep for it, into the pipeline.

    Returns how many items were new here. A failure (peer down, malformed answer) is recorded on the
    peer and ends this pull; the cursors only move past pages that were ingested, so nothing is lost.
    """
    assert peer.url is not None
    peers = Peers(services.store.store, clock=services.clock)
    received = 0
    try:
        for feed, cursor in (("pull", peer.pull_cursor), ("inbox", peer.inbox_cursor)):
            received += await _pull_feed(services, peers, peer, feed, cursor)
    except (DeliveryError, WireError) as exc:
        await services.store.run(peers.record_contact, peer.public_key, False, str(exc))
        return received
    await services.store.run(peers.record_contact, peer.public_key, True)
    return received


async def _pull_feed(services: Services, peers: Peers, peer: Peer, feed: str, cursor: int) -> int:
    """Page through one feed until it has nothing newer; how many items were new here."""
    fetch = services.http.pull if feed == "pull" else services.http.inbox
    received = 0
    for _ in range(MAX_PAGES):
        page = await fetch(peer.url, after=cursor, limit=PULL_LIMIT)
        if page.items:
            ingested = await services.store.run(services.pipeline.ingest, page.items, peer.public_key)
            received += sum(1 for r in ingested.reasons if r == Reason.OK)
            if ingested.peers:
                services.changed(set(ingested.peers))
        # A page may hold fewer items than asked (withdrawn intents are left out, pages are capped
        # in bytes), so only a cursor that stops moving ends the feed (never move it backwards).
        if page.next <= cursor:
            break
        cursor = page.next
        await services.store.run(partial(peers.set_cursor, peer.public_key, **{feed: cursor}))
    return received


# -- consented access --------------------------------------------------------------------------------


async def access_request(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """A vendor asks a person for access to fields of her vault; the request goes to her node."""
    a = _Args("access.request", args, ("person", "fields", "purpose", "duration_ms", "for"))
    person, fields, purpose = a.node_key("person"), a.strings("fields"), a.text("purpose")
    duration_ms, for_ref = a.integer("duration_ms"), a.optional_text("for")
    _require_role(services, "vendor", "asking for access")

    def make(store: Store):
        return services.pipeline.grants.request(
            services.identity, person, fields=fields, purpose=purpose, duration_ms=duration_ms, for_ref=for_ref
        )

    return (await _sign_and_publish(services, make)).to_json()


async def access_fetch(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """A vendor fetches data under a grant it holds, from the person's node (signed request); what
    it gets is kept under the grant. AccessRefused(reason) when her node refuses."""
    a = _Args("access.fetch", args, ("grant", "fields"))
    ref, fields = a.ref("grant"), a.optional_strings("fields")
    _require_role(services, "vendor", "fetching granted data")
    grants = services.pipeline.grants

    def find(store: Store):
        grant = grants.get(ref)
        peer = Peers(store, clock=services.clock).by_key(grant.person)
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
    a = _Args("grants.approve", args, ("request", "fields", "duration_ms", "uses", "push"))
    ref, fields = a.ref("request"), a.optional_strings("fields")
    duration_ms, uses, push = a.optional_integer("duration_ms"), a.optional_integer("uses"), a.flag("push")
    _require_role(services, "person", "approving access requests")

    def make(store: Store):
        return services.pipeline.grants.approve(
            services.identity, ref, fields=fields, duration_ms=duration_ms, uses=uses, push=push
        )

    grant = await _sign_and_publish(services, make)
    if grant.push:
        await queue_pushes(services)
    return grant.to_json()


async def grants_deny(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    ref = _Args("grants.deny", args, ("request",)).ref("request")
    _require_role(services, "person", "denying access requests")
    return (await services.store.run(services.pipeline.grants.deny, ref)).to_json()


async def grants_create(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """A person grants a vendor access without being asked."""
    a = _Args("grants.create", args, ("vendor", "fields", "purpose", "duration_ms", "uses", "for", "push", "terms"))
    vendor, fields, purpose = a.node_key("vendor"), a.strings("fields"), a.text("purpose")
    duration_ms, uses, for_ref = a.integer("duration_ms"), a.optional_integer("uses"), a.optional_text("for")
    push, terms = a.flag("push"), a.strings("terms")
    _require_role(services, "person", "granting access")

    def make(store: Store):
        return services.pipeline.grants.create(
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

    grant = await _sign_and_publish(services, make)
    if grant.push:
        await queue_pushes(services)
    return grant.to_json()


async def grants_revoke(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    """End a grant now: every access is refused from this commit on; the signed revocation goes to
    the vendor, whose node answers with a deletion statement."""
    ref = _Args("grants.revoke", args, ("ref",)).ref()
    _require_role(services, "person", "revoking grants")

    def make(store: Store):
        return services.pipeline.grants.revoke(services.identity, ref)

    return (await _sign_and_publish(services, make)).to_json()


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
    a = _Args("vault.set", args, ("name", "value"))
    name, value = a.text("name"), a.text("value")
    pipeline = services.pipeline

    def work(store: Store):
        with store.transaction():
            entry = pipeline.vault().set(name, value)
            return entry, pipeline.queue_pushes()

    entry, peers = await services.store.run(work, services.store.store)
    if peers:
        services.changed(peers)
    return _vault_entry(entry)


async def vault_delete(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    name = _Args("vault.delete", args, ("name",)).text("name")
    pipeline = services.pipeline

    def work(store: Store):
        with store.transaction():
            vault = pipeline.vault()
            entry = vault.entry(name)
            vault.delete(name)
            return entry, pipeline.queue_pushes()

    entry, peers = await services.store.run(work, services.store.store)
    if peers:
        services.changed(peers)
    return _vault_entry(entry)


async def queue_pushes(services: Services) -> int:
    """Queue the data of live push grants whose vault fields changed (sealed to each vendor); how many
    vendors got something new. Run after a vault change and at start."""
    peers = await services.store.run(services.pipeline.queue_pushes)
    if peers:
        services.changed(peers)
    return len(peers)


async def sweep_grants(services: Services) -> dict[str, int]:
    """End what is due (person side: grants expired, spent or whose intent ended, each revoked with a
    signed revocation sent to its vendor; vendor side: data held under grants past their expiry
    deleted). Run by the daemon every few seconds and after an intent is withdrawn."""
    pipeline, identity = services.pipeline, services.identity

    def work(store: Store) -> tuple[int, int, set[str]]:
        now = services.clock()
        peers: set[str] = set()
        with store.transaction():
            revokes = pipeline.grants.end_due(identity, now)
            for env in revokes:
                peers |= pipeline.publish(env)
            deleted = pipeline.grants.end_expired_received(now)
        return len(revokes), len(deleted), peers

    ended, deleted, peers = await services.store.run(work, services.store.store)
    if peers:
        services.changed(peers)
    return {"ended": ended, "deleted": deleted}


# -- dispatch ----------------------------------------------------------------------------------------

OPS: dict[str, Op] = {
    "intent.cast": intent_cast,
    "intent.withdraw": intent_withdraw,
    "peers.add": peers_add,
    "peers.remove": peers_remove,
    "subscriptions.add": subscriptions_add,
    "subscriptions.remove": subscriptions_remove,
    "offers.make": offers_make,
    "offers.accept": offers_accept,
    "offers.decline": offers_decline,
    "blocks.add": blocks_add,
    "blocks.remove": blocks_remove,
    "sync": sync,
    "access.request": access_request,
    "access.fetch": access_fetch,
    "grants.approve": grants_approve,
    "grants.deny": grants_deny,
    "grants.create": grants_create,
    "grants.revoke": grants_revoke,
    "vault.set": vault_set,
    "vault.delete": vault_delete,
}


async def run_op(services: Services, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run op ``name``; ValidationError for an unknown op or bad arguments."""
    op = OPS.get(name) if isinstance(name, str) else None
    if op is None:
        raise ValidationError("op", f"unknown operation {name!r}; one of {', '.join(sorted(OPS))}")
    return await op(services, {} if args is None else args)


# -- the CLI's services without a daemon ----------------------------------------------------------------


class IndexHolder:
    """The pipeline's subscription index: a thin delegate to node.subscriptions.LiveIndex, built from
    the store on first use and then changed in place.

    ``__call__`` runs in the store thread (inside ``Pipeline.ingest``) and first applies the changes
    announced by ``invalidate`` (callable from anywhere): no rebuild per subscribe."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms, backend: Backend = NATIVE) -> None:
        self._live = LiveIndex(store, backend=backend)

    def __call__(self) -> Any:
        return self._live()

    def invalidate(self) -> None:
        self._live.invalidate()


def build_pipeline(
    store: Store,
    home: HomeInfo,
    identity: Identity,
    *,
    clock: Clock,
    backend: Backend,
    index: IndexHolder,
    vault_key: bytes | None = None,
) -> Pipeline:
    """The node's pipeline; ``vault_key`` opens its vault (None: no passphrase, or not available)."""
    return Pipeline(
        store,
        identity.public_key,
        home.role,
        backend.Verifier(),
        index,
        clock,
        backend,
        identity=identity,
        vault_key=vault_key,
    )


@contextlib.asynccontextmanager
async def direct_services(
    home: HomeInfo,
    identity: Identity,
    *,
    clock: Clock = wall_clock_ms,
    backend: Backend = NATIVE,
    vault_key: bytes | None = None,
) -> AsyncIterator[Services]:
    """Services over the home's store for one CLI command when no daemon runs. What the op queues
    for peers stays in the store's outbox until `vrm serve` sends it. ``vault_key`` (from the
    passphrase) is needed by the vault ops of an encrypted vault."""
    astore = await AsyncStore.open(home.db_path, clock=clock)
    try:
        index = IndexHolder(astore.store, clock=clock, backend=backend)
        pipeline = build_pipeline(
            astore.store, home, identity, clock=clock, backend=backend, index=index, vault_key=vault_key
        )

        def changed(names: set[str]) -> None:
            if SUBSCRIPTIONS in names:
                index.invalidate()

        async with PeerClient(identity) as http:
            yield Services(astore, identity, home, pipeline, http, clock=clock, changed=changed)
    finally:
        await astore.aclose()
