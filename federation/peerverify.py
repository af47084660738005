"""Verifying what strangers claim before the node uses it (issue 10, item 3).

A ``POST /v1/hello`` from a peer nobody added only *claims* a URL (node/peers.py). ``ClaimVerifier``
checks each claim once, a few at a time, before the node ever pushes there:

1. the URL must be allowed (``url_allowed``): http or https, and its host — the literal address, or
   every address its name resolves to — a global unicast address. Private, loopback, link-local,
   multicast, reserved and unspecified addresses are refused unless the operator allowed them or the
   node itself serves on such an address (a LAN or loopback federation: ``serves_privately``);
2. a signed ``GET /v1/node`` there (no redirects, a short timeout, at most ``MAX_ANSWER`` bytes read)
   must answer with the announcer's own node id. A 401 ``stale`` is signed anew and sent again
   (``federation.delivery.send_resigned``, as for every request to a peer): a node that has just
   restarted refuses requests signed up to its replay floor (up to two seconds after its last one).
   Peer exchange verifies the nodes it discovers with the same ``probe``.

Then the claim becomes the peer's URL; otherwise it is dropped and the peer's next claim is ignored
for ``CLAIM_RETRY_MS``. So a flood of hellos costs the node at most one small request per announced
peer (three if it answers 401 ``stale``; and the announced peers are capped), never a stream of pushes
or pulls to URLs strangers chose.
"""

from __future__ import annotations

import ipaddress
import logging
import urllib.parse
from collections.abc import Awaitable, Callable

import httpx
import trio

from federation import wire
from federation.auth import SignatureAuth
from federation.delivery import send_resigned
from federation.scoring import PeerScoring
from node.errors import DeliveryError, VrmError
from node.peers import Peer, Peers
from node.store import AsyncStore, Clock, wall_clock_ms

LOGGER = logging.getLogger("vrm.federation")
MAX_ANSWER = 64 * 1024  # a node info answer is a few hundred bytes
CONCURRENCY = 4  # verifications in flight at once
TIMEOUT = 5.0  # seconds per verification request

Resolver = Callable[[str, int], Awaitable[list[str]]]


def _address_allowed(text: str, allow_private: bool) -> bool:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return False
    if address.is_global:
        return True
    return allow_private


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, in a thread)."""
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


async def url_allowed(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> bool:
    """Whether the node may send requests to ``url`` (see the module docstring)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:  # a name: every address it resolves to must be allowed
        try:
            with trio.fail_after(TIMEOUT):
                addresses = await resolver(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (OSError, trio.TooSlowError):
            return False
        return bool(addresses) and all(_address_allowed(a, allow_private) for a in addresses)
    return _address_allowed(host, allow_private)


def serves_privately(host: str) -> bool:
    """Whether a node bound to ``host`` serves on a non-global address (then its peers may too). All
    interfaces (``0.0.0.0``, ``::``) is not: a public node must not be steered to its own LAN."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_unspecified and not address.is_global


class ClaimVerifier:
    """Verifies the claimed URLs of announced peers; ``await verifier.run()`` after a hello."""

    def __init__(
        self,
        store: AsyncStore,
        client: httpx.AsyncClient,
        auth: SignatureAuth,
        *,
        allow_private: bool,
        clock: Clock = wall_clock_ms,
        resolver: Resolver = resolve,
        timeout: float = TIMEOUT,
    ) -> None:
        self._store = store
        self._client = client
        self._auth = auth
        self.allow_private = allow_private
        self._clock = clock
        self._resolver = resolver
        self._timeout = timeout
        self._lock = trio.Lock()
        self.scoring: PeerScoring | None = None  # told of each claim that failed (an unanswered promise)
        self.requests = 0  # verification requests sent (what strangers could make us send)

    async def run(self) -> bool:
        """Verify every pending claim; returns whether any became a URL. One run at a time: a caller
        arriving meanwhile waits, then finds the claims already settled (nothing is verified twice)."""
        async with self._lock:
            peers = Peers(self._store.store, clock=self._clock)
            claims = await self._store.run(peers.claims)
            if not claims:
                return False
            limiter = trio.CapacityLimiter(CONCURRENCY)
            results: list[tuple[str, str, str | None]] = []

            async def one(peer: Peer) -> None:
                async with limiter:
                    url = peer.claimed_url
                    assert url is not None
                    error = await self._check(peer, url)
                    if error is not None:
                        LOGGER.info("announced URL %s of %s not verified: %s", url, peer.node_id, error)
                    results.append((peer.public_key, url, error))

            async with trio.open_nursery() as nursery:
                for peer in claims:
                    nursery.start_soon(one, peer)
            await self._store.run(peers.settle_claims, results)  # one transaction for the lot
            if self.scoring is not None:
                await self.scoring.unanswered([key for key, _, error in results if error is not None])
            return any(error is None for _, _, error in results)

    async def _check(self, peer: Peer, url: str) -> str | None:
        """None when ``url`` answers as ``peer``; else why not."""
        if not await url_allowed(url, allow_private=self.allow_private, resolver=self._resolver):
            return "address not allowed"
        self.requests += 1
        _, error = await probe(self._client, self._auth, url, peer.node_id, timeout=self._timeout)
        return error


async def probe(
    client: httpx.AsyncClient, auth: SignatureAuth, url: str, node_id: str, *, timeout: float = TIMEOUT
) -> tuple[wire.NodeInfo | None, str | None]:
    """A signed ``GET url/v1/node`` (no redirects, at most ``MAX_ANSWER`` bytes read): the node info
    when the node there is ``node_id``, else why not. Signed anew while it answers 401 ``stale``, as
    every request to a peer is (``send_resigned``). The caller checked ``url_allowed`` first."""

    async def send() -> httpx.Response:
        request = client.build_request("GET", url + "/v1/node", headers={"Accept": wire.MEDIA_TYPE})
        return await client.send(request, auth=auth, stream=True, follow_redirects=False)

    try:
        response = await send_resigned(send, timeout)
    except DeliveryError as exc:
        return None, str(exc)
    try:
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}"
        body = b""
        with trio.fail_after(timeout):
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > MAX_ANSWER:
                    return None, "answer too large"
    except trio.TooSlowError:
        return None, "timeout"
    except httpx.HTTPError as exc:
        return None, type(exc).__name__
    finally:
        await response.aclose()
    try:
        info = wire.decode_node_info(body)
    except VrmError as exc:
        return None, f"not a node: {exc}"
    if info.node_id != node_id:
        return None, "another node answers there"
    return info, None
