"""Signed node-to-node HTTP at the edges: an httpx ``Auth`` that signs, an ASGI middleware that verifies.

Both only translate between their framework's request and ``httpsig.RequestParts``; every decision is
in ``federation.httpsig``. Clocks are injected (``clock`` returns Unix seconds) so tests need no sleeping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Container, Generator
from typing import TYPE_CHECKING

import httpx
import msgpack
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from federation import wire
from federation.httpsig import MAX_SKEW, RequestParts, VerifiedRequest, new_nonce, sign_request, verify_request
from federation.limits import PROXY_STATE, source_of
from federation.noncecache import NonceCache
from node.errors import RequestSignatureError
from node.identity import Identity

if TYPE_CHECKING:
    from federation.admission import Admission

MAX_BODY = 8 * 1024 * 1024  # the body is hashed before anything else; an unbounded read is a free DoS
REASON_HEADER = "Vrm-Signature-Error"
PEER_STATE = "peer"  # request.state.peer: the VerifiedRequest of the signer
BODY_STATE = "signed_body"  # request.state.signed_body: the body its signature covers


class SignatureAuth(httpx.Auth):
    """Sign every request of an httpx client as ``identity`` (PROTOCOL.md section 6).

    Each request (each redirect hop too) gets a fresh nonce and ``created = int(clock())``.
    """

    requires_request_body = True  # the body is digested, so httpx must read it before signing

    def __init__(
        self,
        identity: Identity,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self._identity = identity
        self._clock = clock
        self._nonce = nonce

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        fields = sign_request(parts_from_httpx(request), self._identity, now=int(self._clock()), nonce=self._nonce())
        request.headers.update(fields)
        yield request


def parts_from_httpx(request: httpx.Request) -> RequestParts:
    """The signable parts of an outgoing httpx request (its body already read)."""
    url = request.url
    return RequestParts(
        method=request.method,
        scheme=url.scheme,
        authority=request.headers.get("host") or url.netloc.decode("ascii"),
        target=url.raw_path.decode("ascii"),
        headers=tuple(request.headers.multi_items()),
        body=request.content,
    )


def parts_from_scope(scope: Scope, body: bytes, *, forwarded: bool = False) -> RequestParts:
    """The signable parts of an incoming ASGI HTTP request, as received (no decoding of the path).

    ``forwarded``: the request came through a trusted reverse proxy, so the authority and scheme the
    signer used are the proxy's ``X-Forwarded-Host`` / ``X-Forwarded-Proto`` (the last entry: the one
    the nearest proxy set) when it sends them. Path, query and body must arrive as signed."""
    headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ()))
    authority = next((v for k, v in headers if k.lower() == "host"), None)
    scheme = scope.get("scheme", "http")
    if forwarded:
        authority = _last(headers, "x-forwarded-host") or authority
        scheme = _last(headers, "x-forwarded-proto") or scheme
    if authority is None and scope.get("server"):
        host, port = scope["server"]
        authority = f"{host}:{port}" if port is not None else host
    raw_path = scope.get("raw_path")
    # Older servers put the query in raw_path too; the query is taken from query_string only.
    path = raw_path.split(b"?", 1)[0].decode("latin-1") if raw_path else scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return RequestParts(
        method=scope["method"],
        scheme=scheme,
        authority=authority or "",
        target=f"{path}?{query}" if query else path,
        headers=headers,
        body=body,
    )


def _last(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    values = [v.strip() for k, v in headers if k.lower() == name for v in v.split(",") if v.strip()]
    return values[-1] if values else None


def signature_error_response(error: RequestSignatureError, accept: str = "") -> Response:
    """The 401 for a refused signature: ``{"error": "bad_request_signature", "reason": …}`` as msgpack
    when the client accepts msgpack, else JSON; the reason is also in the ``Vrm-Signature-Error`` header."""
    content = {"error": "bad_request_signature", "reason": error.reason}
    return _error_response(
        401, content, accept, {REASON_HEADER: error.reason, "WWW-Authenticate": 'Signature realm="vrm"'}
    )


def _error_response(status: int, content: dict, accept: str, headers: dict[str, str] | None = None) -> Response:
    if "msgpack" in accept:
        return Response(msgpack.packb(content), status, headers, media_type="application/msgpack")
    return Response(json.dumps(content), status, headers, media_type="application/json")


def verified_peer(request: Request) -> VerifiedRequest:
    """The verified signer of a request that passed ``SignatureMiddleware``."""
    return getattr(request.state, PEER_STATE)


def signed_body(request: Request) -> bytes:
    """The body of a request that passed ``SignatureMiddleware``, as it was read to check the digest
    its signature covers: handlers take it from here rather than read the request again (Starlette's
    ``body()`` would copy a push's few hundred kilobytes once more)."""
    return getattr(request.state, BODY_STATE)


class SignatureMiddleware:
    """ASGI middleware: only requests with a valid vrm signature reach ``app``; others get a 401.

    In order: the request spends a token of its source's and of the node's budget (``admission``;
    503 ``busy`` when spent), so forged and unsigned requests pay as signed ones do; the body is read
    (at most ``max_body`` bytes, else 413) because the signature covers its digest; the signature is
    checked (``federation.httpsig.verify_request``, its ``@authority`` against ``authorities`` before
    any hashing); the body is replayed to ``app``. The handler finds the signer in ``request.state.peer``
    (``verified_peer``) and the body in ``request.state.signed_body`` (``signed_body``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        nonces: NonceCache,
        clock: Callable[[], float] = time.time,
        max_skew: int = MAX_SKEW,
        accept_key: Callable[[bytes], bool] | None = None,
        max_body: int = MAX_BODY,
        trusted_proxies: frozenset[str] = frozenset(),
        authorities: Container[str] | None = None,
        admission: Admission | None = None,
    ) -> None:
        """``trusted_proxies``: peer addresses (reverse proxies on this host or network) whose
        X-Forwarded-Host and X-Forwarded-Proto name what the signer signed; from anyone else those
        fields are ignored, so no client can choose the authority its signature is checked against.
        ``authorities``: this node's own ``@authority`` values (``httpsig.OwnAuthorities`` or a
        frozenset of ``httpsig.authority_of`` values), the forwarded one checked against them too; a
        request signed for another is refused ``wrong_authority``. None: not checked (in-process use).
        ``admission``: the source and global budgets every request spends (None: no budget)."""
        self.app = app
        self.nonces = nonces
        self.clock = clock
        self.max_skew = max_skew
        self.accept_key = accept_key
        self.max_body = max_body
        self.trusted_proxies = frozenset(trusted_proxies)
        self.authorities = authorities
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no unsigned side doors (websockets) into the federation API
            await send({"type": "websocket.close", "code": 1008})
            return
        accept = _header(scope, b"accept")
        source = source_of(scope)
        if self.admission is not None and not self.admission.request(source):
            retry = {"Retry-After": self.admission.retry_after_header(source)}
            await Response(wire.error_body("busy"), 503, retry, media_type=wire.MEDIA_TYPE)(scope, receive, send)
            return
        try:
            body = await _read_body(receive, self.max_body)
        except _BodyTooLarge:
            limit = {"error": "request_too_large", "limit": self.max_body}
            await _error_response(413, limit, accept)(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        try:
            peer = verify_request(
                parts_from_scope(scope, body, forwarded=self._via_proxy(scope)),
                now=int(self.clock()),
                nonces=self.nonces,
                max_skew=self.max_skew,
                accept_key=self.accept_key,
                authorities=self.authorities,
            )
        except RequestSignatureError as exc:
            await signature_error_response(exc, accept)(scope, receive, send)
            return
        scope = {**scope, "state": {**scope.get("state", {}), PEER_STATE: peer, BODY_STATE: body}}
        await self.app(scope, _replay(body, receive), send)


    def _via_proxy(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not self.trusted_proxies:
            return False
        proxy = scope.get(PROXY_STATE)  # ForwardedClient put the client it forwarded in "client"
        if proxy is not None:
            return proxy in self.trusted_proxies
        return client is not None and client[0] in self.trusted_proxies


def _header(scope: Scope, name: bytes) -> str:
    return ", ".join(v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name)


class _BodyTooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body (None if the client went away); _BodyTooLarge past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
