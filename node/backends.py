"""The two implementations of the message layer behind one interface.

``NATIVE`` is the Rust core (node._native), ``REFERENCE`` its pure-Python twin (node.reference). Both
expose exactly the functions of node/_native.pyi; tests parametrize over them by name with
``get_backend``. The native module is imported on first use, so the reference (and everything
that only names NATIVE) works before the extension is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any, Protocol


class IngestResultLike(Protocol):
    codes: bytes
    ids: bytes
    kinds: bytes
    authors: bytes
    created: bytes
    expires: bytes
    bodies: list[Any]
    match_offsets: bytes
    match_ids: bytes

    def __len__(self) -> int: ...
    def body(self, i: int) -> Any: ...
    def intents_json(self, indexes: Sequence[int]) -> list[tuple[str, str]]: ...
    def matched(self, i: int) -> list[int]: ...


class VerifierLike(Protocol):
    def verify_batch(self, envelopes: Sequence[bytes], now_ms: int) -> tuple[bytes, bytes]: ...
    def verify_one(self, envelope: bytes, now_ms: int) -> tuple[int, bytes]: ...
    def cache_len(self) -> int: ...
    def ingest(self, envelopes: Sequence[bytes], now_ms: int, index: Any = None) -> IngestResultLike: ...
    def remember(self, ids: bytes) -> None: ...
    def recent_len(self) -> int: ...


class MatchIndexLike(Protocol):
    def __len__(self) -> int: ...
    def add(self, subscriptions: Iterable[tuple]) -> None: ...
    def remove(self, ids: Iterable[int]) -> int: ...
    def heap_bytes(self) -> int: ...
    def match_bodies(self, bodies: Sequence[bytes]) -> tuple[bytes, bytes, bytes]: ...
    def match_envelopes(self, envelopes: Sequence[bytes]) -> tuple[bytes, bytes, bytes]: ...


class Backend(Protocol):
    """The interface of node/_native.pyi (see there for each contract)."""

    name: str
    PROTOCOL_VERSION: int
    SIGNING_PREFIX: bytes
    MAX_ENVELOPE_BYTES: int
    MAX_DEPTH: int
    MAX_CLOCK_SKEW_MS: int
    KINDS: tuple[str, ...]
    MAX_LIFETIME_MS: dict[str, int]
    NO_KIND: int
    MAX_INTENT_CHARS: int
    MAX_INTENT_NAME_CHARS: int
    INTENT_UNICODE_VERSION: str
    MATCH_OK: int
    MATCH_MALFORMED: int
    MATCH_NOT_INTENT: int
    MATCH_OPS: tuple[str, ...]
    MATCH_KINDS: tuple[str, ...]

    def encode(self, value: Any) -> bytes: ...
    def decode(self, data: bytes) -> Any: ...
    def signed_bytes(self, author: bytes, body: Any, created: int, expires: int, kind: str) -> bytes: ...
    def encode_envelope(
        self, author: bytes, body: Any, created: int, expires: int, kind: str, sig: bytes
    ) -> bytes: ...
    def decode_envelope(self, data: bytes) -> tuple[int, str, bytes, int, int, Any, bytes, bytes, bytes]: ...
    def Verifier(  # noqa: N802 (the class)
        self, key_cache_size: int = 4096, *, threads: int | None = None, recent_ids: int = 262_144
    ) -> VerifierLike: ...
    def ed25519_verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...
    def ed25519_verify_batch(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> bytes: ...
    def ed25519_batch_check(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> bool: ...
    def parse_intent(self, text: str) -> dict[str, Any]: ...
    def scan_batch(self, body: bytes, max_items: int, max_ttl: int) -> tuple[bytes, list[bytes]] | None: ...
    def MatchIndex(self, subscriptions: Iterable[tuple]) -> MatchIndexLike: ...  # noqa: N802 (the class)


_INTERFACE = frozenset(
    {"PROTOCOL_VERSION", "SIGNING_PREFIX", "MAX_ENVELOPE_BYTES", "MAX_DEPTH", "MAX_CLOCK_SKEW_MS", "KINDS"}
    | {"MAX_LIFETIME_MS", "NO_KIND"}
    | {"encode", "decode", "signed_bytes", "encode_envelope", "decode_envelope", "Verifier"}
    | {"ed25519_verify", "ed25519_verify_batch", "ed25519_batch_check"}
    | {"MAX_INTENT_CHARS", "MAX_INTENT_NAME_CHARS", "INTENT_UNICODE_VERSION", "parse_intent", "scan_batch"}
    | {"MatchIndex", "MATCH_OK", "MATCH_MALFORMED", "MATCH_NOT_INTENT", "MATCH_OPS", "MATCH_KINDS"}
)


class ModuleBackend:
    """A Backend forwarding the interface's names to a module, imported when first needed."""

    def __init__(self, name: str, module_name: str) -> None:
        self.name = name
        self._module_name = module_name
        self._module: ModuleType | None = None

    @property
    def module(self) -> ModuleType:
        """The module itself (raises ImportError when it is not available)."""
        if self._module is None:
            self._module = importlib.import_module(self._module_name)
        return self._module

    def available(self) -> bool:
        """Whether the module imports (False for the native core before it is built)."""
        try:
            self.module
        except ImportError:
            return False
        return True

    def __getattr__(self, attr: str) -> Any:
        if attr not in _INTERFACE:
            raise AttributeError(f"{attr!r} is not part of the backend interface")
        return getattr(self.module, attr)

    def __repr__(self) -> str:
        return f"<backend {self.name}: {self._module_name}>"


NATIVE = ModuleBackend("native", "node._native")
REFERENCE = ModuleBackend("reference", "node.reference")
BACKENDS = {"native": NATIVE, "reference": REFERENCE}


def get_backend(name: str) -> ModuleBackend:
    """``"native"`` or ``"reference"``."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(BACKENDS)}") from None
