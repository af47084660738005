"""The ingest benchmark's peers, in a process of their own: in the field they are other machines, so
their signing, encoding and HTTP client must not share the vendor's interpreter (its GIL and its
event loop). Run in one process, they took about a third of the loop's time in the 90 %-duplicate case.

On this 2-core machine they still share its cores, so they do as little as a load generator can
(as wrk does): every request is built and signed before the clock starts, exactly as ``PeerClient``
sends it (``SignatureAuth``, the same headers, ``wire.encode_batch``), and each sender then writes
those bytes on one kept-alive connection and reads the answers with h11. Through httpx they spent
~3.4 ms of CPU per batch of 1,000, a fifth of all the CPU the 90 %-duplicate case used.

``Pushers`` starts the process (``spawn``: the parent runs threads and a trio loop, which a fork would
copy half-way), which says it is ready; ``push`` sends it the vendor's URL: it signs every request,
starts the clock, pushes its batches concurrently and answers the items answered and accepted, and
the wall-clock seconds from its first request to its last answer.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx
import trio

from federation import wire
from federation.auth import SignatureAuth
from node.identity import Identity


def sender_identity(k: int) -> Identity:
    return Identity.from_seed(bytes([0x50 + k]) * 32)


def signed_push(auth: SignatureAuth, url: str, items: Sequence[bytes]) -> tuple[h11.Request, bytes]:
    """The ``POST /v1/gossip`` of ``items`` (encoded) as ``PeerClient.push`` sends it: its head (for
    h11) and its body."""
    body = wire.encode_batch(items)
    headers = {"Accept": wire.MEDIA_TYPE, "Content-Type": wire.MEDIA_TYPE}
    request = next(auth.auth_flow(httpx.Request("POST", url.rstrip("/") + "/v1/gossip", content=body, headers=headers)))
    target = request.url.raw_path
    return h11.Request(method="POST", target=target, headers=list(request.headers.raw)), body


async def _exchange(stream: trio.SocketStream, conn: h11.Connection, head: h11.Request, body: bytes) -> bytes:
    """Send one request on a kept-alive connection; the answer's body (a non-200 answer raises)."""
    await stream.send_all(conn.send(head) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    status, parts = 0, []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            parts.append(event.data)
        elif isinstance(event, h11.EndOfMessage):
            break
        elif isinstance(event, h11.ConnectionClosed):
            raise RuntimeError("the vendor closed the connection")
    if status != 200:
        raise RuntimeError(f"push answered {status}: {b''.join(parts)[:200]!r}")
    conn.start_next_cycle()
    return b"".join(parts)


async def _push_all(conn: Connection, work: Sequence[Sequence[bytes]], senders: int) -> None:
    answered = accepted = 0
    conn.send("ready")
    url = await trio.to_thread.run_sync(conn.recv)
    auths = [SignatureAuth(sender_identity(k)) for k in range(senders)]
    requests = [signed_push(auths[n % senders], url, items) for n, items in enumerate(work)]
    where = urlsplit(url)

    async def sender(k: int) -> None:
        nonlocal answered, accepted
        stream = await trio.open_tcp_stream(where.hostname, where.port)
        async with stream:
            http = h11.Connection(h11.CLIENT)
            for (head, body), items in zip(requests[k::senders], work[k::senders], strict=True):
                reasons = wire.decode_reasons(await _exchange(stream, http, head, body), len(items))
                answered += len(reasons)
                accepted += reasons.count(0)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for k in range(senders):
            nursery.start_soon(sender, k)
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
