"""The ``POST /v1/tree`` body (PROTOCOL.md section 13): a GRAFT, an IHAVE and a PRUNE in one MessagePack
map, and its strict decoder (federation/tree.py serves it and drives the relay)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from federation import plumtree as pt
from node.errors import WireError

MAX_IDS = pt.MAX_ANNOUNCE  # entries in one message's ihave, and ids in its graft
MAX_BODY = 128 * 1024  # 1000 ihave entries and 1000 graft ids fit in about 80 KiB
_KEYS = ("graft", "ihave", "prune")


@dataclass(frozen=True, slots=True)
class TreeMessage:
    """One ``POST /v1/tree`` body: any of a GRAFT (``graft`` is ``(eager, ids)``), an IHAVE and a PRUNE."""

    graft: tuple[bool, tuple[bytes, ...]] | None = None
    ihave: tuple[tuple[bytes, int], ...] = ()
    prune: bool = False

    @property
    def cost(self) -> int:
        """Rate tokens: one per id, as a pushed item costs (the request's own token pays one)."""
        return max(1, len(self.ihave) + (len(self.graft[1]) if self.graft else 0))


def encode_tree(msg: TreeMessage) -> bytes:
    body: dict[str, Any] = {}
    if msg.graft is not None:
        body["graft"] = [msg.graft[0], list(msg.graft[1])]
    if msg.ihave:
        body["ihave"] = [[id_, hops] for id_, hops in msg.ihave]
    if msg.prune:
        body["prune"] = True
    return msgpack.packb(body, use_bin_type=True)


def decode_tree(body: bytes) -> TreeMessage:
    """A ``POST /v1/tree`` body; WireError ``too_large`` past MAX_BODY bytes or MAX_IDS entries, else
    ``malformed`` for anything that is not exactly what PROTOCOL.md section 13 gives. Ids that are
    not 32 bytes are left out (as in ``POST /v1/gossip/ids``); hops above 255 count as 255."""
    if len(body) > MAX_BODY:
        raise WireError("too_large", f"a tree message is at most {MAX_BODY} bytes")
    try:
        value = msgpack.unpackb(
            body, raw=False, strict_map_key=True, max_array_len=MAX_IDS, max_map_len=len(_KEYS),
            max_bin_len=64, max_str_len=16, max_ext_len=0,
        )
    except ValueError as exc:
        if "exceeds max_array_len" in str(exc):
            raise WireError("too_large", f"at most {MAX_IDS} entries per list") from None
        if "exceeds max_bin_len" in str(exc):
            raise WireError("too_large", "an id is 32 bytes") from None
        if "exceeds max_" in str(exc):  # more keys than there are, or a key longer than any: not ours
            raise WireError("malformed", "the tree message must be a map with graft, ihave or prune") from None
        raise WireError("malformed", f"the tree message is not MessagePack: {exc}") from None
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise WireError("malformed", f"the tree message is not MessagePack: {exc}") from None
    if not isinstance(value, dict) or not value:
        raise WireError("malformed", "the tree message must be a map with graft, ihave or prune")
    unknown = [k for k in value if k not in _KEYS]
    if unknown:
        raise WireError("malformed", f"unknown key {unknown[0]!r} (graft, ihave, prune)")
    graft = None
    if "graft" in value:
        g = value["graft"]
        if not (isinstance(g, list) and len(g) == 2 and isinstance(g[0], bool) and isinstance(g[1], list)):
            raise WireError("malformed", "graft must be [eager: bool, [id: bin 32, …]]")
        if not all(isinstance(i, bytes) for i in g[1]):
            raise WireError("malformed", "graft ids must be bin")
        graft = (g[0], tuple(i for i in g[1] if len(i) == pt.ID_BYTES))
    ihave: list[tuple[bytes, int]] = []
    if "ihave" in value:
        entries = value["ihave"]
        if not isinstance(entries, list):
            raise WireError("malformed", "ihave must be an array of [id: bin 32, hops: uint]")
        for e in entries:
            if not (isinstance(e, list) and len(e) == 2 and isinstance(e[0], bytes)):
                raise WireError("malformed", "an ihave entry must be [id: bin 32, hops: uint]")
            hops = e[1]
            if type(hops) is not int or hops < 0:
                raise WireError("malformed", "hops must be an unsigned integer")
            if len(e[0]) == pt.ID_BYTES:
                ihave.append((e[0], min(hops, pt.MAX_HOPS)))
    if "prune" in value and value["prune"] is not True:
        raise WireError("malformed", "prune must be true")
    return TreeMessage(graft, tuple(ihave), value.get("prune") is True)
