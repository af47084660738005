"""Peer exchange and the verification of discovered nodes (issue 14, PROTOCOL.md section 7).

Serving: ``GET /v1/peers`` (``peers_answer``, a route of federation/app.py) is answered only to a
verified peer (one its operator added, or an announced peer whose URL was verified): a bounded list
``[node_id, url, role]`` of known-good peers (a URL, last contact fine, not blocked, score ``ok``),
never the asker, never a URL on a private address unless private peers are allowed (``Sharing``).

Asking: ``Discovery`` asks each gossip peer for its peers, feeds the candidates into a bounded
``CandidatePool`` (at most PER_SOURCE from one source) with the LAN's (federation/mdns.py), and
verifies a few per round: not blocked, not scored down, an allowed address (federation/peerverify.py;
private ones only when allowed, or found on the LAN itself) and a signed ``GET /v1/node`` there that
answers with the candidate's node id. Only then is it added as a peer (``add``, given by the runtime),
while the node has fewer than ``max_peers`` gossip peers. A source whose answer is malformed or
oversized is scored (``malformed_batch``, ``limit_hit``); one whose candidates do not answer as
claimed (or cannot be used) is scored ``unanswered_promise`` for each. Nothing a peer says is taken without that.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx
import trio
from starlette.requests import Request
from starlette.responses import Response

from federation import wire
from federation.auth import SignatureAuth
from federation.discovery import MAX_CANDIDATES, MAX_EXCHANGE, Candidate, CandidatePool, decode_exchange, encode_exchange
from federation.egress import Resolver, address_allowed, is_literal, resolve, url_allowed
from federation.peerverify import TIMEOUT, probe
from federation.scoring import PeerScoring
from node.errors import WireError
from node.nodeid import decode_node_id
from node.peers import Peer, Peers
from node.store import AsyncStore, Clock, Store, wall_clock_ms

LOGGER = logging.getLogger("vrm.discovery")
MAX_SERVED = 32  # peers in one GET /v1/peers answer
MAX_ANSWER = 64 * 1024  # bytes of an answer read (32 entries are ~5 KB)
VERIFY_PER_ROUND = 8  # candidates dialled per round
ASK_PER_ROUND = 8  # peers asked per round (rotating through them all)
MAX_FOUND = MAX_CANDIDATES  # outcomes remembered for `vrm peers discover`
RETRY_MS = 10 * 60_000  # a refused candidate is not dialled again sooner, whoever names it

Add = Callable[[Candidate, wire.NodeInfo], Awaitable[bool]]


def literal_private(url: str) -> bool:
    """Whether ``url``'s host is ``localhost`` or a literal address that is not global unicast (a name
    is judged by whoever dials it, after resolving it)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return is_literal(host) and not address_allowed(host, allow_private=False)


# -- serving GET /v1/peers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sharing:
    """What ``GET /v1/peers`` needs besides the peers table."""

    allow_private: bool  # share peers on private addresses (a LAN or loopback federation)
    scoring: PeerScoring | None = None


def _asker_verified(store: Store, asker: str) -> bool:
    row = store.query_one("SELECT source, url, verified_at FROM peers WHERE public_key = ?", [asker])
    return row is not None and (row["source"] == "added" or (row["url"] is not None and row["verified_at"] is not None))


def _shareable(store: Store, asker: str) -> list[dict]:
    return store.query(
        "SELECT public_key, node_id, url, role FROM peers WHERE url IS NOT NULL AND failures = 0"
        " AND last_contact_at IS NOT NULL AND public_key != ?"
        " AND public_key NOT IN (SELECT public_key FROM blocked) ORDER BY last_contact_at DESC, id LIMIT ?",
        [asker, MAX_SERVED * 4],
    )


async def served(store: AsyncStore, sharing: Sharing, asker: str, now: int) -> list[tuple[str, str, str]] | None:
    """The ``[node_id, url, role]`` entries for ``asker``; None when it is no verified peer."""
    if not await store.run(_asker_verified, store.store, asker):
        return None
    out = []
    for row in await store.run(_shareable, store.store, asker):
        if not sharing.allow_private and literal_private(row["url"]):
            continue
        if sharing.scoring is not None and (await sharing.scoring.standing(row["public_key"])).state(now) != "ok":
            continue
        out.append((row["node_id"], row["url"], row["role"]))
        if len(out) >= MAX_SERVED:
            break
    return out


