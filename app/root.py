"""The composition root: every service of a node is built here, once, and handed to what uses it.

- ``build_domain``: the domain services over one Store (node/: log, peers, leads, offers, grants,
  receipts, intents, records, subscriptions, blocks, the vault opened with its key);
- ``build_core``: the node's federation side over them (ONE outbox, the subscription index holder,
  the judge, the pipeline, consented access, pull pages);
- ``direct_services``: the ops' ``Services`` for one CLI command when no daemon runs;
- ``build_daemon`` and ``start_servers``: what ``app.runtime.NodeRuntime`` runs (the outbox with the
  daemon's retry policy, its deliverer, the signed peer client, the ops' ``Services``, the
  federation app and the admin app on their servers);
- ``build_discovery``: peer exchange and LAN candidates, verified before they are added as peers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import trio

from app.peers import say_hello
from app.services import PEERS, SUBSCRIPTIONS, Services
from federation import defences
from federation.access import Access
from federation.admin import RunOp, Status, create_admin_app
from federation.app import federation_app
from federation.backoff import Backoff
from federation.breaker import CircuitBreaker
from federation.delivery import Deliverer
from federation.egress import GuardedTransport, private_peers_allowed
from federation.judge import Judge
from federation.limits import Limits
from federation.outbox import Outbox
from federation.pages import Pages
from federation.catchup import CatchUp
from federation.peerclient import PeerClient
from federation.pipeline import MatcherIndex, Pipeline
from federation import wire
from federation.auth import SignatureAuth
from federation.discovery import Candidate
from federation.peerexchange import Discovery
from federation.scoring import PeerScoring
from federation.plumtree import Timers
from federation.tree import LIVE_TIMERS, TreeRelay
from federation.server import TLSFiles, serve
from node.backends import NATIVE, Backend, VerifierLike
from node.blocks import Blocks
from node.config import load as load_config
from node.errors import ConflictError, ValidationError
from node.gossiplog import GossipLog
from node.grants import Grants
from node.home import HomeInfo
from node.identity import Identity
from node.intents import Intents
from node.leads import Leads
from node.offers import Offers
from node.nodeid import decode_node_id
from node.peers import Peers
from node.receipts import Receipts
from node.records import Records
from node.store import AsyncStore, Clock, Store, wall_clock_ms
from node.subscriptions import LiveIndex, Subscriptions
from node.vault import Vault


@dataclass(frozen=True)
class Domain:
    """The domain services over one Store."""

    store: Store
    clock: Clock
    backend: Backend
    log: GossipLog
    peers: Peers
    leads: Leads
    offers: Offers
    grants: Grants
    receipts: Receipts
    intents: Intents
    records: Records
    subscriptions: Subscriptions
    index: LiveIndex  # the vendor's matcher index, changed in place after each subscribe
    blocks: Blocks
    vault: Vault


def build_domain(
    store: Store, *, clock: Clock = wall_clock_ms, backend: Backend = NATIVE, vault_key: bytes | None = None
) -> Domain:
    """``vault_key`` opens the vault (None: no passphrase, or not available)."""
    index = LiveIndex(store, backend=backend)
    return Domain(
        store=store,
        clock=clock,
        backend=backend,
        log=GossipLog(store, clock=clock),
        peers=Peers(store, clock=clock),
        leads=Leads(store, clock=clock),
        offers=Offers(store, clock=clock, backend=backend),
        grants=Grants(store, clock=clock, backend=backend, held_key=vault_key),
        receipts=Receipts(store, clock=clock, backend=backend),
        intents=Intents(store, clock=clock, backend=backend),
        records=Records(store, clock=clock),
        subscriptions=Subscriptions(store, clock=clock, backend=backend, live=index),
        index=index,
        blocks=Blocks(store, clock=clock),
        vault=Vault(store, vault_key, clock=clock),
    )


@dataclass(frozen=True)
class Core:
    """A node's federation side over its domain (what runs in the store's thread)."""

    domain: Domain
    outbox: Outbox
    index: Callable[[], MatcherIndex | None] | None  # the domain's LiveIndex unless one was given
    pipeline: Pipeline
    access: Access
    pages: Pages
    catchup: CatchUp  # the reconciliation set and fetch-by-ids (POST /v1/reconcile, /v1/gossip/ids)
    relay: TreeRelay | None = None  # Plumtree (a running node's); None: flooding with the hop limit


def build_core(
    store: Store,
    public_key: bytes,
    role: str,
    verifier: VerifierLike | None = None,
    index: Callable[[], MatcherIndex | None] | None = None,
    clock: Clock = wall_clock_ms,
    backend: Backend = NATIVE,
    *,
    outbox: Outbox | None = None,
    backoff: Backoff = Backoff(),
    max_attempts: int = 20,
    identity: Identity | None = None,
    vault_key: bytes | None = None,
    tree: Timers | None = None,
) -> Core:
    """The pipeline, access and pages of the node ``public_key`` acting as ``role``.

    ``index`` returns the vendor's compiled SubscriptionIndex (default: the domain's LiveIndex over the
    store's subscriptions). ``identity`` (this node's, matching ``public_key``) signs what the node
    answers by itself (deletion statements, receipts) and opens data sealed to it; without it those
    kinds are refused ``not_for_role``. The outbox is the one queue the pipeline and access fill
    and the deliverer empties: built here with the retry policy ``backoff``/``max_attempts``
    unless ``outbox`` is given (a simulation's own). ``tree`` (its timers) makes the pipeline relay
    by Plumtree (``federation.tree``) instead of flooding; a daemon's timer task drives it."""
    if identity is not None and identity.public_key != bytes(public_key):
        raise ValidationError("identity", "the pipeline's identity must be the node's key")
    domain = build_domain(store, clock=clock, backend=backend, vault_key=vault_key)
    outbox = outbox if outbox is not None else Outbox(store, backoff=backoff, max_attempts=max_attempts)
    index = index if index is not None else domain.index
    relay = TreeRelay(store=store, outbox=outbox, clock=clock, timers=tree) if tree is not None else None
    judge = Judge(
        me=bytes(public_key).hex(),
        role=role,
        identity=identity,
        log=domain.log,
        offers=domain.offers,
        grants=domain.grants,
        receipts=domain.receipts,
        backend=backend,
    )
    pipeline = Pipeline(
        store=store,
        role=role,
        verifier=verifier if verifier is not None else backend.Verifier(),
        judge=judge,
        index=index,
        log=domain.log,
        peers=domain.peers,
        leads=domain.leads,
        outbox=outbox,
        clock=clock,
        backend=backend,
        relay=relay,
    )
    access = Access(
        store=store,
        identity=identity,
        grants=domain.grants,
        receipts=domain.receipts,
        vault=domain.vault,
        outbox=outbox,
        publish_direct=pipeline.publish_direct,
        clock=clock,
        backend=backend,
    )
    catchup = CatchUp(store, clock=clock, backend=backend)
    return Core(domain, outbox, index, pipeline, access, Pages(store, domain.log), catchup, relay)


def services_of(
    astore: AsyncStore,
    core: Core,
    home: HomeInfo,
    identity: Identity,
    http: PeerClient,
    *,
    changed: Callable[[set[str]], None],
) -> Services:
    d = core.domain
    return Services(
        store=astore,
        identity=identity,
        home=home,
        pipeline=core.pipeline,
        access=core.access,
        outbox=core.outbox,
        log=d.log,
        http=http,
        catchup=core.catchup,
        intents=d.intents,
        peers=d.peers,
        subscriptions=d.subscriptions,
        leads=d.leads,
        offers=d.offers,
        records=d.records,
        blocks=d.blocks,
        grants=d.grants,
        vault=d.vault,
        clock=d.clock,
        changed=changed,
    )


def federation_app_for(
    store: AsyncStore, core: Core, *, node_id: str, role: str, name: str = "", **options: Any
) -> Any:
    """The federation app over ``core`` (``options`` go to ``federation.app.federation_app``)."""
    return federation_app(
        store=store,
        pipeline=core.pipeline,
        pages=core.pages,
        access=core.access,
        peers=core.domain.peers,
        node_id=node_id,
        role=role,
        name=name,
        **{"catchup": core.catchup, "tree": core.relay, **options},
    )


# -- the CLI without a daemon ----------------------------------------------------------------------


async def open_store(home: HomeInfo, *, clock: Clock, url: str | None = None) -> AsyncStore:
    """The home's SQLite store, or with ``url`` a vendor fleet's PostgreSQL database (fleet/)."""
    if url is None:
        return await AsyncStore.open(home.db_path, clock=clock)
    from fleet.pgstore import PgStore  # psycopg is the optional [fleet] extra

    store = await trio.to_thread.run_sync(partial(PgStore, url, clock=clock))
    return AsyncStore(store, trio.CapacityLimiter(1))  # type: ignore[arg-type]


def allows_private_peers(home: HomeInfo) -> bool:
    """Whether the home's peers may be on private addresses, as its daemon judges it (node.toml's
    ``federation.allow_private_peers``, or a ``server.host`` that is not global)."""
    settings = load_config(home.path)
    return private_peers_allowed(bool(settings.get("federation.allow_private_peers")), settings.get("server.host"))


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
    from fleet.home import store_url

    astore = await open_store(home, clock=clock, url=store_url(home))
    try:
        core = build_core(
            astore.store,
            identity.public_key,
            home.role,
            clock=clock,
            backend=backend,
            identity=identity,
            vault_key=vault_key,
        )
        index = core.index

        def changed(names: set[str]) -> None:
            if SUBSCRIPTIONS in names and isinstance(index, LiveIndex):
                index.invalidate()

        # The peers this command may dial are judged as the node's daemon judges them (federation.egress).
        guarded = GuardedTransport(allow_private=allows_private_peers(home))
        async with httpx.AsyncClient(transport=guarded) as client:
            yield services_of(astore, core, home, identity, PeerClient(identity, client), changed=changed)
    finally:
        await astore.aclose()


# -- the daemon --------------------------------------------------------------------------------------


@dataclass
class Daemon:
    """What the root built for a running node (``app.runtime.NodeRuntime``)."""

    core: Core
    index: LiveIndex
    deliverer: Deliverer
    services: Services

    @property
    def outbox(self) -> Outbox:
        return self.core.outbox


def build_daemon(
    astore: AsyncStore,
    home: HomeInfo,
    identity: Identity,
    client: httpx.AsyncClient,
    *,
    endpoint: Callable[[str, str], str | None],
    changed: Callable[[set[str]], None],
    clock: Clock,
    backend: Backend,
    vault_key: bytes | None,
    backoff: Backoff,
    max_attempts: int,
    request_timeout: float,
    new_breaker: Callable[[], CircuitBreaker],
    outbox: Outbox | None = None,
    tree: Timers | None = LIVE_TIMERS,
) -> Daemon:
    """A running node's services over ``astore``; ``client`` is the one signed connection pool for
    pushes, pulls and hellos; ``endpoint(peer, kind)`` is where a delivery goes (None: not now);
    ``outbox`` replaces the store's own (a fleet listener's claiming outbox); ``tree`` the Plumtree
    timers (None: the node floods, as a node without plumtree/1 does)."""
    core = build_core(
        astore.store,
        identity.public_key,
        home.role,
        clock=clock,
        backend=backend,
        backoff=backoff,
        max_attempts=max_attempts,
        identity=identity,
        vault_key=vault_key,
        outbox=outbox,
        tree=tree,
    )
    assert isinstance(core.index, LiveIndex)
    deliverer = Deliverer(
        astore, core.outbox, client, endpoint, clock=clock, timeout=request_timeout, new_breaker=new_breaker
    )
    http = PeerClient(identity, client, request_timeout, backend=backend)
    services = services_of(astore, core, home, identity, http, changed=changed)
    return Daemon(core, core.index, deliverer, services)


@dataclass(frozen=True)
class Listening:
    url: str
    admin_url: str


async def start_servers(
    nursery: trio.Nursery,
    daemon: Daemon,
    home: HomeInfo,
    *,
    token: str,
    run_op: RunOp,
    status: Status,
    on_ingest: Callable[[frozenset[str]], None],
    on_hello: Callable[[str], Awaitable[None]],
    host: str,
    port: int,
    admin_port: int,
    shutdown_trigger: Callable[[], Any],
    graceful_timeout: float,
    app_options: dict[str, Any],
    limits: Any = None,
    clock: Clock = wall_clock_ms,
    ui: Any = None,
    tls: TLSFiles | None = None,
) -> Listening:
    """The federation app on ``host:port`` and the admin app on 127.0.0.1 only, started in
    ``nursery``; their URLs once both listen."""
    fed_app = federation_app_for(
        daemon.services.store,
        daemon.core,
        node_id=home.node_id,
        role=home.role,
        name=home.name,
        on_ingest=on_ingest,
        on_hello=on_hello,
        clock=clock,
        **app_options,
    )
    # outermost: every connection's limits, its refusals in the same operator log as the app's
    limits = limits or Limits()
    fed_app = defences.bounded(fed_app, {"limits": limits, "events": app_options.get("events"),
                                         "trusted_proxies": app_options.get("trusted_proxies", frozenset())})  # fmt: skip
    admin_app = create_admin_app(token=token, run_op=run_op, status=status, ui=ui)
    bound = await nursery.start(
        partial(
            serve,
            fed_app,
            host=host,
            port=port,
            shutdown_trigger=shutdown_trigger,
            graceful_timeout=graceful_timeout,
            tls=tls,
            limits=limits,  # Hypercorn's header and read deadlines match the body limits
        )
    )
    admin = await nursery.start(
        partial(
            serve,
            admin_app,
            host="127.0.0.1",
            port=admin_port,
            shutdown_trigger=shutdown_trigger,
            graceful_timeout=graceful_timeout,
        )
    )
    return Listening(bound.url, admin.url)


# -- discovery ---------------------------------------------------------------------------------------


def build_discovery(
    daemon: Daemon,
    client: httpx.AsyncClient,
    identity: Identity,
    home: HomeInfo,
    *,
    allow_private: bool,
    max_peers: int,
    scoring: PeerScoring | None,
    clock: Clock,
) -> Discovery:
    """Peer exchange and LAN candidates (federation/peerexchange.py); a verified one is added as a
    peer like `vrm peers add` does (pinned, greeted, the node told its peers changed)."""
    services = daemon.services

    async def add(candidate: Candidate, info: wire.NodeInfo) -> bool:
        assert candidate.node_id is not None
        try:
            peer = await services.store.run(
                partial(
                    services.peers.add,
                    public_key=decode_node_id(candidate.node_id),
                    url=candidate.url,
                    role=info.role,
                    name=info.name,
                )
            )
        except (ConflictError, ValidationError):
            return False
        await say_hello(services, peer)
        services.changed({PEERS})
        return True

    return Discovery(
        services.store,
        client,
        SignatureAuth(identity),
        own_id=home.node_id,
        add=add,
        allow_private=allow_private,
        max_peers=max_peers,
        scoring=scoring,
        clock=clock,
    )
