"""Our generated test vectors (protocol.json, edge.json) and the helpers to read them.

The files are written by ``python -m tests.vectors.generate``; never edit them by hand. In their JSON,
bytes inside an envelope body are written as an object with the single key "hex", and a refused
encoding too big to store is written as "hex_parts" (see ``refused_bytes``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(__file__).resolve().parent


def load(name: str) -> dict[str, Any]:
    """The parsed vector file ``name`` ("protocol" or "edge")."""
    return json.loads((VECTORS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def to_json(value: Any) -> Any:
    """A canonical value as JSON: bytes become {"hex": ...}, tuples lists."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        if list(value) == ["hex"] and isinstance(value["hex"], str):  # would read back as bytes
            raise ValueError('a map whose only key is "hex" cannot be written in the vectors\' JSON form')
        return {key: to_json(item) for key, item in value.items()}
    return value


def from_json(value: Any) -> Any:
    """The inverse of ``to_json``."""
    if isinstance(value, dict):
        if list(value) == ["hex"]:
            return bytes.fromhex(value["hex"])
        return {key: from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json(item) for item in value]
    return value


def refused_bytes(vector: dict[str, Any]) -> bytes:
    """The bytes of a refused vector: its "hex", or its "hex_parts" (each {"hex", "repeat"} joined)."""
    if "hex" in vector:
        return bytes.fromhex(vector["hex"])
    return b"".join(bytes.fromhex(part["hex"]) * part.get("repeat", 1) for part in vector["hex_parts"])
