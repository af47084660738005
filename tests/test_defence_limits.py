"""Bounded requests (issue 10, item 1), against a node in its own process so its RSS is its own.

120 connections each send most of an 8 MiB body and stall: the node stays under 150 MB RSS and closes
every one within its deadline; a 1 GB Content-Length with no body is answered at once. The middleware's
own rules are tested in-process over ASGI below.
"""

from __future__ import annotations

import json
from functools import partial
import subprocess
import sys
from pathlib import Path

import httpx
import msgpack
import pytest
import trio

from federation.limits import PROXY_STATE, ForwardedClient, Limits, RequestLimits, hypercorn_settings, source_of

MIB = 1024 * 1024
LIMITS = {"body_timeout": 2.0, "idle_timeout": 1.5}  # the defaults otherwise (8 MiB bodies, 16 per source)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def start_node(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests._node_proc", str(tmp_path / "node"), json.dumps(LIMITS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = await trio.to_thread.run_sync(proc.stdout.readline)
    assert url.startswith("http://"), url
    return proc, url.strip()


def head(port: int, length: int) -> bytes:
    return (
        f"POST /v1/gossip HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/msgpack\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def stalled_body(port: int, closed_after: list[float]) -> None:
    """Send the head and all but 64 KiB of an 8 MiB body, then stall; how long until the node closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        stalled = trio.current_time()
        try:
            await stream.send_all(head(port, 8 * MIB))
            chunk = b"\x00" * (256 * 1024)
            with trio.move_on_after(5):  # a node that stops reading stalls us here: that is the point
                for _ in range(8 * 4 - 1):
                    await stream.send_all(chunk)
            stalled = trio.current_time()
            with trio.move_on_after(30):
                while await stream.receive_some(65536):
                    pass
        except trio.BrokenResourceError:  # refused (503) and closed while we were still sending
            pass
        closed_after.append(trio.current_time() - stalled)


async def test_stalled_bodies_and_a_huge_content_length_stay_bounded(tmp_path):
    proc, url = await start_node(tmp_path)
    port = int(url.rsplit(":", 1)[1])
    try:
        with trio.fail_after(60):
            before = rss_mb(proc.pid)
            peak = [before]
            closed_after: list[float] = []

            async def sample() -> None:
                while True:
                    peak[0] = max(peak[0], rss_mb(proc.pid))
                    await trio.sleep(0.1)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sample)
                async with trio.open_nursery() as clients:
                    for _ in range(120):
                        clients.start_soon(stalled_body, port, closed_after)
                nursery.cancel_scope.cancel()
            print(f"RSS {before:.0f} MB before, {peak[0]:.0f} MB at most; closed after {max(closed_after):.1f} s at most")
            assert len(closed_after) == 120
            assert peak[0] <= 150
            deadline = LIMITS["idle_timeout"] + 3.0  # the idle deadline, plus slack for a loaded 2-core machine
            assert max(closed_after) <= deadline

            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                asked = trio.current_time()
                await stream.send_all(head(port, 1 << 30))
                answer = b""
                with trio.move_on_after(5):
                    while chunk := await stream.receive_some(4096):  # to the end: the node closes it
                        answer += chunk
                assert answer.startswith(b"HTTP/1.1 413") and b"request_too_large" in answer
                assert trio.current_time() - asked < 1.0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- the middleware over ASGI ---------------------------------------------------------------------


async def echo(scope, receive, send) -> None:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


async def test_caps_are_answered_with_their_reason():
    limits = Limits(max_body=1000, max_buffered=1500, per_source=2, total=3, body_timeout=0.2, idle_timeout=0.1)
    app = RequestLimits(echo, limits=limits)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
        assert (await http.post("/", content=b"x" * 1000)).text == "1000"
        big = await http.post("/", content=b"x" * 1001, headers={"Accept": "application/msgpack"})
        assert big.status_code == 413 and msgpack.unpackb(big.content) == {"error": "request_too_large", "limit": 1000}

        async def chunks():
            yield b"x" * 600
            yield b"x" * 600  # past the cap while streaming (no Content-Length)

        streamed = await http.post("/", content=chunks())
        assert streamed.status_code == 413

        async def stall():
            yield b"x" * 10
            await trio.sleep(1)
            yield b"x"

        slow = await http.post("/", content=stall())
        assert slow.status_code == 408 and slow.json()["error"] == "request_timeout"
    assert app.total == 0 and app.buffered == 0 and not app.in_flight


async def test_per_source_and_total_concurrency():
    gate = trio.Event()

    async def held(scope, receive, send) -> None:
        await gate.wait()
        await echo(scope, receive, send)

    app = RequestLimits(held, limits=Limits(per_source=2, total=3))
    statuses: list[int] = []

    async def call(host: str) -> None:
        transport = httpx.ASGITransport(app=app, client=(host, 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
            statuses.append((await http.post("/", content=b"x")).status_code)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for host in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "2001:db8::1", "2001:db8::2", "10.0.0.9"):
                nursery.start_soon(call, host)
                await trio.sleep(0.01)
            await trio.sleep(0.05)
            gate.set()
    # third from 10.0.0.1 (per source), second from the same /64 (per source 2 is fine), then total 3.
    assert sorted(statuses) == [200, 200, 200, 503, 503, 503]


async def test_behind_a_trusted_proxy_each_forwarded_client_is_its_own_source():
    """Behind nginx every request comes from the proxy's address: counted as that, one client could
    take the slots and budgets of all. From a trusted proxy the last X-Forwarded-For address is the
    source; from anyone else the header is ignored (nobody chooses what it is counted as)."""
    gate = trio.Event()
    seen: list[tuple[str, str | None]] = []

    async def held(scope, receive, send) -> None:
        seen.append((source_of(scope), scope.get(PROXY_STATE)))
        await gate.wait()
        await echo(scope, receive, send)

    app = ForwardedClient(RequestLimits(held, limits=Limits(per_source=1, total=10)),
                          trusted_proxies=frozenset({"127.0.0.1"}))  # fmt: skip
    statuses: list[int] = []

    async def call(via: str, forwarded: str) -> None:
        transport = httpx.ASGITransport(app=app, client=(via, 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
            headers = {"X-Forwarded-For": forwarded}
            statuses.append((await http.post("/", content=b"x", headers=headers)).status_code)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for via, forwarded in (("127.0.0.1", "10.9.9.9, 198.51.100.1"), ("127.0.0.1", "198.51.100.2"),
                                   ("127.0.0.1", "198.51.100.1"), ("192.0.2.8", "198.51.100.3"),
                                   ("192.0.2.8", "198.51.100.4")):  # fmt: skip
                nursery.start_soon(call, via, forwarded)
                await trio.sleep(0.01)
            await trio.sleep(0.05)
            gate.set()
    # 198.51.100.1's second request and 192.0.2.8's second (its header ignored) are over per_source 1
    assert sorted(statuses) == [200, 200, 200, 503, 503]
    assert sorted(seen) == [("192.0.2.8", None), ("198.51.100.1", "127.0.0.1"), ("198.51.100.2", "127.0.0.1")]


def test_sources_and_server_settings():
    assert source_of({"client": ("192.0.2.7", 5)}) == "192.0.2.7"
    assert source_of({"client": ("2001:db8:1:2:3:4:5:6", 5)}) == source_of({"client": ("2001:db8:1:2::9", 1)})
    assert source_of({"client": ("::ffff:192.0.2.7", 5)}) == "192.0.2.7"
    assert hypercorn_settings(Limits(header_timeout=7))["keep_alive_timeout"] == 7
    with pytest.raises(ValueError):
        Limits(per_source=0)


async def test_a_connection_trickling_its_headers_is_closed_by_the_header_deadline():
    """federation.server.serve applies hypercorn_settings(limits): a client sending one header byte
    every 0.2 s (never finishing) is disconnected within the header deadline, not kept forever."""
    from starlette.applications import Starlette

    from federation.server import serve

    limits = Limits(header_timeout=1.0, idle_timeout=1.0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(partial(serve, Starlette(), port=0, limits=limits))
            stream = await trio.open_tcp_stream("127.0.0.1", bound.port)
            started = trio.current_time()
            closed_at = None
            trickle = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
            for byte in trickle:
                try:
                    await stream.send_all(bytes([byte]))
                    with trio.move_on_after(0.2):
                        if await stream.receive_some(1024) == b"":
                            closed_at = trio.current_time()
                            break
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    closed_at = trio.current_time()
                    break
            await stream.aclose()
            nursery.cancel_scope.cancel()
    assert closed_at is not None, "the trickling connection was never closed"
    assert closed_at - started <= limits.header_timeout + 2.0
