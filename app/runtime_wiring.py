"""How a running node's parts are wired together (mixed into ``app.runtime.NodeRuntime``).

``_start_servers`` starts the federation, admin and (with ``ui_lan``) LAN page servers; ``_run_op``
runs the admin API's and the page's ops; ``_changed`` routes what an op, an ingest or a hello changed
to the deliverer, the subscription index and the peer list; ``_refresh_peers`` reloads the peer URLs
the deliverer's ``_endpoint`` sends to (dead-lettering what is queued for removed peers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

from app import ops
from app.root import Daemon, build_discovery, start_servers
from app.services import PEERS, SUBSCRIPTIONS
from federation import defences
from federation.events import DaemonEvents
from federation.kinds import ACCESS_KIND
from federation.peerexchange import Sharing
from federation.server import bound_from_url, listener_urls, serve
from node.store import Clock

GOSSIP_PATH = "/v1/gossip"
ACCESS_PUSH_PATH = "/v1/access/push"


class RuntimeWiring:
    """The servers and the routing of changes; the attributes are ``NodeRuntime``'s."""

    async def _start_servers(self, nursery: trio.Nursery) -> None:
        assert self._daemon is not None and self.services is not None and self.store is not None
        # The defences: persisted replay floor and peer scores (unverified claimed URLs count too).
        options = defences.app_options(self.home, self.app_options, self.store, self.clock)
        options.setdefault("events", self.events)
        self._claims.scoring = options["scoring"]  # type: ignore[union-attr]
        allow_private = self._claims.allow_private  # type: ignore[union-attr]
        options.setdefault("sharing", Sharing(allow_private=allow_private, scoring=options["scoring"]))
        # The listener's names join the public URL's; a port-0 listener is named once it listens
        # (nobody can know its URL before).
        scheme = "https" if self.tls is not None else "http"
        if self.port:
            self.authorities.add(*listener_urls(scheme, self.host, self.port))
        options.setdefault("authorities", self.authorities)
        self.discovery = build_discovery(
            self._daemon, self._client, self.identity, self.home, allow_private=allow_private,
            max_peers=self.max_peers, scoring=options["scoring"], clock=self.clock,
        )
        listening = await start_servers(
            nursery,
            self._daemon,
            self.home,
            token=self._token,
            run_op=self._run_op,
            status=self.status,
            on_ingest=self._changed,
            on_hello=self._hello_received,
            host=self.host,
            port=self.port,
            admin_port=self.admin_port,
            shutdown_trigger=self._stopping.wait,
            graceful_timeout=self.graceful_timeout,
            app_options=options,
            limits=self.app_options.get("limits"),
            clock=self.clock,
            ui=self._ui_app(lan=False),
            tls=self.tls,
        )
        self.url, self.admin_url = listening.url, listening.admin_url
        bound = bound_from_url(listening.url)
        self.authorities.add(*listener_urls(scheme, self.host, bound.port, bound.host))
        self.public_url = (self._configured_public_url or listening.url) if self.reachable else None
        if self.ui_lan:  # ui: the page alone on the LAN, behind its login plus a pairing code
            lan = await nursery.start(
                partial(
                    serve,
                    self._ui_app(lan=True),
                    host="0.0.0.0",
                    port=self.ui_lan_port,
                    shutdown_trigger=self._stopping.wait,
                    graceful_timeout=self.graceful_timeout,
                )
            )
            self.ui_lan_url = lan.url
        self.services.public_url = self.public_url
        self.started_at = self.clock()
        self._started_monotonic = time.monotonic()

    # -- wiring --------------------------------------------------------------------------------------

    async def _run_op(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        assert self.services is not None
        result = await ops.run_op(self.services, name, args)
        if name == "sync":
            self._synced(result)
        return result

    def _synced(self, result: dict[str, Any]) -> None:
        self.last_sync = {"synced_at": self.clock(), **{k: result[k] for k in ("peers", "reached", "received") if k in result}}

    def _ui_app(self, *, lan: bool) -> Any:
        """The person's page (ui/): ops through ``_run_op``, reads and record edits on the store's
        thread, the live stream woken by ``_changed``."""
        from node.keystore import derive_vault_key
        from ui import create_ui_app

        astore = self.store
        assert astore is not None

        async def on_store(fn: Callable[..., Any], *args: Any) -> Any:
            return await astore.run(fn, astore.store, *args)

        async def write(fn: Callable[..., Any], *args: Any) -> Any:
            result = await astore.run(fn, astore.store, *args)
            self.ui_changes.notify()
            return result

        return create_ui_app(
            run_op=self._run_op,
            read=on_store,
            write=write,
            events=self.ui_changes,
            auth=self.ui_auth,
            role=self.home.role,
            node_id=self.home.node_id,
            public_key=self.identity.public_key,
            name=self.home.name,
            unlock_vault=partial(derive_vault_key, self.home.key_path),
            link_token=None if lan else self._token,
            lan=lan,
            clock=self.clock,
        )

    def _endpoint(self, peer: str, kind: str) -> str | None:
        url = self._urls.get(peer)  # None: removed, or not refreshed yet; the deliverer retries later
        if url is None:
            return None
        return url + (ACCESS_PUSH_PATH if kind == ACCESS_KIND else GOSSIP_PATH)

    def _changed(self, names: set[str]) -> None:
        """What an op, an ingest or a hello changed: wake the deliverer for peers with new deliveries,
        rebuild the matcher, refresh the peer list (and pull from a new peer at once)."""
        self.ui_changes.notify()  # ui: the page's live stream looks again
        nursery = self._background
        if nursery is None:  # not running (yet, or any more): the store has it all for next time
            return
        unknown = set()
        for name in names:
            if name == SUBSCRIPTIONS:
                self._daemon.index.invalidate()  # type: ignore[union-attr]
            elif name == PEERS:
                nursery.start_soon(self._peers_changed)
            elif name in self._urls:
                self.deliverer.notify(name)  # type: ignore[union-attr]
            else:
                unknown.add(name)  # a peer we have not seen yet (it just said hello)
        if unknown:
            nursery.start_soon(self._notify_after_refresh, unknown)

    async def _hello_received(self, peer: str) -> None:
        # A peer announced itself, maybe at a new URL (it restarted): deliveries go there once the URL
        # is verified (the verifier then reloads the peers). The hello waits for its own claim only,
        # a few seconds at most; the check goes on in the background past that.
        if self._background is not None and self._claims is not None:
            await self._claims.verify(self._background, peer)
        relay = self._daemon.core.relay if self._daemon is not None else None
        if relay is not None:  # a legacy peer's own hello: it may speak plumtree/1 now (others wait)
            relay.recheck(peer)

    async def _peers_changed(self) -> None:
        await self._refresh_peers()
        self._pull_now.set()

    async def _notify_after_refresh(self, peers: set[str]) -> None:
        await self._refresh_peers()
        for peer in peers:
            if peer in self._urls:
                self.deliverer.notify(peer)  # type: ignore[union-attr]

    async def _refresh_peers(self) -> None:
        """Reload peer URLs; deliveries still queued for peers that are gone are dead-lettered."""
        assert self.store is not None and self._daemon is not None
        self._urls = await self.store.run(_peer_urls, self._daemon, self.clock, self.events)
        relay, peers = self._daemon.core.relay, self._daemon.core.domain.peers
        if relay is not None:  # the tree's members: the peers we gossip with (all eager at first)
            relay.refresh(await self.store.run(lambda: [p.public_key for p in peers.pushable()]))


def _peer_urls(daemon: Daemon, clock: Clock, events: DaemonEvents) -> dict[str, str]:
    store, peers, outbox = daemon.core.domain.store, daemon.core.domain.peers, daemon.outbox
    urls = {p.public_key: p.url for p in peers.deliverable() if p.url}
    known = {p.public_key for p in peers.list()}
    for peer in outbox.peers():
        if peer not in known:
            ids = [r["id"] for r in store.query("SELECT id FROM outbox WHERE peer = ?", [peer])]
            outbox.mark_rejected(ids, clock(), "peer removed")
            events.dead_lettered(peer, len(ids), "peer removed")
    return urls

