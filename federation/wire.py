"""The gossip wire: items, batches and the federation API's message bodies (msgpack).

A gossip item is the msgpack array ``[ttl, envelope_bytes]``: ``ttl`` (uint) is how many hops the
envelope may still take after reaching the receiver, clamped to ``MAX_TTL``. A batch is an array of
items (at most ``MAX_ITEMS``, at most ``MAX_BATCH_BYTES`` in all). The wrapping is not signed (each
envelope is), so it is ordinary msgpack; decoding is strict about shape and sizes so that nothing a
peer sends can make us allocate or recurse without bound. Every refusal is a ``WireError``:
``too_large`` (answered 413) or ``malformed`` (answered 400).

An envelope longer than the native MAX_ENVELOPE_BYTES is not a batch error: it is decoded as an item
and refused alone with reason ``too_large`` when verified, like any other bad envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

import msgpack

from node.errors import WireError
from node.nodeid import is_node_id

MEDIA_TYPE = "application/msgpack"
PROTOCOL = 1
MAX_TTL = 8  # hops a receiver allows at most, whatever the sender asked
ORIGIN_TTL = 4  # what the author's node sends
MAX_ITEMS = 1000  # items per batch, per pull response
MAX_BATCH_BYTES = 8 * 1024 * 1024  # a batch body, a pull response body
MAX_SMALL_BODY = 16 * 1024  # hello, node info, error bodies
MAX_URL = 2048
MAX_NAME = 200
PEER_ROLES = ("person", "vendor", "relay")

# Whole-request refusals (the ``error`` of a 400/413/429 body).
MALFORMED_BATCH = "malformed_batch"
TOO_LARGE = "too_large"
RATE_LIMITED = "rate_limited"
MALFORMED_REQUEST = "malformed_request"


class GossipItem(NamedTuple):
    """One ``[ttl, envelope]`` of a batch or page (a tuple: a thousand are built per push, and a
    frozen dataclass costs several times as much to construct)."""

    ttl: int  # 0..MAX_TTL after clamping
    envelope: bytes


class Items(Sequence[GossipItem]):
    """A batch by column: ``ttls`` (one byte per item, 0..MAX_TTL) and ``envelopes``. What a push
    decodes to (``decode_push``) and what the pipeline and admission read: they want a column, never
    an object per item. Indexing gives a ``GossipItem``."""

    __slots__ = ("ttls", "envelopes")

    def __init__(self, ttls: bytes, envelopes: Sequence[bytes]) -> None:
        if len(ttls) != len(envelopes):
            raise ValueError("one ttl per envelope")
        self.ttls, self.envelopes = ttls, envelopes

    @classmethod
    def of(cls, items: Sequence[GossipItem]) -> Items:
        """``items`` by column (itself when it already is), each ttl clamped to 0..MAX_TTL."""
        if isinstance(items, Items):
            return items
        return cls(bytes(min(max(i.ttl, 0), MAX_TTL) for i in items), [i.envelope for i in items])

    def __len__(self) -> int:
        return len(self.envelopes)

    def admitted(self, verdicts: bytes | bytearray) -> Items:
        """The items whose verdict (one per item, admission's) is 0, by column."""
        keep = [i for i, verdict in enumerate(verdicts) if verdict == 0]
        return Items(bytes(self.ttls[i] for i in keep), [self.envelopes[i] for i in keep])

    @overload
    def __getitem__(self, i: int) -> GossipItem: ...
    @overload
    def __getitem__(self, i: slice) -> Items: ...
    def __getitem__(self, i: int | slice) -> GossipItem | Items:
        if isinstance(i, slice):
            return Items(self.ttls[i], self.envelopes[i])
        return GossipItem(self.ttls[i], self.envelopes[i])

    def __iter__(self) -> Iterator[GossipItem]:
        return map(GossipItem, self.ttls, self.envelopes)

    def __repr__(self) -> str:
        return f"<Items: {len(self)}>"


@dataclass(frozen=True, slots=True)
class PullPage:
    """A pull or inbox response: items in seq order and the cursor to ask from next time."""

    items: list[GossipItem]
    next: int


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    role: str
    name: str
    protocol: int
    gossip: tuple[str, ...] = ()  # gossip capabilities ("reconcile/1", "plumtree/1"), PROTOCOL.md section 13


@dataclass(frozen=True, slots=True)
class Hello:
    url: str | None
    role: str
    name: str


# -- items and batches ------------------------------------------------------------------------------


_ITEM_HEADS = tuple(bytes([0x92, ttl]) for ttl in range(MAX_TTL + 1))  # fixarray of 2, the ttl a fixint


def encode_item(ttl: int, envelope: bytes) -> bytes:
    """One gossip item, ``[ttl, envelope]``, as it is queued in the outbox and sent in a batch: the
    bytes ``msgpack.packb`` writes (shortest forms), put together here since a relayed batch makes
    one per envelope and packb builds a Packer each call."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL:
        raise ValueError(f"ttl must be an integer 0..{MAX_TTL}, not {ttl!r}")
    n = len(envelope)
    if n < 1 << 8:
        size = b"\xc4" + n.to_bytes(1, "big")
    elif n < 1 << 16:
        size = b"\xc5" + n.to_bytes(2, "big")
    elif n < 1 << 32:
        size = b"\xc6" + n.to_bytes(4, "big")
    else:
        raise ValueError("an envelope of 4 GiB or more has no msgpack form")
    return b"".join((_ITEM_HEADS[ttl], size, envelope))


def array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` elements (shortest form)."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def encode_batch(encoded_items: Sequence[bytes]) -> bytes:
    """A batch body from items already encoded with ``encode_item`` (no re-encoding)."""
    return array_header(len(encoded_items)) + b"".join(encoded_items)


def _array_length(body: bytes) -> int | None:
    """The element count announced by the array header at the start of ``body`` (None if no array)."""
    if not body:
        return None
    first = body[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC and len(body) >= 3:
        return int.from_bytes(body[1:3], "big")
    if first == 0xDD and len(body) >= 5:
        return int.from_bytes(body[1:5], "big")
    return None


def _unpack(body: bytes, *, max_bytes: int, max_array: int, what: str) -> Any:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise WireError("malformed", f"{what} must be bytes")
    if len(body) > max_bytes:
        raise WireError("too_large", f"{what} is {len(body)} bytes, over the limit of {max_bytes}")
    try:
        return msgpack.unpackb(
            body,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=max_array,
            max_map_len=64,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:  # ValueError covers UTF-8, depth, extra data
        raise WireError("malformed", f"{what} is not valid msgpack: {exc}") from None


def _item(value: Any, index: int) -> GossipItem:
    if not isinstance(value, list) or len(value) != 2:
        raise WireError("malformed", f"item {index} is not an array [ttl, envelope]")
    ttl, envelope = value
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        raise WireError("malformed", f"item {index}: ttl is not an unsigned integer")
    if not isinstance(envelope, bytes):
        raise WireError("malformed", f"item {index}: the envelope is not a byte string")
    return GossipItem(min(ttl, MAX_TTL), envelope)


def _items(value: Any, what: str) -> list[GossipItem]:
    if not isinstance(value, list):
        raise WireError("malformed", f"{what} is not an array of items")
    if len(value) > MAX_ITEMS:
        raise WireError("too_large", f"{what} has {len(value)} items, over the limit of {MAX_ITEMS}")
    out: list[GossipItem] = []
    append = out.append
    for i, v in enumerate(value):
        # The common, well-formed item checked inline (``type(...) is`` refuses bool and subclasses);
        # anything else goes through ``_item``, which says what is wrong with it.
        if type(v) is list and len(v) == 2:
            ttl, envelope = v
            if type(ttl) is int and ttl >= 0 and type(envelope) is bytes:
                append(GossipItem(ttl if ttl <= MAX_TTL else MAX_TTL, envelope))
                continue
        append(_item(v, i))
    return out


def decode_batch(body: bytes) -> list[GossipItem]:
    """The items of a ``POST /v1/gossip`` body. WireError ``too_large`` for more than MAX_ITEMS items
    or MAX_BATCH_BYTES bytes (checked before decoding), ``malformed`` for anything else wrong."""
    count = _array_length(bytes(body[:5]))
    if count is not None and count > MAX_ITEMS:
        raise WireError("too_large", f"the batch has {count} items, over the limit of {MAX_ITEMS}")
    value = _unpack(body, max_bytes=MAX_BATCH_BYTES, max_array=MAX_ITEMS, what="the batch")
    return _items(value, "the batch")


def decode_push(body: bytes, scan: Callable[[bytes, int, int], tuple[bytes, list[bytes]] | None]) -> Items:
    """``decode_batch`` by column, in one pass of ``scan`` (a backend's ``scan_batch``, which accepts
    exactly what ``decode_batch`` accepts and builds no value per item). What it does not accept goes
    through ``decode_batch``, which raises the WireError saying why."""
    if isinstance(body, bytes | bytearray | memoryview) and len(body) <= MAX_BATCH_BYTES:
        scanned = scan(body, MAX_ITEMS, MAX_TTL)
        if scanned is not None:
            return Items(*scanned)
    return Items.of(decode_batch(body))


# -- responses --------------------------------------------------------------------------------------


def encode_reasons(reasons: bytes) -> bytes:
    """The 200 body of a push: one reason byte per item, in order."""
    return msgpack.packb({"reasons": bytes(reasons)}, use_bin_type=True)


def decode_reasons(body: bytes, count: int) -> bytes:
    """The reason bytes of a push response for a batch of ``count`` items (WireError otherwise)."""
    value = _unpack(body, max_bytes=MAX_SMALL_BODY, max_array=16, what="the push response")
    reasons = value.get("reasons") if isinstance(value, dict) else None
    if not isinstance(reasons, bytes):
        raise WireError("malformed", "the push response has no 'reasons' byte string")
    if len(reasons) != count:
        raise WireError("malformed", f"the push response has {len(reasons)} reasons for {count} items")
    return reasons


def encode_pull(items: Iterable[tuple[int, bytes]], next_seq: int) -> bytes:
    """A pull/inbox body ``{"items": [[ttl, env], …], "next": seq}`` (the caller respects the caps)."""
    encoded = [encode_item(min(ttl, MAX_TTL), raw) for ttl, raw in items]
    return b"\x82\xa5items" + encode_batch(encoded) + b"\xa4next" + msgpack.packb(int(next_seq))


def decode_pull(body: bytes) -> PullPage:
    value = _unpack(body, max_bytes=MAX_BATCH_BYTES, max_array=MAX_ITEMS, what="the pull response")
    if not isinstance(value, dict) or "items" not in value or "next" not in value:
        raise WireError("malformed", "the pull response is not a map with 'items' and 'next'")
    next_seq = value["next"]
    if isinstance(next_seq, bool) or not isinstance(next_seq, int) or next_seq < 0:
        raise WireError("malformed", "the pull response's 'next' is not an unsigned integer")
    return PullPage(_items(value["items"], "the pull response"), next_seq)


def error_body(error: str, detail: str | None = None) -> bytes:
    content: dict[str, Any] = {"error": error}
    if detail is not None:
        content["detail"] = detail[:500]
    return msgpack.packb(content, use_bin_type=True)


def decode_error(body: bytes) -> str:
    """The ``error`` of a refusal body, or ``""`` when it has none (never raises)."""
    try:
        value = _unpack(body, max_bytes=MAX_SMALL_BODY, max_array=16, what="the error body")
    except WireError:
        return ""
    error = value.get("error") if isinstance(value, dict) else None
    return error if isinstance(error, str) else ""


# -- node info and hello ----------------------------------------------------------------------------


def _text(value: Any, field: str, max_len: int) -> str:
    if not isinstance(value, str) or len(value) > max_len:
        raise WireError("malformed", f"{field} must be text of at most {max_len} characters")
    return value


def _role(value: Any) -> str:
    if value not in PEER_ROLES:
        raise WireError("malformed", f"role must be one of {', '.join(PEER_ROLES)}")
    return value


def _map(body: bytes, what: str) -> dict[str, Any]:
    # the longest array a small body holds is an access ask's field names
    value = _unpack(body, max_bytes=MAX_SMALL_BODY, max_array=MAX_ACCESS_FIELDS, what=what)
    if not isinstance(value, dict):
        raise WireError("malformed", f"{what} is not a map")
    return value


def encode_node_info(node_id: str, role: str, name: str, *, gossip: tuple[str, ...] = ()) -> bytes:
    info: dict[str, Any] = {"node_id": node_id, "role": role, "name": name, "protocol": PROTOCOL}
    if gossip:  # absent for a node that serves none: legacy receivers see the same answer as before
        info["gossip"] = list(gossip)
    return msgpack.packb(info)


def decode_node_info(body: bytes) -> NodeInfo:
    """``GET /v1/node`` (and hello) response; unknown keys are ignored (later versions may add some)."""
    value = _map(body, "the node info")
    node_id = value.get("node_id")
    if not isinstance(node_id, str) or not is_node_id(node_id):
        raise WireError("malformed", "node_id is not a node id")
    protocol = value.get("protocol")
    if isinstance(protocol, bool) or not isinstance(protocol, int):
        raise WireError("malformed", "protocol is not an integer")
    gossip = value.get("gossip")
    # a capability list we cannot read is no capability: the peer is treated as legacy
    caps = tuple(g for g in gossip[:16] if isinstance(g, str) and len(g) <= 32) if isinstance(gossip, list) else ()
    return NodeInfo(
        node_id, _role(value.get("role")), _text(value.get("name", ""), "name", MAX_NAME), protocol, caps
    )


def encode_hello(url: str | None, role: str, name: str) -> bytes:
    return msgpack.packb({"url": url, "role": role, "name": name})


def decode_hello(body: bytes) -> Hello:
    value = _map(body, "the hello")
    url = value.get("url")
    if url is not None:
        url = _text(url, "url", MAX_URL)
        if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
            raise WireError("malformed", "url must be an http:// or https:// URL")
    return Hello(url, _role(value.get("role")), _text(value.get("name", ""), "name", MAX_NAME))


# -- consented access (POST /v1/access, POST /v1/access/push) ---------------------------------------

ACCESS_REFUSED = "access_refused"  # the ``error`` of a 403 answer to a fetch
VAULT_LOCKED = "vault_locked"  # the ``error`` of a 503: the node runs without its vault key
MAX_ACCESS_FIELDS = 32
MAX_FIELD_NAME = 64
ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class AccessAsk:
    """A fetch: the grant it names and the fields asked (None: every field granted)."""

    grant: bytes
    fields: list[str] | None


@dataclass(frozen=True, slots=True)
class AccessAnswer:
    """A fetch's 200 answer: ``sealed`` opens (info = the grant id) to the canonical map of ``fields``."""

    grant: bytes
    fields: list[str]
    sealed: bytes


@dataclass(frozen=True, slots=True)
class PushItem:
    """One pushed grant's data: ``sealed`` opens (info = ``grant``) to a canonical map of fields."""

    grant: bytes
    version: int
    sealed: bytes


def _grant_id(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != ID_BYTES:
        raise WireError("malformed", f"{what} is not a 32-byte grant id")
    return value


def _field_names(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ACCESS_FIELDS:
        raise WireError("malformed", f"{what} is not a list of 1 to {MAX_ACCESS_FIELDS} field names")
    if not all(isinstance(v, str) and 1 <= len(v) <= MAX_FIELD_NAME for v in value):
        raise WireError("malformed", f"{what} holds something that is not a field name")
    return value


def encode_access_ask(grant: bytes, fields: Sequence[str] | None) -> bytes:
    return msgpack.packb(
        {"grant": bytes(grant), "fields": None if fields is None else list(fields)}, use_bin_type=True
    )


def decode_access_ask(body: bytes) -> AccessAsk:
    """A ``POST /v1/access`` body ``{"grant": bin 32, "fields": [names] or nil}`` (WireError otherwise)."""
    value = _map(body, "the access request")
    if value.keys() != {"fields", "grant"}:  # keys may be bytes too: never sorted against text
        raise WireError("malformed", "the access request is not a map of exactly 'grant' and 'fields'")
    fields = value["fields"]
    return AccessAsk(
        _grant_id(value["grant"], "grant"), None if fields is None else _field_names(fields, "fields")
    )


def encode_access_answer(grant: bytes, fields: Sequence[str], sealed: bytes) -> bytes:
    return msgpack.packb({"grant": bytes(grant), "fields": list(fields), "sealed": bytes(sealed)}, use_bin_type=True)


def decode_access_answer(body: bytes) -> AccessAnswer:
    value = _unpack(body, max_bytes=MAX_BATCH_BYTES, max_array=MAX_ACCESS_FIELDS, what="the access answer")
    if not isinstance(value, dict) or not {"grant", "fields", "sealed"} <= set(value):
        raise WireError("malformed", "the access answer is not a map with 'grant', 'fields' and 'sealed'")
    fields = value["fields"]
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise WireError("malformed", "the access answer's 'fields' is not a list of names")
    if not isinstance(value["sealed"], bytes):
        raise WireError("malformed", "the access answer's 'sealed' is not a byte string")
    return AccessAnswer(_grant_id(value["grant"], "the answer's grant"), fields, value["sealed"])


def access_refusal_body(reason: str) -> bytes:
    """The 403 body of a refused fetch: ``{"error": "access_refused", "reason": label}``."""
    return msgpack.packb({"error": ACCESS_REFUSED, "reason": reason})


def decode_refusal_reason(body: bytes) -> str:
    """The ``reason`` of an ``access_refused`` body, or ``""`` (never raises)."""
    try:
        value = _unpack(body, max_bytes=MAX_SMALL_BODY, max_array=16, what="the refusal")
    except WireError:
        return ""
    if not isinstance(value, dict) or value.get("error") != ACCESS_REFUSED:
        return ""
    reason = value.get("reason")
    return reason if isinstance(reason, str) and len(reason) <= 64 else ""


def encode_push_item(grant: bytes, version: int, sealed: bytes) -> bytes:
    """One item of a ``POST /v1/access/push`` body, as the outbox queues it."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"version must be an unsigned integer, not {version!r}")
    return msgpack.packb([bytes(grant), version, bytes(sealed)], use_bin_type=True)


def decode_push_batch(body: bytes) -> list[PushItem]:
    """The items of a ``POST /v1/access/push`` body: an array of ``[grant bin 32, version uint,
    sealed bin]``, at most MAX_ITEMS (WireError ``too_large`` / ``malformed`` otherwise)."""
    count = _array_length(bytes(body[:5]))
    if count is not None and count > MAX_ITEMS:
        raise WireError("too_large", f"the push has {count} items, over the limit of {MAX_ITEMS}")
    value = _unpack(body, max_bytes=MAX_BATCH_BYTES, max_array=MAX_ITEMS, what="the push")
    if not isinstance(value, list):
        raise WireError("malformed", "the push is not an array of items")
    items: list[PushItem] = []
    for i, v in enumerate(value):
        if not isinstance(v, list) or len(v) != 3:
            raise WireError("malformed", f"item {i} is not an array [grant, version, sealed]")
        grant, version, sealed = v
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise WireError("malformed", f"item {i}: version is not an unsigned integer")
        if not isinstance(sealed, bytes):
            raise WireError("malformed", f"item {i}: sealed is not a byte string")
        items.append(PushItem(_grant_id(grant, f"item {i}'s grant"), version, sealed))
    return items
