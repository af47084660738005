"""What issue 11 left for the operator's log, on real nodes on loopback: refusals by the outer request
limits, deliveries dead-lettered as expired, and pulls that work again after failing."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio

from federation.events import DaemonEvents
from federation.limits import Limits
from tests.fednet import FedNet, eventually

TIMEOUT = 30
HOUR = 3_600_000


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.DEBUG, logger="vrm")
    return caplog


def lines(caplog, logger: str, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and needle in r.getMessage()]


def logged(caplog, logger: str, needle: str):
    async def check() -> list[logging.LogRecord]:
        return lines(caplog, logger, needle)

    return check


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _slow_request(port: int, *, send_all: bool = False) -> trio.SocketStream:
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
    limits = Limits(max_body=1024, idle_timeout=0.3, body_timeout=0.3, per_source=1, total=8)
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
            busy = await http.get(air.url + "/v1/node")
        assert busy.status_code == 503
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
