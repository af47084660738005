"""The ingest benchmark's peers, in a process of their own: in the field they are other machines, so
their signing, encoding and HTTP client must not share the vendor's interpreter (its GIL and its
event loop). Run in one process, they took about a third of the loop's time in the 90 %-duplicate case.

``Pushers`` starts the process (``spawn``: the parent runs threads and a trio loop, which a fork would
copy half-way), which opens one ``PeerClient`` per sender and says it is ready; ``push`` then starts
the clock in the child: it pushes its batches concurrently and answers the items answered and
accepted, and the wall-clock seconds from its first request to its last answer.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import trio

from federation.peerclient import PeerClient
from node.identity import Identity


def sender_identity(k: int) -> Identity:
    return Identity.from_seed(bytes([0x50 + k]) * 32)


async def _push_all(conn: Connection, work: Sequence[Sequence[bytes]], senders: int) -> None:
    answered = accepted = 0

    async def sender(client: PeerClient, k: int, url: str) -> None:
        nonlocal answered, accepted
        for items in work[k::senders]:
            reasons = await client.push(url, items)
            answered += len(reasons)
            accepted += reasons.count(0)

    async with contextlib.AsyncExitStack() as clients:
        # The clients (TLS context, connection pool) exist before the clock starts.
        peers = [await clients.enter_async_context(PeerClient(sender_identity(k), timeout=120)) for k in range(senders)]
        conn.send("ready")
        url = await trio.to_thread.run_sync(conn.recv)
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for k, client in enumerate(peers):
                nursery.start_soon(sender, client, k, url)
        conn.send((answered, accepted, time.perf_counter() - started))


def _child(conn: Connection, work: Sequence[Sequence[bytes]], senders: int) -> None:
    try:
        trio.run(_push_all, conn, work, senders)
    except BaseException as exc:  # the parent waits on the pipe: tell it rather than leave it hanging
        conn.send(RuntimeError(f"pusher failed: {exc!r}"))
        raise


class Pushers:
    """``senders`` peers in a child process, each pushing its share of ``work`` (batches of encoded
    items) in turn; use as a context manager (the child is stopped on exit)."""

    def __init__(self, work: Sequence[Sequence[bytes]], senders: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_child, args=(child, work, senders), daemon=True)

    def __enter__(self) -> Pushers:
        self._process.start()
        self._expect(self._conn.recv(), str)
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    async def push(self, url: str) -> tuple[int, int, float]:
        """Push everything to ``url``: (items answered, items accepted, seconds)."""
        self._conn.send(url)
        return self._expect(await trio.to_thread.run_sync(self._conn.recv), tuple)

    @staticmethod
    def _expect(message: object, kind: type) -> Any:
        if isinstance(message, BaseException):
            raise message
        if not isinstance(message, kind):
            raise RuntimeError(f"pusher sent {message!r}")
        return message
