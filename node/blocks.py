"""Blocks: vendors a person refuses to hear from (the ``blocked`` table).

An offer from a blocked key is refused with reason ``blocked`` when it arrives, and an offer already
received from it can no longer be accepted. A vendor is named by node id or hex public key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.errors import ConflictError, IdentityError, NotFoundError, ValidationError
from node.nodeid import encode_node_id, parse_node_key
from node.store import Clock, Store, wall_clock_ms

MAX_NOTE = 1000


@dataclass(frozen=True)
class Block:
    public_key: str  # hex
    node_id: str
    note: str
    blocked_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "public_key": self.public_key,
            "node_id": self.node_id,
            "note": self.note,
            "blocked_at": self.blocked_at,
        }


def block_key(ref: object) -> str:
    """The hex public key of a node id or of a hex key; ValidationError for anything else."""
    if not isinstance(ref, str):
        raise ValidationError("ref", "name a node by its node id or hex public key")
    try:
        return parse_node_key(ref).hex()
    except IdentityError as exc:
        raise ValidationError("ref", f"{ref!r} is neither a node id nor a hex public key ({exc})") from None


class Blocks:
    """The person's block list over one Store."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms) -> None:
        self._store = store
        self._clock = clock

    def block(self, ref: str, note: str = "") -> Block:
        """Block a node; ConflictError if it is blocked already."""
        key = block_key(ref)
        if not isinstance(note, str) or len(note.strip()) > MAX_NOTE:
            raise ValidationError("note", f"a note is text of at most {MAX_NOTE} characters")
        row = {
            "public_key": key,
            "node_id": encode_node_id(bytes.fromhex(key)),
            "note": note.strip(),
            "blocked_at": self._clock(),
        }
        with self._store.transaction():
            if self.is_blocked(key):
                raise ConflictError(f"{row['node_id']} is already blocked")
            self._store.insert("blocked", row)
        return Block(**row)

    def unblock(self, ref: str) -> Block:
        """Lift a block; the block lifted. NotFoundError if the node is not blocked."""
        key = block_key(ref)
        with self._store.transaction():
            row = self._store.query_one("SELECT * FROM blocked WHERE public_key = ?", [key])
            if row is None:
                raise NotFoundError("block", ref)
            self._store.execute("DELETE FROM blocked WHERE public_key = ?", [key])
        return Block(**row)

    def is_blocked(self, public_key_hex: str) -> bool:
        return self._store.query_one("SELECT 1 FROM blocked WHERE public_key = ?", [public_key_hex]) is not None

    def list(self) -> list[Block]:
        return [Block(**r) for r in self._store.query("SELECT * FROM blocked ORDER BY blocked_at, public_key")]
