"""The signed client of another node's federation API (PROTOCOL.md section 6 and the gossip routes).

Every request is signed with ``SignatureAuth`` as this node's identity and runs under
``trio.fail_after(timeout)``. Failures are typed: ``DeliveryError`` for a timeout, a transport error or
a refusing status (``retry`` tells whether trying later may help), ``WireError`` for an answer that
is not what the protocol says, ``AccessRefused`` (with the reason's label) for a fetch the person's
node refused. ``url`` arguments are a peer's base URL (``http://host:port``).

A 401 ``stale`` is a peer that just restarted refusing what was signed up to its replay floor
(federation/noncecache.py): the request was not processed, so it is signed afresh and sent again a
second later, at most ``STALE_RETRIES`` times (as the deliverer does), rather than failing the pull.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from dataclasses import dataclass

from federation import catchup, wire
from federation.auth import SignatureAuth
from federation.delivery import send_resigned
from node.backends import NATIVE, Backend
from node.errors import AccessRefused, DeliveryError, VrmError, WireError
from node.identity import Identity
from node.seal import open_sealed

MEDIA_TYPE = wire.MEDIA_TYPE
PERMANENT = frozenset({400, 401, 403, 404, 405, 413, 415, 422})  # resending the same request cannot help


@dataclass(frozen=True)
class Fetched:
    """What a fetch returned: the grant's id (hex), the fields answered and their values."""

    grant: str
    fields: list[str]
    values: dict[str, str]


