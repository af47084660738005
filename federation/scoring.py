"""Peer scoring at the federation port (issue 10, item 8): an ASGI middleware just inside the
signature check, so it knows who signed, over the persisted scores of node/scores.py.

Before a request: a signer that is ``refused`` gets 403 ``{"error": "peer_refused", "until": ms}``
with ``Retry-After``; a ``throttled`` one may make one request a second (else 429 ``rate_limited``).
After it, what the answer says is held against the signer: a 400 ``malformed_batch`` is one
``malformed_batch``, a 429 or 413 one ``limit_hit`` (not a 503: busy may be others' doing), each ``bad_signature`` reason in a push answer
one ``bad_signature``; ``PeerScoring.unanswered`` counts an announced URL that did not verify.
Standings are cached in memory (loaded once, at most ``scores.MAX_ROWS``) and written through to
the store on every offence, so a restart forgets nothing.
"""

from __future__ import annotations

import math

import msgpack
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.auth import PEER_STATE
from federation.ratelimit import RateLimiter
from node.clock import wall_clock_ms
from node.reasons import Reason
from node.scores import MAX_ROWS, Scores, Standing
from node.store import AsyncStore, Clock

MAX_CAPTURE = 64 * 1024  # bytes of an answer read back for its reasons (a push answer is ~1 KB)


class PeerScoring:
    """Standings by hex key, cached over the ``peer_scores`` table."""

    def __init__(self, store: AsyncStore, *, clock: Clock = wall_clock_ms) -> None:
        self._store = store
        self._clock = clock
        self._standings: dict[str, Standing] | None = None
        self.throttle = RateLimiter(1.0, 1, clock=clock)

    async def _all(self) -> dict[str, Standing]:
        if self._standings is None:
            self._standings = await self._store.run(Scores(self._store.store).load)
        return self._standings

    async def standing(self, key: str) -> Standing:
        return (await self._all()).get(key) or Standing(key)

    async def record(self, key: str, offences: dict[str, int]) -> Standing:
        return (await self.record_many([(key, offences)]))[0]

    async def record_many(self, offences_by_key: list[tuple[str, dict[str, int]]]) -> list[Standing]:
        """Lower each key's score; written in one transaction."""
        standings = await self._all()
        now = self._clock()
        changed = []
        for key, offences in offences_by_key:
            standing = standings.get(key) or Standing(key)
            standing.offend(offences, now)
            if key not in standings and len(standings) >= MAX_ROWS:
                standings.pop(min(standings, key=lambda k: standings[k].updated_at))
            standings[key] = standing
            changed.append(standing)
        await self._store.run(Scores(self._store.store).save_many, changed, now)
        return changed

    async def unanswered(self, keys: list[str]) -> None:
        """Announced URLs of ``keys`` that did not answer as their announcer (one transaction)."""
        if keys:
            await self.record_many([(key, {"unanswered_promise": 1}) for key in keys])


class ScoreMiddleware:
    """Gate and score every signed request (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, scoring: PeerScoring, clock: Clock = wall_clock_ms) -> None:
        self.app = app
        self.scoring = scoring
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verified = scope.get("state", {}).get(PEER_STATE) if scope["type"] == "http" else None
        if verified is None:
            await self.app(scope, receive, send)
            return
        key = bytes(verified.key).hex()
        now = self.clock()
        standing = await self.scoring.standing(key)
        state = standing.state(now)
        if state == "refused":
            wait = math.ceil((standing.refused_until - now) / 1000)  # type: ignore[operator]
            await _answer(send, 403, {"error": "peer_refused", "until": standing.refused_until}, wait)
            return
        if state == "throttled" and not self.scoring.throttle.take(key, 1):
            await _answer(send, 429, {"error": "rate_limited"}, 1)
            return
        status = 0
        captured = bytearray()

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(captured) < MAX_CAPTURE:
                captured.extend(message.get("body", b"")[: MAX_CAPTURE - len(captured)])
            await send(message)

        await self.app(scope, receive, watched)
        offences = _offences(scope, status, bytes(captured))
        if offences:
            await self.scoring.record(key, offences)


def _offences(scope: Scope, status: int, body: bytes) -> dict[str, int]:
    if status in (413, 429):  # its own budget or size; a 503 (the node or the source is busy) may be others' doing
        return {"limit_hit": 1}
    if status not in (200, 400) or not body:
        return {}
    try:
        value = msgpack.unpackb(body)
    except Exception:  # not msgpack: not an answer that accuses anyone
        return {}
    if not isinstance(value, dict):
        return {}
    if status == 400 and value.get("error") == "malformed_batch":
        return {"malformed_batch": 1}
    reasons = value.get("reasons")
    if status == 200 and scope.get("method") == "POST" and isinstance(reasons, bytes):
        forged = reasons.count(bytes([Reason.BAD_SIGNATURE]))
        return {"bad_signature": forged} if forged else {}
    return {}


async def _answer(send: Send, status: int, content: dict, retry_after: int) -> None:
    body = msgpack.packb(content)
    headers = [
        (b"content-type", b"application/msgpack"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(max(1, retry_after)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