async def peers_answer(request: Request, peer: str) -> Response:
    """``GET /v1/peers`` (federation/app.py routes it; the app's ``Federation.sharing`` configures it)."""
    fed = request.app.state.federation
    if fed.sharing is None:
        return Response(wire.error_body("not_found", None), 404, media_type=wire.MEDIA_TYPE)
    entries = await served(fed.store, fed.sharing, peer, fed.clock())
    if entries is None:
        return Response(wire.error_body("not_a_peer", "peers are shared with verified peers only"), 403,
                        media_type=wire.MEDIA_TYPE)
    return Response(encode_exchange(entries), media_type=wire.MEDIA_TYPE)


# -- asking peers and verifying what they say --------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What became of one candidate (``vrm peers discover``)."""

    node_id: str
    url: str
    role: str | None
    source: str
    state: str  # "pending", "added", "known", "refused" or "removed"
    detail: str | None
    at: int

    def to_json(self) -> dict[str, object]:
        return {"node_id": self.node_id, "url": self.url, "role": self.role, "source": self.source,
                "state": self.state, "detail": self.detail, "at": self.at}


class Discovery:
    """Candidates from peer exchange and the LAN, verified before they become peers (module docstring)."""

    def __init__(
        self,
        store: AsyncStore,
        client: httpx.AsyncClient,
        auth: SignatureAuth,
        *,
        own_id: str,
        add: Add,
        allow_private: bool,
        max_peers: int,
        scoring: PeerScoring | None = None,
        clock: Clock = wall_clock_ms,
        resolver: Resolver = resolve,
        timeout: float = TIMEOUT,
    ) -> None:
        self._store = store
        self._client = client
        self._auth = auth
        self.own_id = own_id
        self._add = add
        self.allow_private = allow_private
        self.max_peers = max_peers
        self.scoring = scoring
        self._clock = clock
        self._resolver = resolver
        self._timeout = timeout
        self.pool = CandidatePool()
        self.found: dict[str, Found] = {}
        self.requests = 0  # requests sent to candidates (what peers' answers could make us send)
        self._next = 0  # rotation through the peers asked
        self._lock = trio.Lock()

    # what is known: our gossip peers (not candidates again) and blocked keys (never candidates)
    def _known(self, store: Store) -> tuple[set[str], set[str], int]:
        peers = Peers(store, clock=self._clock)
        pushable = peers.pushable()
        blocked = {r["node_id"] for r in store.query("SELECT node_id FROM blocked")}
        return {p.node_id for p in pushable}, blocked, len(pushable)

    def _note(self, c: Candidate, state: str, detail: str | None = None) -> None:
        assert c.node_id is not None
        self.found.pop(c.node_id, None)
        self.found[c.node_id] = Found(c.node_id, c.url, c.role, c.source, state, detail, self._clock())
        while len(self.found) > MAX_FOUND:
            self.found.pop(next(iter(self.found)))

    def offer(self, candidates: Iterable[Candidate]) -> int:
        """Candidates found otherwise (the LAN); how many the pool took."""
        now = self._clock()

        def settled(c: Candidate) -> bool:
            """Removed by the operator, or refused a moment ago at that URL: a source naming a node at
            a URL of its own, refused, must not keep the node away at its real one."""
            f = self.found.get(c.node_id or "")
            return f is not None and (f.state == "removed" or (f.state == "refused" and f.url == c.url
                                                               and now < f.at + RETRY_MS))  # fmt: skip

        candidates = [c for c in candidates if c.node_id is not None and c.node_id != self.own_id
                      and not settled(c)]
        taken = self.pool.add(candidates)
        for c in self.pool.pending():
            if c in candidates and not self._added_before(c):
                self._note(c, "pending")
        return taken

    def _added_before(self, c: Candidate) -> bool:
        f = self.found.get(c.node_id or "")
        return f is not None and f.state in ("added", "removed")

    async def ask(self, peer: Peer) -> int:
        """``GET /v1/peers`` at ``peer``; how many candidates its answer added to the pool."""
        if peer.url is None or not await self._in_good_standing(peer.public_key):
            return 0
        try:
            body = await self._get_peers(peer.url)
        except WireError as exc:
            LOGGER.info("peer exchange with %s refused: %s", peer.node_id, exc)
            if self.scoring is not None:
                offence = "limit_hit" if exc.reason == "too_large" else "malformed_batch"
                await self.scoring.record(peer.public_key, {offence: 1})
            return 0
        if body is None:
            return 0
        known, blocked, _ = await self._store.run(self._known, self._store.store)
        try:
            candidates = decode_exchange(body, peer.node_id, own_id=self.own_id, known=known | blocked)
        except WireError as exc:
            LOGGER.info("peer exchange answer of %s refused: %s", peer.node_id, exc)
            if self.scoring is not None:
                await self.scoring.record(peer.public_key, {"malformed_batch": 1})
            return 0
        return self.offer(candidates)

    async def _get_peers(self, url: str) -> bytes | None:
        """The answer's body (None: not answered, or a node without peer exchange); WireError when it
        is larger than MAX_ANSWER (no more than that is read)."""
        try:
            with trio.fail_after(self._timeout):
                request = self._client.build_request("GET", url + "/v1/peers", headers={"Accept": wire.MEDIA_TYPE})
                response = await self._client.send(request, auth=self._auth, stream=True, follow_redirects=False)
                try:
                    if response.status_code != 200:
                        return None
                    body = b""
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > MAX_ANSWER:
                            raise WireError("too_large", f"a peer-exchange answer is at most {MAX_ANSWER} bytes")
                    return body
                finally:
                    await response.aclose()
        except (trio.TooSlowError, httpx.HTTPError) as exc:
            LOGGER.info("peer exchange at %s failed: %s", url, type(exc).__name__)
            return None

    async def _in_good_standing(self, key: str) -> bool:
        return self.scoring is None or (await self.scoring.standing(key)).state(self._clock()) == "ok"

    async def verify(self) -> list[str]:
        """Dial up to VERIFY_PER_ROUND candidates; the node ids added as peers."""
        added: list[str] = []
        known, blocked, count = await self._store.run(self._known, self._store.store)
        failed: dict[str, int] = {}  # source node id -> candidates of it that failed
        for c in self.pool.take(VERIFY_PER_ROUND):
            assert c.node_id is not None
            if c.node_id in known:
                if not self._added_before(c):
                    self._note(c, "known")
                continue
            if self._added_before(c):
                # we added it and it is gone: its operator removed it (until the node restarts)
                self._note(c, "removed", "removed by the operator: not added again")
                continue
            if count + len(added) >= self.max_peers:
                self._note(c, "pending", f"this node has its {self.max_peers} peers")
                self.pool.add([c])
                break
            info, error = await self._check(c, blocked)
            if info is not None:
                if await self._add(c, info):
                    added.append(c.node_id)
                    self._note(c, "added")
                    continue
                error = "could not be added"
            self._note(c, "refused", error)
            if c.source.startswith("exchange:") and error not in ("blocked", "low score"):
                source = c.source.removeprefix("exchange:")
                failed[source] = failed.get(source, 0) + 1
        if self.scoring is not None and failed:
            # a source vouching for nodes that are not there loses standing with each (at most
            # MAX_PENALTY a round): one feeding junk is soon refused, one dead node costs little
            await self.scoring.record_many(
                [(decode_node_id(s).hex(), {"unanswered_promise": n}) for s, n in sorted(failed.items())]
            )
        return added

    async def _check(self, c: Candidate, blocked: set[str]) -> tuple[wire.NodeInfo | None, str | None]:
        """The candidate's node info when it is verified, else why not."""
        assert c.node_id is not None
        if c.node_id in blocked:
            return None, "blocked"
        if not await self._in_good_standing(decode_node_id(c.node_id).hex()):
            return None, "low score"
        # an mDNS answer comes from the link itself: a LAN address is what it should be
        allow_private = self.allow_private or c.source == "mdns"
        if not await url_allowed(c.url, allow_private=allow_private, resolver=self._resolver):
            return None, "address not allowed"
        self.requests += 1
        return await probe(self._client, self._auth, c.url, c.node_id, timeout=self._timeout)

    async def round(self) -> list[str]:
        """Ask up to ASK_PER_ROUND gossip peers (rotating) for theirs, then verify; node ids added."""
        async with self._lock:
            peers = await self._store.run(Peers(self._store.store, clock=self._clock).pushable)
            if peers:
                start = self._next % len(peers)
                chosen = (peers[start:] + peers[:start])[:ASK_PER_ROUND]
                self._next = start + len(chosen)
                for peer in chosen:
                    await self.ask(peer)
            return await self.verify()

    async def verify_only(self) -> list[str]:
        async with self._lock:
            return await self.verify()

    def snapshot(self) -> list[dict[str, object]]:
        """Every candidate's outcome, newest first (what `vrm peers discover` shows of a running node)."""
        return [f.to_json() for f in reversed(self.found.values())]


__all__ = ["MAX_EXCHANGE", "Discovery", "Found", "Sharing", "literal_private", "peers_answer", "served"]
