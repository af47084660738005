"""Bounded requests: a pure ASGI middleware that sits outside everything else on the federation port.

Whatever a client does, a request costs the node a bounded amount of memory and time:

- **Body caps while streaming.** A ``Content-Length`` over ``max_body`` is answered 413 before any
  byte of the body is read; a body that grows past it while streaming is answered 413 at that chunk.
  Nothing beyond the cap is ever held.
- **A budget for buffered bodies.** Bytes received but not yet handled, summed over all requests in
  flight, stay under ``max_buffered``; a chunk that would pass it gets 503 (``busy``). So 120 clients
  each sending most of an 8 MiB body hold at most ``max_buffered`` bytes, not a gigabyte.
- **Read deadlines with a minimum transfer rate.** The body must arrive within ``body_timeout +
  length / min_rate`` seconds of the request reaching the app, and no ``idle_timeout`` may pass
  without a byte; else 408 (``request_timeout``) and the connection is closed. (The header deadline
  is Hypercorn's: a connection sending headers is idle to it, so ``keep_alive_timeout`` bounds that;
  ``hypercorn_settings`` gives the matching settings.)
- **Concurrency caps.** At most ``per_source`` requests in flight per source (an IPv4 address, an
  IPv6 /64) and ``total`` in all; beyond, 503 (``busy``) with ``Retry-After``.

Refusals are small msgpack (or JSON, by ``Accept``) bodies ``{"error": code, "limit": n}`` with the
status, and ``Connection: close``. Nothing here looks at signatures: it runs before they are checked,
so unauthenticated floods are bounded too. Being outside the app, they never reach its RefusalLog:
each is told to the operator's log here (``events.refused``, the same rate-limited status+reason key).
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections import Counter
from dataclasses import dataclass

import msgpack
import trio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.events import DaemonEvents

TOO_LARGE = "request_too_large"
TIMEOUT = "request_timeout"
BUSY = "busy"
BAD_LENGTH = "bad_content_length"


@dataclass(frozen=True)
class Limits:
    """What one federation port allows; the defaults suit a person's node and a small vendor."""

    max_body: int = 8 * 1024 * 1024  # bytes in one request body (a full gossip batch fits)
    max_buffered: int = 32 * 1024 * 1024  # bytes of bodies held at once, over all requests
    body_timeout: float = 10.0  # seconds for any body, plus length / min_rate
    min_rate: int = 64 * 1024  # bytes per second a body must at least arrive at
    idle_timeout: float = 5.0  # seconds without a byte of the body
    per_source: int = 16  # requests in flight from one address (IPv6: one /64)
    total: int = 256  # requests in flight in all
    header_timeout: float = 10.0  # Hypercorn: seconds for a connection's headers (and idle keep-alive)

    def __post_init__(self) -> None:
        if min(self.max_body, self.max_buffered, self.min_rate, self.per_source, self.total) < 1:
            raise ValueError("limits must be positive")
        if min(self.body_timeout, self.idle_timeout, self.header_timeout) <= 0:
            raise ValueError("timeouts must be positive")

    def deadline_for(self, length: int | None) -> float:
        """Seconds a body of ``length`` bytes (None: unknown, the cap is assumed) may take."""
        size = self.max_body if length is None else min(length, self.max_body)
        return self.body_timeout + size / self.min_rate


def hypercorn_settings(limits: Limits) -> dict[str, float | int]:
    """Hypercorn ``Config`` attributes matching ``limits`` (set them on the server's config)."""
    return {
        "keep_alive_timeout": limits.header_timeout,  # also bounds a connection trickling its headers
        "read_timeout": int(math.ceil(limits.idle_timeout * 2)),  # a socket silent this long is closed
        "h11_max_incomplete_size": 16 * 1024,  # header bytes held before they are complete
        "backlog": 128,
    }


PROXY_STATE = "vrm.proxy"  # scope key: the trusted proxy a request came through (ForwardedClient)


class ForwardedClient:
    """ASGI middleware, outermost: a request from one of ``trusted_proxies`` counts as coming from
    the address that proxy names last in ``X-Forwarded-For`` (the client it accepted the connection
    from), so budgets and concurrency slots are each client's, not one shared by all behind the proxy;
    the proxy's own address is kept in ``scope[PROXY_STATE]`` (its forwarded host is believed). From
    anyone else the header is ignored: a client cannot choose the source it is counted as."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.trusted_proxies = frozenset(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if self.trusted_proxies and scope["type"] != "lifespan" and client and client[0] in self.trusted_proxies:
            forwarded = _last_forwarded(scope)
            scope = {**scope, PROXY_STATE: client[0], "client": (forwarded, 0) if forwarded else client}
        await self.app(scope, receive, send)


def _last_forwarded(scope: Scope) -> str | None:
    """The rightmost address of the request's ``X-Forwarded-For`` fields (None: none, or not one)."""
    values = [v for k, v in scope.get("headers", ()) if k.lower() == b"x-forwarded-for"]
    if not values:
        return None
    last = values[-1].decode("latin-1").rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return None


