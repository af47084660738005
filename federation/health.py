"""``GET /v1/health``: the one unsigned route of the federation port, for a load balancer in front of a
fleet's listeners (or any node's supervisor).

200 ``{"status": "ok", "store": "ok", "listener": id or null, "schema": version}`` while the store
answers; 503 with ``"status": "degraded", "store": "unreachable"`` when it does not within
``timeout`` seconds. No secret and nothing a peer sent is in it. The answer is computed at most once
per ``every`` seconds and shared by every request meanwhile, so a flood of health checks costs the
store one query a second, not one per request. HEAD answers the same status without the body; any
other method on the path is a 405.

A fleet listener probes its PostgreSQL database on a pooled connection of its own (not behind the
node's store worker, which may be busy with an ingest batch); a SQLite node asks its store worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import trio
from starlette.types import ASGIApp, Receive, Scope, Send

from node.store import AsyncStore

HEALTH_PATH = "/v1/health"
_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


class Health:
    def __init__(
        self,
        store: AsyncStore,
        *,
        listener_id: str | None = None,
        timeout: float = 2.0,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.listener_id = listener_id
        self.timeout = timeout
        self.every = every
        self.clock = clock
        self._answer: tuple[int, bytes] | None = None
        self._at = float("-inf")
        self._lock = trio.Lock()

    async def answer(self) -> tuple[int, bytes]:
        """(HTTP status, JSON body), fresh at most ``every`` seconds ago."""
        if self._answer is not None and self.clock() - self._at < self.every:
            return self._answer
        async with self._lock:  # concurrent checks wait for the one probe, then share it
            if self._answer is None or self.clock() - self._at >= self.every:
                self._answer = await self._probe()
                self._at = self.clock()
            return self._answer

    async def _probe(self) -> tuple[int, bytes]:
        version: int | None = None
        with trio.move_on_after(self.timeout):
            try:
                version = await self._schema_version()
            except Exception:  # any failure of the store is what "unreachable" reports
                version = None
        doc: dict[str, Any] = {
            "status": "ok" if version is not None else "degraded",
            "store": "ok" if version is not None else "unreachable",
            "listener": self.listener_id,
            "schema": version,
        }
        return (200 if version is not None else 503), json.dumps(doc, separators=(",", ":")).encode()

    async def _schema_version(self) -> int:
        store = self.store.store
        if getattr(store, "engine", None) == "postgresql":

            def ask() -> int:
                with store.connection(timeout=self.timeout) as conn:  # type: ignore[attr-defined]
                    row = conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").fetchone()
                    return int(row["v"])

            # abandoned on timeout: the thread gives its connection back to the pool when it ends
            return await trio.to_thread.run_sync(ask, abandon_on_cancel=True)
        return int(await self.store.run(lambda: store.schema_version))


class HealthMiddleware:
    """Answers ``HEALTH_PATH`` before the signature check; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, *, health: Health) -> None:
        self.app = app
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        method = scope.get("method")
        if method not in ("GET", "HEAD"):
            status, body = 405, b'{"error":"method_not_allowed"}'
            headers = [*_HEADERS, (b"allow", b"GET, HEAD")]
        else:
            status, body = await self.health.answer()
            headers = list(_HEADERS)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
