"""The node's client connects only where the address policy allows, judged on every connection: a
peer's name that resolved to a public address when its claim was checked cannot later steer the node
to loopback or the LAN (DNS rebinding). A real HTTP server on loopback counts what reaches it."""

from __future__ import annotations

import functools

import httpx
import pytest
import trio

from federation.egress import GuardedTransport, interleaved, url_allowed
from node.errors import ConflictError
from node.peers import Peers
from tests.fednet import FedNet

TIMEOUT = 10


def resolving_to(*addresses: str, calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if not addresses:
            raise OSError("no such name")
        return list(addresses)

    return resolve


@pytest.fixture
async def server(nursery):
    """An HTTP/1.1 server on 127.0.0.1: ``(port, connections)``; each connection answers 200 ``ok``."""
    connections: list[object] = []

    async def answer(stream: trio.SocketStream) -> None:
        connections.append(stream)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await stream.aclose()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, answer, 0, host="127.0.0.1"))
    yield listeners[0].socket.getsockname()[1], connections


async def get(transport: GuardedTransport, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        return await client.get(url)


async def test_a_name_that_rebinds_to_loopback_is_refused_before_any_connection(server):
    port, connections = server
    with trio.fail_after(TIMEOUT):
        guarded = GuardedTransport(allow_private=False, resolver=resolving_to("127.0.0.1"))
        with pytest.raises(httpx.ConnectError, match="resolves to"):
            await get(guarded, f"http://peer.example:{port}/v1/node")
        # one private address among public ones is enough: the node does not choose for the name's owner
        mixed = GuardedTransport(allow_private=False, resolver=resolving_to("93.184.216.34", "127.0.0.1"))
        with pytest.raises(httpx.ConnectError):
            await get(mixed, f"http://peer.example:{port}/v1/node")
        unresolvable = GuardedTransport(allow_private=False, resolver=resolving_to())
        with pytest.raises(httpx.ConnectError, match="cannot resolve"):
            await get(unresolvable, f"http://peer.example:{port}/v1/node")
    assert connections == []


async def test_a_name_is_reached_at_the_address_it_was_judged_by(server):
    port, connections = server
    calls: list[str] = []
    with trio.fail_after(TIMEOUT):
        # a loopback federation: the name's owner may point at private addresses, and the connection goes
        # to the address resolved (the name itself never reaches the system resolver here)
        allowed = GuardedTransport(allow_private=True, resolver=resolving_to("127.0.0.1", calls=calls))
        response = await get(allowed, f"http://peer.example:{port}/v1/node")
    assert response.status_code == 200 and response.text == "ok"
    assert calls == ["peer.example"] and len(connections) == 1
    assert response.request.headers["host"] == f"peer.example:{port}"  # the name is what the peer is asked for


async def test_literal_addresses_were_judged_when_accepted_and_never_allowed_ones_are_refused(server):
    port, connections = server
    calls: list[str] = []
    guarded = GuardedTransport(allow_private=False, resolver=resolving_to("8.8.8.8", calls=calls))
    with trio.fail_after(TIMEOUT):
        # a LAN neighbour found by mDNS is a literal private address its URL was accepted with
        response = await get(guarded, f"http://127.0.0.1:{port}/v1/node")
        assert response.status_code == 200 and len(connections) == 1
        for url in (f"http://0.0.0.0:{port}/", f"http://224.0.0.1:{port}/", f"http://[::ffff:0.0.0.0]:{port}/"):
            with pytest.raises(httpx.ConnectError, match="never a peer's address"):
                await get(guarded, url)
    assert calls == [] and len(connections) == 1


async def test_the_next_address_is_tried_when_one_refuses(server):
    port, connections = server
    # 127.0.0.2 is loopback too, but nothing listens there: refused, and the name's next address answers
    guarded = GuardedTransport(allow_private=True, resolver=resolving_to("127.0.0.2", "127.0.0.1"))
    with trio.fail_after(TIMEOUT):
        response = await get(guarded, f"http://peer.example:{port}/v1/node")
    assert response.status_code == 200 and len(connections) == 1
    only_refusing = GuardedTransport(allow_private=True, resolver=resolving_to("127.0.0.2", "127.0.0.3"))
    with trio.fail_after(TIMEOUT), pytest.raises(httpx.ConnectError):
        await get(only_refusing, f"http://peer.example:{port}/v1/node")
    assert len(connections) == 1


def test_a_names_addresses_are_tried_with_the_families_alternating():
    six, four = ["2001:db8::1", "2001:db8::2", "2001:db8::3"], ["192.0.2.1", "192.0.2.2"]
    assert interleaved(six + four + six) == ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2", "2001:db8::3"]
    assert interleaved(four + six) == ["192.0.2.1", "2001:db8::1", "192.0.2.2", "2001:db8::2", "2001:db8::3"]
    assert interleaved([]) == []


async def test_a_name_the_resolver_cannot_encode_is_refused_as_unreachable():
    name = "a" * 64 + ".example"  # a DNS label is at most 63 bytes: IDNA refuses it
    with trio.fail_after(TIMEOUT):
        assert not await url_allowed(f"http://{name}", allow_private=True)
        with pytest.raises(httpx.ConnectError, match="cannot resolve"):
            await get(GuardedTransport(allow_private=True), f"http://{name}:8470/v1/node")


async def test_a_daemon_facing_the_internet_does_not_dial_a_name_that_resolves_to_loopback(nursery, tmp_path):
    with trio.fail_after(60):
        net = FedNet(nursery, tmp_path)
        carol = await net.node("carol")
        bob = await net.node("bob", host="0.0.0.0")  # every interface: its peers must be public
        by_name = carol.url.replace("127.0.0.1", "localhost")
        with pytest.raises(ConflictError, match="refused to connect to localhost"):
            await bob.op("peers.add", {"url": by_name})
        assert await bob.read(lambda store: Peers(store).list()) == []
        # a literal address is what its operator typed: dialled as given
        added = await bob.op("peers.add", {"url": carol.url})
        assert added["node_id"] == carol.node_id