class PeerClient:
    """``PeerClient(identity, http, timeout)``; without ``http`` it opens (and closes) its own client
    when used as ``async with``."""

    def __init__(
        self,
        identity: Identity,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        *,
        backend: Backend = NATIVE,
    ) -> None:
        self._identity = identity
        self._backend = backend
        self._auth = SignatureAuth(identity)
        self._http = http
        self._owned = http is None
        self.timeout = timeout

    async def __aenter__(self) -> PeerClient:
        if self._http is None:
            self._http = httpx.AsyncClient()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._owned and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _request(
        self, method: str, url: str, path: str, *, body: bytes = b"", params=None, answered=frozenset()
    ) -> httpx.Response:
        """The response; a status outside 2xx and ``answered`` raises DeliveryError."""
        if self._http is None:
            raise RuntimeError("use `async with PeerClient(identity):` or pass an httpx.AsyncClient")
        headers = {"Accept": MEDIA_TYPE}
        if body:
            headers["Content-Type"] = MEDIA_TYPE
        target = url.rstrip("/") + path
        http = self._http
        response = await send_resigned(  # the auth signs each attempt anew
            lambda: http.request(method, target, content=body, params=params, headers=headers, auth=self._auth),
            self.timeout,
            f"{method} {target}: ",
        )
        if not response.is_success and response.status_code not in answered:
            error = wire.decode_error(response.content) or response.headers.get("vrm-signature-error", "")
            detail = f"{method} {target}: HTTP {response.status_code}" + (f" {error}" if error else "")
            raise DeliveryError(detail, retry=response.status_code not in PERMANENT)
        return response

    async def node_info(self, url: str) -> wire.NodeInfo:
        """``GET /v1/node``: who answers at ``url`` (its node id, role and name)."""
        return wire.decode_node_info((await self._request("GET", url, "/v1/node")).content)

    async def hello(self, url: str, my_url: str | None, role: str, name: str) -> wire.NodeInfo:
        """``POST /v1/hello``: announce ourselves (our public URL, or None behind NAT); the peer's info."""
        body = wire.encode_hello(my_url, role, name)
        return wire.decode_node_info((await self._request("POST", url, "/v1/hello", body=body)).content)

    async def push(self, url: str, items: Sequence[wire.GossipItem | bytes]) -> bytes:
        """``POST /v1/gossip``: one reason byte per item. Items are GossipItems or already encoded."""
        encoded = [i if isinstance(i, bytes | bytearray) else wire.encode_item(i.ttl, i.envelope) for i in items]
        response = await self._request("POST", url, "/v1/gossip", body=wire.encode_batch(encoded))
        return wire.decode_reasons(response.content, len(encoded))

    async def pull(self, url: str, after: int = 0, limit: int = wire.MAX_ITEMS) -> wire.PullPage:
        """``GET /v1/gossip?after=&limit=``: the peer's live envelopes after seq ``after``."""
        params = {"after": str(after), "limit": str(limit)}
        return wire.decode_pull((await self._request("GET", url, "/v1/gossip", params=params)).content)

    async def reconcile(self, url: str, msg: bytes, filter_text: str = "") -> bytes:
        """``POST /v1/reconcile``: the peer's answer to one reconciliation message."""
        body = catchup.encode_request(filter_text, msg)
        return catchup.decode_answer((await self._request("POST", url, "/v1/reconcile", body=body)).content)

    async def gossip_by_ids(self, url: str, ids: Sequence[bytes]) -> wire.PullPage:
        """``POST /v1/gossip/ids``: those of ``ids`` the peer serves (at most catchup.MAX_FETCH)."""
        body = catchup.encode_ids(ids)
        return wire.decode_pull((await self._request("POST", url, "/v1/gossip/ids", body=body)).content)

    async def tree(self, url: str, body: bytes) -> None:
        """``POST /v1/tree``: one encoded Plumtree message (federation/tree.py)."""
        await self._request("POST", url, "/v1/tree", body=body)

    async def inbox(self, url: str, after: int = 0, limit: int = wire.MAX_ITEMS) -> wire.PullPage:
        """``GET /v1/inbox?after=&limit=``: envelopes the peer holds addressed to us."""
        params = {"after": str(after), "limit": str(limit)}
        return wire.decode_pull((await self._request("GET", url, "/v1/inbox", params=params)).content)

    async def fetch(self, url: str, grant: bytes | str, fields: Sequence[str] | None = None) -> Fetched:
        """``POST /v1/access``: the values of ``fields`` (None: every field granted) under ``grant``
        (its id), opened with our key. AccessRefused(reason) when the person's node refuses; WireError
        when the answer is not for that grant or does not open to exactly the fields it names."""
        grant_id = bytes.fromhex(grant) if isinstance(grant, str) else bytes(grant)
        body = wire.encode_access_ask(grant_id, None if fields is None else list(fields))
        response = await self._request("POST", url, "/v1/access", body=body, answered=frozenset({403}))
        if response.status_code == 403:
            reason = wire.decode_refusal_reason(response.content)
            if not reason:
                raise DeliveryError(f"POST {url}/v1/access: HTTP 403", retry=False)
            raise AccessRefused(reason)
        answer = wire.decode_access_answer(response.content)
        if answer.grant != grant_id:
            raise WireError("malformed", "the access answer is for another grant")
        try:
            values = self._backend.decode(open_sealed(self._identity, answer.sealed, info=grant_id))
        except VrmError as exc:
            raise WireError("malformed", f"the access answer does not open: {exc}") from None
        if (
            not isinstance(values, dict)
            or sorted(values) != sorted(answer.fields)
            or not all(isinstance(v, str) for v in values.values())
        ):
            raise WireError("malformed", "the sealed values are not exactly the fields the answer names")
        return Fetched(grant_id.hex(), sorted(values), values)

    async def push_data(self, url: str, items: Sequence[wire.PushItem | bytes]) -> bytes:
        """``POST /v1/access/push``: one reason byte per item. Items are PushItems or already encoded."""
        encoded = [
            i if isinstance(i, bytes | bytearray) else wire.encode_push_item(i.grant, i.version, i.sealed)
            for i in items
        ]
        response = await self._request("POST", url, "/v1/access/push", body=wire.encode_batch(encoded))
        return wire.decode_reasons(response.content, len(encoded))