def source_of(scope: Scope) -> str:
    """The budget key of a request's source: the IPv4 address, or the IPv6 /64 it is in (behind a
    trusted proxy, the client's it forwarded: ``ForwardedClient``)."""
    client = scope.get("client")
    host = client[0] if client else ""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _Refused(Exception):
    def __init__(self, status: int, error: str, limit: int | float) -> None:
        self.status, self.error, self.limit = status, error, limit


class RequestLimits:
    """The middleware (see the module docstring). ``in_flight`` and ``buffered`` are observable."""

    def __init__(self, app: ASGIApp, *, limits: Limits = Limits(), events: DaemonEvents | None = None) -> None:
        self.app = app
        self.limits = limits
        self.events = events  # the operator's log (None: refusals are only counted)
        self.in_flight: Counter[str] = Counter()
        self.total = 0
        self.buffered = 0
        self.refusals: Counter[str] = Counter()  # by error code, for status and tests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        source = source_of(scope)
        try:
            length = _content_length(scope)
            if length is not None and length > limits.max_body:
                raise _Refused(413, TOO_LARGE, limits.max_body)
            if self.total >= limits.total:
                raise _Refused(503, BUSY, limits.total)
            if self.in_flight[source] >= limits.per_source:
                raise _Refused(503, BUSY, limits.per_source)
        except _Refused as refused:
            await self._refuse(scope, send, refused)
            return
        self.total += 1
        self.in_flight[source] += 1
        held = 0
        complete = started = refused = False
        deadline = trio.current_time() + limits.deadline_for(length)

        async def bounded_send(message: Message) -> None:
            nonlocal started
            if refused:  # we answered already: what the app says next is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def bounded_receive() -> Message:
            # A refusal is answered here, and the app is told the client went away (it stops reading
            # and answers nothing): no exception has to cross the app's own error handling.
            nonlocal held, complete, refused
            if complete or refused:  # the body was read (or refused): later messages are not timed
                return await receive() if not refused else {"type": "http.disconnect"}
            violation: _Refused | None = None
            with trio.move_on_at(min(deadline, trio.current_time() + limits.idle_timeout)):
                message = await receive()
                if message["type"] != "http.request":
                    return message
                chunk = len(message.get("body", b""))
                if held + chunk > limits.max_body:
                    violation = _Refused(413, TOO_LARGE, limits.max_body)
                elif self.buffered + chunk > limits.max_buffered:
                    violation = _Refused(503, BUSY, limits.max_buffered)
                else:
                    held += chunk
                    self.buffered += chunk
                    complete = not message.get("more_body", False)
                    return message
            if violation is None:
                violation = _Refused(408, TIMEOUT, limits.deadline_for(length))
            if not started:
                await self._refuse(scope, send, violation)
            refused = True
            return {"type": "http.disconnect"}

        try:
            await self.app(scope, bounded_receive, bounded_send)
        finally:
            self.buffered -= held  # held until the app is done with the request: it keeps the body
            self.total -= 1
            self.in_flight[source] -= 1
            if not self.in_flight[source]:
                del self.in_flight[source]

    async def _refuse(self, scope: Scope, send: Send, refused: _Refused) -> None:
        self.refusals[refused.error] += 1
        if self.events is not None:  # no signer yet: the key is status and reason, the source only said
            self.events.refused(
                status=refused.status,
                reason=refused.error,
                method=str(scope.get("method", "")),
                path=str(scope.get("path", "")),
                peer=None,
                source=source_of(scope),
            )
        content = {"error": refused.error, "limit": refused.limit}
        accept = b", ".join(v for k, v in scope.get("headers", ()) if k.lower() == b"accept")
        if b"msgpack" in accept:
            body, media = msgpack.packb(content), b"application/msgpack"
        else:
            body, media = json.dumps(content).encode(), b"application/json"
        headers = [(b"content-type", media), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        if refused.status == 503:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": refused.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-length":
            text = value.strip()
            if not text.isdigit() or len(text) > 18:
                raise _Refused(400, BAD_LENGTH, 0)
            return int(text)
    return None
