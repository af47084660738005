"""A running node's background loops (mixed into ``app.runtime.NodeRuntime``, which starts them).

The greeting of every peer, the puller, Plumtree's timer task, the expiry sweeper, peer exchange, the
LAN announcement and browsing (mDNS), and the grants sweeper (which also pushes changed vault fields).
"""

from __future__ import annotations

import logging

import trio

from app import ops
from app.access import queue_pushes, sweep_grants
from app.peers import say_hello
from federation import mdns as lan
from federation.tree import links as tree_links
from node.errors import PassphraseError, VaultError

LOGGER = logging.getLogger("vrm.runtime")
_GREET_RETRY_S = 1.0  # between tries to read the peers to greet while the store is down


class BackgroundLoops:
    """The loops ``NodeRuntime.run`` starts; the attributes are ``NodeRuntime``'s."""

    async def _greet_peers(self) -> None:
        """Tell every peer with a URL where we are now (our URL may have changed since last run)."""
        assert self.store is not None and self.services is not None
        if self.public_url is None:
            return
        while True:
            try:
                peers = await self.store.run(self.services.peers.pushable)
                break
            except Exception:  # the store may be down a while (a fleet's PostgreSQL): greet once it is back
                LOGGER.exception("reading the peers to greet failed; trying again in %s s", _GREET_RETRY_S)
                await trio.sleep(_GREET_RETRY_S)
        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(say_hello, self.services, peer)

    async def _verify_left_claims(self) -> None:
        """Verify the claimed URLs the node's last run left pending (each hello has its own verified)."""
        assert self._claims is not None
        try:
            await self._claims.run()
        except Exception:  # the store may be down a while: those claims wait for their peers' next hellos
            LOGGER.exception("verifying the claimed URLs left pending failed")

    async def _pull_loop(self) -> None:
        assert self.services is not None
        while True:
            self._pull_now = trio.Event()
            try:
                self._synced(await ops.run_op(self.services, "sync", {}))
            except Exception:  # a bug in handling one peer's answer must not stop the node pulling
                LOGGER.exception("pulling from peers failed")
            with trio.move_on_after(self.pull_interval):
                await self._pull_now.wait()

    async def _tree_loop(self) -> None:
        """Plumtree's timer task: IHAVE batches, GRAFTs when an announced id is late, PRUNEs."""
        assert self.store is not None and self._daemon is not None and self.services is not None
        relay, services = self._daemon.core.relay, self.services
        if relay is None:
            return

        async def ingest(peer: str, items: list) -> None:
            ingested = await services.store.run(services.pipeline.ingest, items, peer, pushed=False)  # fetched
            if ingested.peers:
                self._changed(set(ingested.peers))

        offend = self._claims.scoring.record_many if self._claims.scoring is not None else None  # type: ignore[union-attr]
        await relay.run(**tree_links(services.http, lambda peer: self._urls.get(peer), ingest), offend=offend)

    async def _sweep_loop(self) -> None:
        """Drop expired envelopes, and dead letters past their keeping time, every ``sweep_interval``."""
        assert self.store is not None and self._daemon is not None and self.services is not None
        log, outbox = self._daemon.core.domain.log, self.services.outbox
        while True:
            try:
                await self.store.run(log.prune, self.clock())
                await self.store.run(outbox.prune_dead, self.clock())
            except Exception:
                LOGGER.exception("sweeping expired envelopes and old dead letters failed")
            await trio.sleep(self.sweep_interval)

    async def _exchange_loop(self) -> None:
        """Ask peers for theirs every ``exchange_interval`` and add the verified ones (bounded)."""
        assert self.discovery is not None and self.exchange_interval is not None
        while True:
            try:
                await self.discovery.round()
            except Exception:  # a bug in one answer's handling must not stop discovery
                LOGGER.exception("peer exchange failed")
            await trio.sleep(self.exchange_interval)

    async def _mdns_loop(self) -> None:
        assert self.discovery is not None and self.url is not None
        await lan.on_the_lan(
            self.discovery, node_id=self.home.node_id, role=self.home.role, host=self.host,
            port=int(self.url.rsplit(":", 1)[1]), interfaces=self.mdns_interfaces, tls=self.tls is not None,
            interval=self.mdns_interval,
        )

    async def _grants_loop(self) -> None:
        """End due grants, delete expired held data and push changed vault fields, every few seconds."""
        assert self.services is not None
        warned = False
        while True:
            try:
                await sweep_grants(self.services)
                await queue_pushes(self.services)
            except (PassphraseError, VaultError):  # said once, not every few seconds
                if not warned:
                    LOGGER.warning("live push grants cannot be served: this node runs without its vault key")
                    warned = True
            except Exception:  # a bug in one grant must not stop the node sweeping the others
                LOGGER.exception("sweeping grants failed")
            await trio.sleep(self.grants_interval)
