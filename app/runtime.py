"""The daemon: one running node, built by the composition root (``app.root``), started and stopped.

``NodeRuntime.run`` opens the store and has ``app.root.build_daemon`` build, once: the envelope
verifier, the gossip pipeline, the subscription index (rebuilt when subscriptions change), the outbox
and its deliverer (one sending loop per peer), the signed peer client, the federation app and the
admin app. It then starts, in order:

1. the federation server and the admin server (127.0.0.1 only), so the URLs are known;
2. the deliverer, which resumes whatever the outbox still owes peers (queued before a restart);
3. admin.json with the admin URL and a fresh token (the CLI finds the daemon through it);
4. the background loops: a hello to every peer (when we have a public URL), the puller (gossip and
   inbox from every peer with a URL, at start and every ``pull_interval``), the expiry sweeper, and
   the grants sweeper (every ``grants_interval``: grants that expired, spent their budget or lost
   their intent are ended and their revocations sent; a vendor deletes data held under expired
   grants; changed vault fields of live push grants are sealed and queued, first thing at start),
   and Plumtree's timer task (``federation.tree.TreeRelay.run``: IHAVE batches, GRAFTs, PRUNEs).
   With ``exchange_interval`` peer exchange asks peers for theirs; with ``mdns`` the node is
   announced on the LAN and browses it; verified candidates become peers (federation/peerexchange.py).

``vault_key`` opens the vault (derived by the CLI from the passphrase; None for a vault without one):
the node needs it to answer fetches and to push granted data. Deliveries of kind ``access`` (pushed
data) go to the peer's ``/v1/access/push``, everything else to ``/v1/gossip``.

``task_status.started(self)`` comes once both servers listen; ``url``, ``admin_url`` and
``public_url`` are then set. ``stop()`` shuts down gracefully (servers finish requests in flight);
cancelling ``run`` stops at once. Either way the store is closed and admin.json removed.

``serve_forever`` is what `vrm serve` runs: a runtime stopped gracefully by SIGINT or SIGTERM.

This module is the lifecycle (building, running, stopping, a fleet's listener, status); the servers and
the routing of changes are ``app.runtime_wiring``, the background loops ``app.runtime_loops``.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import trio

from app import status
from app.root import Daemon, build_daemon, open_store
from app.runtime_loops import BackgroundLoops
from app.runtime_wiring import RuntimeWiring
from app.services import Services
from federation.admin import AdminClient, new_token, remove_admin_file, write_admin_file
from federation.auth import SignatureAuth
from federation.backoff import Backoff
from federation.breaker import CircuitBreaker
from federation.delivery import Deliverer
from federation.events import DaemonEvents
from federation.httpsig import OwnAuthorities
from federation.outbox import Outbox
from federation.peerexchange import Discovery
from federation.egress import GuardedTransport, private_peers_allowed
from federation.peerverify import ClaimVerifier
from federation.plumtree import Timers
from federation.server import TLSFiles
from federation.tree import LIVE_TIMERS
from node.backends import NATIVE, Backend
from node.errors import ConflictError
from node.home import HomeInfo
from node.identity import Identity
from node.store import AsyncStore, Clock, wall_clock_ms
from ui.auth import UiAuth
from ui.live import Changes


class NodeRuntime(RuntimeWiring, BackgroundLoops):
    """One node: its store, servers and background loops (see the module docstring)."""

    def __init__(
        self,
        home: HomeInfo,
        identity: Identity,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int = 0,
        public_url: str | None = None,
        reachable: bool = True,
        pull_interval: float = 60.0,
        sweep_interval: float = 300.0,
        grants_interval: float = 2.0,
        vault_key: bytes | None = None,
        clock: Clock = wall_clock_ms,
        backend: Backend = NATIVE,
        backoff: Backoff = Backoff(),
        max_attempts: int = 20,
        new_breaker: Callable[[], CircuitBreaker] = CircuitBreaker,
        request_timeout: float = 10.0,
        graceful_timeout: float = 5.0,
        app_options: dict[str, Any] | None = None,
        ui_lan: bool = False,
        ui_lan_port: int = 0,
        allow_private_peers: bool = False,
        tls: TLSFiles | None = None,
        store: str | None = None,
        events: DaemonEvents | None = None,
        exchange_interval: float | None = None,
        max_peers: int = 8,
        mdns: bool = False,
        mdns_interval: float = 5.0,
        mdns_interfaces: list[str] | None = None,
        plumtree: bool = True,
        tree_timers: Timers | None = None,
    ) -> None:
        """``public_url`` is the URL peers should use (behind a proxy); None means the bound URL.
        ``reachable=False`` announces no URL at all (a node behind NAT: peers never push to it, it
        pulls). ``app_options`` go to ``federation.app.create_app`` (rate limits, caps). ``store``
        (a postgresql:// URL) runs this vendor node as one listener of a fleet (fleet/), overriding
        the home's configured store. ``events``: the operator's log of refusals, failed pulls and
        deliveries, breaker changes and dead letters (rate-limited; federation/events.py).
        ``exchange_interval`` (seconds; None: never) is how often peers
        are asked for theirs; ``mdns`` advertises the node on the LAN and browses it (every
        ``mdns_interval``, on ``mdns_interfaces`` or all); verified candidates are added as peers while
        the node has fewer than ``max_peers`` (federation/peerexchange.py). ``plumtree`` relays gossip
        by Plumtree (``tree_timers``, else ``LIVE_TIMERS``: fan-out on) and advertises ``plumtree/1``; False floods
        with the hop limit, as older nodes do."""
        if identity.public_key.hex() != home.public_key:
            raise ConflictError("the identity given is not this home's key")
        self.home = home
        self.identity = identity
        self.host = host
        self.port = port
        self.admin_port = admin_port
        self.reachable = reachable
        self.pull_interval = pull_interval
        self.sweep_interval = sweep_interval
        self.grants_interval = grants_interval
        self._vault_key = vault_key
        self.clock = clock
        self.backend = backend
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.new_breaker = new_breaker
        self.request_timeout = request_timeout
        self.graceful_timeout = graceful_timeout
        self.app_options = dict(app_options or {})
        self._store_override = store
        self._tree = (tree_timers or LIVE_TIMERS) if plumtree else None
        self.listener: Any = None  # a fleet.listener.Listener when the store is a fleet's
        self._configured_public_url = public_url.rstrip("/") if public_url else None
        # The names signed requests must be signed for (PROTOCOL.md section 6): the public URL's here,
        # the listener's once it listens (app.runtime_wiring), a fleet's other listeners' as they beat.
        self.authorities = OwnAuthorities([self._configured_public_url] if self._configured_public_url else [])
        # Set by run():
        self.url: str | None = None
        self.admin_url: str | None = None
        self.public_url: str | None = None
        self.started_at: int | None = None
        self.store: AsyncStore | None = None
        self.services: Services | None = None
        self.deliverer: Deliverer | None = None
        self.outbox: Outbox | None = None
        self._daemon: Daemon | None = None
        self._urls: dict[str, str] = {}  # peer hex key -> URL, for the deliverer's endpoint
        self._background: trio.Nursery | None = None
        self._stopping = trio.Event()
        self._pull_now = trio.Event()
        self._token = new_token()
        self.events = events if events is not None else DaemonEvents()
        self.last_sync: dict[str, Any] | None = None  # the last sync's outcome, for `vrm status`
        self._started_monotonic = 0.0
        # ui: the page's logins and sessions, and the signal its live stream waits on
        # defences: announced peers' URLs are verified before use; private ones only when allowed
        self.allow_private_peers = allow_private_peers
        self.allow_private = private_peers_allowed(allow_private_peers, host)  # its peers' addresses
        self.tls = tls  # the federation server speaks HTTPS itself (federation.server.TLSFiles)
        self._claims: ClaimVerifier | None = None
        self.exchange_interval, self.max_peers = exchange_interval, max_peers
        self.mdns, self.mdns_interval, self.mdns_interfaces = mdns, mdns_interval, mdns_interfaces
        self.discovery: Discovery | None = None
        self.ui_lan, self.ui_lan_port, self.ui_lan_url = ui_lan, ui_lan_port, None
        self.ui_auth = UiAuth()
        self.ui_changes = Changes()

    # -- lifecycle -----------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[NodeRuntime] = trio.TASK_STATUS_IGNORED) -> None:
        existing = await AdminClient.from_home(self.home)
        if existing is not None:
            raise ConflictError(f"a node is already serving {self.home.path} (admin API {existing.url})")
        from fleet.home import store_url

        url = store_url(self.home, self._store_override)
        astore = await open_store(self.home, clock=self.clock, url=url)
        self.store = astore
        if url is not None:
            self._join_fleet(astore)
        wrote_admin = False
        try:
            # One connection pool for pushes, pulls and hellos; every request signed as this node, every
            # connection to an address the node may reach (federation.egress: names are judged anew).
            guarded = GuardedTransport(allow_private=self.allow_private)
            async with httpx.AsyncClient(auth=SignatureAuth(self.identity), transport=guarded) as client:
                await self._build(astore, client)
                async with trio.open_nursery() as servers:
                    await self._start_servers(servers)
                    try:
                        async with trio.open_nursery() as background:
                            self._background = background
                            await background.start(self.deliverer.run)  # type: ignore[union-attr]
                            assert self.admin_url is not None
                            write_admin_file(self.home.path, url=self.admin_url, token=self._token, pid=os.getpid())
                            wrote_admin = True
                            if self.listener is not None:
                                await background.start(self._run_listener)
                            background.start_soon(self._greet_peers)
                            background.start_soon(self._verify_left_claims)
                            background.start_soon(self._pull_loop)
                            background.start_soon(self._sweep_loop)
                            background.start_soon(self._grants_loop)
                            background.start_soon(self._tree_loop)
                            if self.exchange_interval is not None:
                                background.start_soon(self._exchange_loop)
                            if self.mdns:
                                background.start_soon(self._mdns_loop)
                            task_status.started(self)
                            await self._stopping.wait()
                            background.cancel_scope.cancel()  # the servers drain on their own
                    finally:
                        # Requests still draining may report changes: the store keeps them for next run.
                        self._background = None
        finally:
            with trio.CancelScope(shield=True):
                if wrote_admin:
                    remove_admin_file(self.home.path, token=self._token)
                await astore.aclose()

    @property
    def tree(self) -> Any:
        """The node's Plumtree relay (``federation.tree.TreeRelay``) while it runs; None when it floods."""
        return self._daemon.core.relay if self._daemon is not None else None

    def stop(self) -> None:
        """Stop gracefully: servers finish the requests in flight, loops are cancelled, store closed."""
        self.ui_changes.close()  # ui: the page's live streams end instead of holding the shutdown
        self._stopping.set()

    async def _build(self, astore: AsyncStore, client: httpx.AsyncClient) -> None:
        self._daemon = build_daemon(
            astore,
            self.home,
            self.identity,
            client,
            endpoint=self._endpoint,
            changed=self._changed,
            clock=self.clock,
            backend=self.backend,
            vault_key=self._vault_key,
            backoff=self.backoff,
            max_attempts=self.max_attempts,
            request_timeout=self.request_timeout,
            new_breaker=self.new_breaker,
            outbox=self._fleet_outbox,
            # a fleet's listeners share one key but not their (in-memory) tree: they flood (PROTOCOL.md 13)
            tree=self._tree if self.listener is None else None,
        )
        self.outbox, self.deliverer, self.services = self._daemon.outbox, self._daemon.deliverer, self._daemon.services
        self.services.events = self.deliverer.events = self.events  # one operator log, one rate limit
        # a person's node refusing our offer is an answer the vendor sees (`vrm offers list`: refused)
        self.deliverer.keeps_refusal = lambda peer, d: self.services.offers.is_sent_to(d.ref, peer)
        await self._refresh_peers()
        self._client = client
        self._claims = ClaimVerifier(
            astore,
            client,
            SignatureAuth(self.identity),
            clock=self.clock,
            allow_private=self.allow_private,
            on_verified=self._refresh_peers,  # deliveries go to a URL once it is verified
        )

    # -- a fleet's listener ----------------------------------------------------------------------------

    _fleet_outbox: Outbox | None = None

    def _join_fleet(self, astore: AsyncStore) -> None:
        """Share the fleet's deliveries (claimed), replay memory and subscription changes."""
        from fleet.listener import Listener
        from fleet.nonces import SharedNonceCache
        from fleet.outbox import ClaimingOutbox, lease_for

        self.listener = Listener(astore.store)  # type: ignore[arg-type]
        self._fleet_outbox = ClaimingOutbox(
            astore.store,
            listener=self.listener.id,
            backoff=self.backoff,
            max_attempts=self.max_attempts,
            lease_ms=lease_for(self.request_timeout),  # a claim outlasts one send
        )
        self.app_options.setdefault("nonces", SharedNonceCache(astore.store))  # type: ignore[arg-type]
        self.app_options.setdefault("listener_id", self.listener.id)  # named by GET /v1/health

    async def _run_listener(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert self.listener is not None and self._daemon is not None
        await self._add_fleet_names()  # before anyone is told this listener serves
        await self.listener.run(
            url=self.public_url,
            clock=self.clock,
            on_subscriptions=self._daemon.index.invalidate,
            rescan=self._beat,
            task_status=task_status,
        )

    async def _beat(self) -> None:
        await self._rescan_outbox()
        await self._add_fleet_names()

    async def _add_fleet_names(self) -> None:
        # The listeners are one node (one key, one replay memory: a capture replayed at another is
        # refused `replayed`), and a load balancer may send a request signed for one to any other.
        assert self.listener is not None
        self.authorities.add(*await trio.to_thread.run_sync(self.listener.running_urls))

    async def _rescan_outbox(self) -> None:
        # Deliveries another listener queued, or a dead one left behind: send them from here too.
        assert self.outbox is not None and self.deliverer is not None
        for peer in await self.store.run(self.outbox.peers):  # type: ignore[union-attr]
            if peer in self._urls:
                self.deliverer.notify(peer)

    # -- status --------------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """What `vrm status` shows (app/status.py)."""
        assert self.store is not None and self._daemon is not None
        store, domain, outbox = self.store.store, self._daemon.core.domain, self._daemon.outbox
        counts = await self.store.run(status.store_counts, store, domain, outbox)
        return status.report(
            self.home,
            counts,
            self.deliverer,
            now=self.clock(),
            urls={"url": self.url, "public_url": self.public_url, "admin_url": self.admin_url,
                  "ui_lan_url": self.ui_lan_url},
            started_at=self.started_at,
            uptime_s=round(time.monotonic() - self._started_monotonic, 3),
            last_sync=self.last_sync,
            discovery=self.discovery.snapshot() if self.discovery is not None else [],
        )


def settle_heap() -> None:
    """Move what a started node holds for good (modules, the composition root's services, the
    matcher's index, caches) out of the cyclic collector's reach (``gc.freeze``): a full collection
    then walks only what came after. Unfrozen, one pass over a vendor's heap took 25-38 ms, a stall
    of the store's thread in the middle of a batch every dozen batches. Garbage is collected first,
    so nothing frozen is garbage; called once per process, when the node listens."""
    gc.collect()
    gc.freeze()


async def serve_forever(
    home: HomeInfo,
    identity: Identity,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    admin_port: int = 0,
    public_url: str | None = None,
    on_ready: Callable[[NodeRuntime], None] = lambda runtime: None,
    on_stopping: Callable[[], None] = lambda: None,
    **options: Any,
) -> None:
    """Run a node until SIGINT or SIGTERM, then stop it gracefully (what `vrm serve` does).
    ``on_ready`` is called once it listens (print the URLs there), ``on_stopping`` when a signal
    starts the shutdown (systemd's STOPPING=1). Must run in the main thread."""
    runtime = NodeRuntime(
        home, identity, host=host, port=port, admin_port=admin_port, public_url=public_url, **options
    )
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run)
            settle_heap()
            on_ready(runtime)
            async for _signum in signals:
                on_stopping()
                runtime.stop()
                break
