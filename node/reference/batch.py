"""Pure-Python twin of the native ``scan_batch`` (native/src/batch.rs): a pushed gossip batch's items
by column, read byte by byte as the Rust does, so the two can be fuzzed against each other. The
contract both keep: accept exactly the bodies ``federation.wire.decode_batch`` accepts (an array of
at most ``max_items`` ``[ttl, envelope]`` pairs, an unsigned ttl in any integer encoding, the
envelope a byte string, nothing after), answering ``(ttls, envelopes)`` with each ttl clamped to
``max_ttl``; anything else is None.
"""

from __future__ import annotations

_SIGNED = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
_UNSIGNED = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_BIN = {0xC4: 1, 0xC5: 2, 0xC6: 4}
_ARRAY = {0xDC: 2, 0xDD: 4}


class _Short(Exception):
    """The body ends, or holds something else, where a batch needs more."""


def scan_batch(body: bytes, max_items: int, max_ttl: int) -> tuple[bytes, list[bytes]] | None:
    data = bytes(body)
    at = 0

    def take(width: int) -> int:
        nonlocal at
        if at + width > len(data):
            raise _Short
        value = int.from_bytes(data[at : at + width], "big")
        at += width
        return value

    def array_len() -> int:
        head = take(1)
        if 0x90 <= head <= 0x9F:
            return head & 0x0F
        if head in _ARRAY:
            return take(_ARRAY[head])
        raise _Short

    def uint() -> int:
        head = take(1)
        if head <= 0x7F:
            return head
        if head in _UNSIGNED:
            return take(_UNSIGNED[head])
        if head in _SIGNED:
            width = _SIGNED[head]
            value = take(width)
            if value >> (8 * width - 1):  # negative
                raise _Short
            return value
        raise _Short

    def binary() -> bytes:
        nonlocal at
        head = take(1)
        if head not in _BIN:
            raise _Short
        length = take(_BIN[head])
        if at + length > len(data):
            raise _Short
        at += length
        return data[at - length : at]

    try:
        count = array_len()
        if count > max_items:
            return None
        ttls, envelopes = bytearray(), []
        for _ in range(count):
            if array_len() != 2:
                return None
            ttls.append(min(uint(), max_ttl))
            envelopes.append(binary())
    except _Short:
        return None
    return (bytes(ttls), envelopes) if at == len(data) else None
