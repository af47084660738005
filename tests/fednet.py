"""Test helpers: real nodes on 127.0.0.1 (port 0), each with its own home, inside one nursery.

``FedNet(nursery, tmp_path)`` starts nodes (``await net.node("alice")``, ``await net.node("acme",
role="vendor")``), stops and restarts them from the same home, runs ops through each node's admin API
(``await node.op("peers.add", {...})``, the way `vrm` does while a daemon runs) and reads their stores.
Options default to what makes tests quick and deterministic: no periodic pulls (a node pulls at start
and when told to sync), fast retries and a short breaker cool-down.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

from federation.admin import AdminClient
from federation.backoff import Backoff
from federation.breaker import CircuitBreaker
from app.runtime import NodeRuntime
from node.home import HomeInfo, init_home
from node.identity import Identity
from node.keystore import load_identity
from node.store import Store

T = TypeVar("T")

FAST = {
    "pull_interval": 3600.0,  # pulls happen at start and on `sync` only: tests say when
    "sweep_interval": 3600.0,
    "backoff": Backoff(base_ms=50, cap_ms=300, floor_ms=20),
    "new_breaker": partial(CircuitBreaker, threshold=50, cooldown_ms=200),
    "request_timeout": 5.0,
    "graceful_timeout": 1.0,
}


@dataclass
class Node:
    """A node of the test network; ``runtime`` is None while it is stopped."""

    name: str
    home: HomeInfo
    identity: Identity
    options: dict[str, Any]
    runtime: NodeRuntime | None = None
    _done: trio.Event = field(default_factory=trio.Event)

    @property
    def url(self) -> str:
        assert self.runtime is not None and self.runtime.url is not None, f"{self.name} is not running"
        return self.runtime.url

    @property
    def node_id(self) -> str:
        return self.home.node_id

    @property
    def key(self) -> str:
        return self.home.public_key

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def op(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run an op through the node's admin API (found through its admin.json, as the CLI does)."""
        client = await AdminClient.from_home(self.home)
        assert client is not None, f"{self.name} has no answering admin API"
        return await client.run_op(name, args or {})

    async def read(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)`` on the running node's store (its worker thread), or on the home's store when
        the node is stopped."""
        if self.runtime is not None and self.runtime.store is not None:
            return await self.runtime.store.run(fn, self.runtime.store.store)
        with Store(self.home.db_path) as store:
            return fn(store)


class FedNet:
    def __init__(self, nursery: trio.Nursery, tmp_path: Path) -> None:
        self._nursery = nursery
        self._root = tmp_path
        self.nodes: dict[str, Node] = {}

    async def node(
        self, name: str, role: str = "person", *, handle: str = "", start: bool = True, **options: Any
    ) -> Node:
        """A new node with a fresh home (a vendor gets a name and handle, which its offers carry)."""
        if role == "vendor" and not handle:
            handle = name.lower()
        home = init_home(
            self._root / name, None, role, name=name.title() if role == "vendor" else "", handle=handle
        )
        node = Node(name, home, load_identity(home.key_path, None), {**FAST, **options})
        self.nodes[name] = node
        if start:
            await self.start(node)
        return node

    async def start(self, node: Node, **options: Any) -> Node:
        """Start (or restart) ``node`` from its home; returns once both its servers listen."""
        assert node.runtime is None, f"{node.name} is already running"
        node.options.update(options)
        runtime = NodeRuntime(node.home, node.identity, **node.options)
        node._done = trio.Event()
        await self._nursery.start(self._run, node, runtime)
        node.runtime = runtime
        return node

    async def _run(self, node: Node, runtime: NodeRuntime, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            await runtime.run(task_status=task_status)
        finally:
            node.runtime = None
            node._done.set()

    async def stop(self, node: Node) -> None:
        """Stop ``node`` gracefully and wait until it has closed its store."""
        assert node.runtime is not None, f"{node.name} is not running"
        node.runtime.stop()
        await node._done.wait()

    async def peer(self, a: Node, b: Node) -> dict[str, Any]:
        """``a`` adds ``b`` as a peer (pins its key, says hello, so ``b`` knows ``a`` too)."""
        return await a.op("peers.add", {"url": b.url, "node_id": b.node_id})

    async def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.runtime is not None:
                await self.stop(node)


async def eventually(check: Callable[[], Awaitable[T]], *, interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy (the test's fail_after bounds the wait)."""
    while True:
        value = await check()
        if value:
            return value
        await trio.sleep(interval)
