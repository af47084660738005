"""What issue 11 left for the operator's log, on real nodes on loopback: refusals by the outer request
limits, deliveries dead-lettered as expired, and pulls that work again after failing."""

from __future__ import annotations

import logging
import re

import httpx
import pytest
import trio

from federation.events import DaemonEvents
from federation.limits import Limits
from tests.fednet import FedNet, eventually
from tests.logcheck import FakeClock, lines, logged

TIMEOUT = 30
HOUR = 3_600_000


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.DEBUG, logger="vrm")
    return caplog


async def _slow_request(port: int) -> trio.SocketStream:
    """A POST that announces 100 bytes and sends 10 (the rest never comes)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(
        b"POST /v1/gossip HTTP/1.1\r\nHost: x\r\nContent-Type: application/msgpack\r\n"
        b"Authorization: Bearer s3cret-token-value\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
    )
    return stream


async def _answer(stream: trio.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
    return data


async def test_refusals_of_the_request_limits_are_logged_once_rate_limited(net, log):
    clock = FakeClock()
    events = DaemonEvents(interval_s=60.0, clock=clock)
    limits = Limits(max_body=1024, idle_timeout=2.0, body_timeout=2.0, per_source=1, total=8)
    with trio.fail_after(TIMEOUT):
        air = await net.node("acme", "vendor", events=events, app_options={"limits": limits})
        async with httpx.AsyncClient() as http:
            # too large: refused before a byte of the body is read, a flood of them said once
            for _ in range(10):
                answer = await http.post(air.url + "/v1/gossip", content=b"b0dy" * 600,
                                         headers={"Authorization": "Bearer s3cret-token-value"})
                assert answer.status_code == 413
        [large] = lines(log, "vrm.federation", ": 413 ")
        assert large.levelno == logging.WARNING
        message = large.getMessage()
        assert "refused POST /v1/gossip: 413 request_too_large" in message and "from 127.0.0.1" in message
        assert "s3cret" not in message and "b0dy" not in message

        # a body that stops arriving: 408, a warning; while it is held, a second request from the
        # same address is over the per-source cap: 503 busy, which a well-behaved peer meets (info)
        slow = await _slow_request(air.port)
        async with httpx.AsyncClient() as http:

            async def busy() -> bool:  # once the slow one is in flight
                return (await http.get(air.url + "/v1/node")).status_code == 503

            await eventually(busy)
        assert (await _answer(slow)).startswith(b"HTTP/1.1 408")
        await slow.aclose()
        [timeout] = lines(log, "vrm.federation", ": 408 request_timeout")
        assert timeout.levelno == logging.WARNING and timeout.getMessage().startswith("refused POST /v1/gossip")
        [crowded] = lines(log, "vrm.federation", ": 503 busy")
        assert crowded.levelno == logging.INFO and "GET /v1/node" in crowded.getMessage()

        # the window ends: the next too-large request says how many were held back
        clock.now += 61
        async with httpx.AsyncClient() as http:
            assert (await http.post(air.url + "/v1/gossip", content=b"x" * 2000)).status_code == 413
        [again] = lines(log, "vrm.federation", "9 similar suppressed")
        assert again.getMessage().startswith("refused POST /v1/gossip: 413")
        assert len(lines(log, "vrm.federation", ": 413 ")) == 2


class Later:
    """The node's clock (ms), moved forward by the test."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        from node.store import wall_clock_ms

        return wall_clock_ms() + self.offset


async def test_deliveries_that_expire_in_the_outbox_are_said_dead_lettered_once_per_sweep(net, log):
    later = Later()
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice", clock=later)
        air = await net.node("acme", "vendor")
        await net.peer(alice, air)
        await net.stop(air)
        for i in range(3):  # queued for a peer that is down, retried every few hundred ms
            await alice.op("intent.cast", {"text": f"?flight SFO->JFK seat {i}", "ttl_ms": HOUR, "terms": []})
        await eventually(lambda: alice.read(lambda s: s.query_one("SELECT 1 FROM outbox WHERE attempts > 0")))
        assert not lines(log, "vrm.delivery", "expired")
        later.offset = 2 * HOUR  # they expire before the peer comes back: the next sweep buries them
        [expired] = await eventually(logged(log, "vrm.delivery", "dead-lettered: expired"))
        assert expired.levelno == logging.WARNING
        assert expired.getMessage().startswith(f"3 delivery(ies) to peer {air.node_id} dead-lettered: expired")
        dead = await alice.read(lambda s: s.query("SELECT reason FROM outbox_dead"))
        assert [d["reason"] for d in dead] == ["expired"] * 3
        await trio.sleep(0.5)  # more sweeps of the (now empty) queue say nothing more
        assert len(lines(log, "vrm.delivery", "expired")) == 1


def test_the_outbox_tells_of_expired_rows_by_peer(tmp_path):
    """The per-delivery rows (direct envelopes, access pushes) tell their expiry too, counted by peer."""
    from federation.outbox import Outbox
    from node.store import Store

    told: list[tuple[str, int]] = []
    with Store(tmp_path / "db.sqlite") as store:
        outbox = Outbox(store)
        outbox.on_expired = lambda peer, count: told.append((peer, count))
        with store.transaction():
            for i in range(2):
                outbox.enqueue("p", b"x", kind="access", now=0, ref=f"r{i}", expires_at=10)
            outbox.enqueue("p", b"y", kind="access", now=0, ref="live", expires_at=10_000)
        [live] = outbox.due("p", 100)
        assert live.ref == "live" and told == [("p", 2)]
        outbox.due("p", 100)
        assert told == [("p", 2)]  # nothing more expired: nothing more told


async def test_a_pull_that_works_after_failures_is_said_once_at_info(net, log):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        air = await net.node("acme", "vendor")
        await net.peer(alice, air)
        assert (await alice.op("sync", {}))["reached"] == 1
        assert not lines(log, "vrm.sync", "work again")  # never failed: nothing to say
        port = air.port
        await net.stop(air)
        for _ in range(2):
            assert (await alice.op("sync", {}))["reached"] == 0
        [failed] = lines(log, "vrm.sync", "pull from peer")
        assert failed.levelno == logging.WARNING
        await net.start(air, port=port)

        async def reached() -> bool:  # the restarted peer's replay floor may refuse the first one
            return (await alice.op("sync", {}))["reached"] == 1

        await eventually(reached)
        [again] = lines(log, "vrm.sync", "work again")
        assert again.levelno == logging.INFO
        assert again.getMessage().startswith(f"pulls from peer {air.node_id} at {air.url} work again")
        assert re.search(r"after ([2-9]|\d\d+) failure\(s\)", again.getMessage())
        assert (await alice.op("sync", {}))["reached"] == 1
        assert len(lines(log, "vrm.sync", "work again")) == 1  # said once, not on every good pull
