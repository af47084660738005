"""Verifying what strangers claim before the node uses it (issue 10, item 3).

A ``POST /v1/hello`` only *claims* a URL, whoever signs it: an added peer too, since discovery adds
strangers (node/peers.py). ``ClaimVerifier`` checks each claim once before the node ever uses it:

1. the URL must be allowed (``federation.egress.url_allowed``): http or https, and its host — the
   literal address, or every address its name resolves to — a global unicast address. Private,
   loopback, link-local, multicast, reserved and unspecified addresses are refused unless the operator
   allowed them or the node itself serves on such an address (a LAN or loopback federation:
   ``serves_privately``). Every connection the node makes is judged again (a name may rebind);
2. a signed ``GET /v1/node`` there (no redirects, a short timeout, at most ``MAX_ANSWER`` bytes read)
   must answer with the announcer's own node id. A 401 ``stale`` is signed anew and sent again
   (``federation.delivery.send_resigned``, as for every request to a peer): a node that has just
   restarted refuses requests signed up to its replay floor (up to two seconds after its last one).
   Peer exchange verifies the nodes it discovers with the same ``probe``.

Then the claim becomes the peer's URL; otherwise it is dropped (the URL held, if any, kept) and the
peer's next claim is ignored for ``CLAIM_RETRY_MS``. So a flood of hellos costs the node at most one
small request per announced peer (three if it answers 401 ``stale``; and the announced peers are
capped), never a stream of pushes or pulls to URLs strangers chose.

A hello waits for its signer's claim only, and at most ``HELLO_WAIT`` seconds; the verification goes
on in the node's background past that. Claims of announced peers are checked at most ``CONCURRENCY``
at a time; an added peer's never waits behind them. So URLs that accept connections and never answer
delay only the hellos that claimed them, each by at most ``HELLO_WAIT``: they cannot hold the request
slots (federation/limits.py) of other peers' hellos.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import trio

from federation import wire
from federation.auth import SignatureAuth
from federation.delivery import send_resigned
from federation.egress import Resolver, resolve, url_allowed
from federation.scoring import PeerScoring
from node.errors import DeliveryError, VrmError
from node.peers import Peer, Peers
from node.store import AsyncStore, Clock, wall_clock_ms

LOGGER = logging.getLogger("vrm.federation")
MAX_ANSWER = 64 * 1024  # a node info answer is a few hundred bytes
CONCURRENCY = 16  # verification requests for announced peers in flight at once
TIMEOUT = 5.0  # seconds per verification request
HELLO_WAIT = 3.0  # seconds a hello waits for its own claim; then it is answered, the claim checked on

@dataclass
class Verification:
    """The verification of one peer's claims: ``settled`` is set once none is pending."""

    settled: trio.Event = field(default_factory=trio.Event)
    verified: bool = False  # a claim became the peer's URL
    asked_again: bool = False  # a hello joined it: its claim may be newer than the last one read


class ClaimVerifier:
    """Verifies the URLs hellos claim: a hello's own (``verify``, from the hello handler) and those a
    previous run of the node left pending (``run``)."""

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
        hello_wait: float = HELLO_WAIT,
        concurrency: int = CONCURRENCY,
        on_verified: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._auth = auth
        self.allow_private = allow_private
        self._clock = clock
        self._resolver = resolver
        self._timeout = timeout
        self._hello_wait = hello_wait
        self._limiter = trio.CapacityLimiter(concurrency)
        self._on_verified = on_verified  # awaited once a claim became a URL (before the hello is answered)
        self._verifying: dict[str, Verification] = {}  # by hex key: one task per peer
        self.scoring: PeerScoring | None = None  # told of each claim that failed (an unanswered promise)
        self.requests = 0  # verification requests sent (what strangers could make us send)

    async def verify(self, nursery: trio.Nursery, public_key_hex: str) -> bool:
        """Verify the pending claim of the peer ``public_key_hex`` (a hello's signer) in ``nursery``,
        waiting at most ``hello_wait`` seconds: whether it was settled by then. Past the deadline it is
        still checked, in ``nursery``. Other peers' claims are never waited for: a stranger whose URL
        never answers delays its own hello only."""
        verification = self.verify_soon(nursery, public_key_hex)
        with trio.move_on_after(self._hello_wait):
            await verification.settled.wait()
        return verification.settled.is_set()

    def verify_soon(self, nursery: trio.Nursery, public_key_hex: str) -> Verification:
        """Start verifying the peer's pending claim in ``nursery``. A verification of this peer under
        way is joined (nothing is verified twice), and checks the newer claim next."""
        verification = self._verifying.get(public_key_hex)
        if verification is not None:
            verification.asked_again = True
            return verification
        verification = Verification()
        nursery.start_soon(self._verify_claims_of, public_key_hex, verification)
        self._verifying[public_key_hex] = verification
        return verification

    async def run(self) -> bool:
        """Verify every pending claim (each hello has its own verified: these are the claims a previous
        run left); whether any became a URL."""
        claims = await self._store.run(Peers(self._store.store, clock=self._clock).claims)
        async with trio.open_nursery() as nursery:
            verifications = [self.verify_soon(nursery, peer.public_key) for peer in claims]
        for verification in verifications:  # some were under way in another nursery
            await verification.settled.wait()
        return any(v.verified for v in verifications)

    async def _verify_claims_of(self, key: str, verification: Verification) -> None:
        peers = Peers(self._store.store, clock=self._clock)
        settled_url = None
        try:
            while True:
                verification.asked_again = False
                peer = await self._store.run(peers.by_key, key)
                url = None if peer is None else peer.claimed_url
                # settling cleared the claim it checked, and the same URL is no new claim after that
                if url is None or url == settled_url:
                    if verification.asked_again:
                        continue
                    return
                assert peer is not None
                # Added peers are few; strangers' claims queue for a few slots and never delay theirs.
                async with self._limiter if peer.source == "announced" else contextlib.nullcontext():
                    error = await self._check(peer, url)
                await self._store.run(peers.settle_claim, key, url, error is None, error)
                settled_url = url
                if error is None:
                    verification.verified = True
                    if self._on_verified is not None:
                        await self._on_verified()
                else:
                    LOGGER.info("claimed URL %s of %s not verified: %s", url, peer.node_id, error)
                    if self.scoring is not None:
                        await self.scoring.unanswered([key])
        except Exception:  # in the node's background: one failed verification must not stop the node
            LOGGER.exception("verifying a claimed URL of %s failed", key)
        finally:
            del self._verifying[key]
            verification.settled.set()

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
