"""Discovery pieces that need no I/O: bootstrap peers from the home's config and the peer-exchange
message (a verified peer tells us about others). Nothing learnt here is trusted: each candidate is
dialled and verified (``GET /v1/node`` pinned to the announced node id) before it becomes a peer, and
candidates are bounded per source and in all (see the open-network defences: announced peers are
served by pull, never pushed to, until verified).

Peer exchange body (``GET /v1/peers`` answer, ordinary MessagePack): ``{"peers": [[node_id: text (bech32m, as
``node.nodeid``), url: text, role: text], …]}``, at most ``MAX_EXCHANGE`` entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgpack

from federation.wire import MAX_SMALL_BODY, MAX_URL, PEER_ROLES
from node.errors import WireError
from node.nodeid import is_node_id

MAX_EXCHANGE = 64  # candidates taken from one peer's answer
MAX_CANDIDATES = 256  # candidates awaiting verification, in all
PER_SOURCE = 16  # candidates awaiting verification from one source (a peer, or the LAN)


@dataclass(frozen=True, slots=True)
class Candidate:
    node_id: str | None  # None for a bootstrap URL given without an id
    url: str
    role: str | None
    source: str  # "bootstrap", "exchange:<node id of who told us>", "mdns"


def _url(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_URL:
        return None
    try:  # a peer's answer may hold anything: an unclosed "[", a port out of range
        parts = urlsplit(value)
        hostname, _ = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not hostname or parts.username or parts.password:
        return None
    return value.rstrip("/")


def bootstrap(config: Mapping[str, Any]) -> list[Candidate]:
    """The ``bootstrap`` list of the home's config: entries ``"URL"`` or ``{"url": URL, "id": NODE_ID}``.
    A malformed entry is a ValueError naming it (the operator wrote it)."""
    out = []
    for k, entry in enumerate(config.get("bootstrap", [])):
        raw = entry if isinstance(entry, str) else entry.get("url") if isinstance(entry, dict) else None
        node_id = entry.get("id") if isinstance(entry, dict) else None
        url = _url(raw)
        if url is None or (node_id is not None and not is_node_id(node_id)):
            raise ValueError(f"bootstrap entry {k} must be an http(s) URL or {{url, id}}: {entry!r}")
        out.append(Candidate(node_id, url, None, "bootstrap"))
    return out


def encode_exchange(peers: Iterable[tuple[str, str, str]]) -> bytes:
    return msgpack.packb({"peers": [list(p) for p in list(peers)[:MAX_EXCHANGE]]}, use_bin_type=True)


def decode_exchange(body: bytes, sender: str, *, own_id: str, known: Iterable[str] = ()) -> list[Candidate]:
    """A peer-exchange answer from the verified peer ``sender``: bad entries are skipped, the rest
    bounded; ourselves, the sender and peers already known are left out."""
    if len(body) > MAX_SMALL_BODY * 4:
        raise WireError("too_large", "a peer-exchange answer is at most 64 KiB")
    try:
        value = msgpack.unpackb(body, raw=False, max_array_len=MAX_EXCHANGE * 4, max_map_len=8, max_str_len=MAX_URL)
    except Exception:
        raise WireError("malformed", "a peer-exchange answer is a MessagePack map") from None
    if not isinstance(value, dict) or not isinstance(value.get("peers"), list):
        raise WireError("malformed", 'expected {"peers": [...]}')
    skip = {own_id, sender, *known}
    out: list[Candidate] = []
    for entry in value["peers"]:
        if len(out) >= MAX_EXCHANGE:
            break
        if not (isinstance(entry, list) and len(entry) == 3):
            continue
        node_id, raw_url, role = entry
        url = _url(raw_url)
        if not (isinstance(node_id, str) and is_node_id(node_id)) or url is None or role not in PEER_ROLES:
            continue
        if node_id in skip:
            continue
        skip.add(node_id)
        out.append(Candidate(node_id, url, role, f"exchange:{sender}"))
    return out


class CandidatePool:
    """Candidates awaiting verification, bounded in all (the oldest are forgotten first) and per
    source (``per_source``: one peer's answers cannot fill the pool and crowd out the others'). The
    first source to name a node keeps its entry until it is taken: another cannot evict it, nor point
    it at a URL of its own."""

    def __init__(self, limit: int = MAX_CANDIDATES, per_source: int = PER_SOURCE) -> None:
        self.limit = limit
        self.per_source = per_source
        self._items: dict[str, Candidate] = {}

    def add(self, candidates: Iterable[Candidate]) -> int:
        """Add ``candidates``; how many were taken (beyond a source's quota the rest are dropped)."""
        taken = 0
        for c in candidates:
            key = c.node_id or c.url
            if key in self._items:
                continue
            if sum(1 for other in self._items.values() if other.source == c.source) >= self.per_source:
                continue
            self._items[key] = c
            taken += 1
            while len(self._items) > self.limit:
                self._items.pop(next(iter(self._items)))
        return taken

    def take(self, n: int | None = None) -> list[Candidate]:
        """The ``n`` oldest candidates (all when None), removed from the pool."""
        keys = list(self._items)[: len(self._items) if n is None else n]
        return [self._items.pop(k) for k in keys]

    def __len__(self) -> int:
        return len(self._items)

    def pending(self) -> list[Candidate]:
        return list(self._items.values())
