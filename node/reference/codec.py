"""Canonical MessagePack subset (PROTOCOL.md section 1), by hand, in plain Python.

This is the reference the native codec is checked against, so it favours being obviously correct
over being fast: one function per direction, the type bytes spelled out, and every check placed in
the order PROTOCOL.md gives, because the first problem met decides the reason code.
"""

from __future__ import annotations

from typing import Any

from node.errors import EnvelopeError
from node.reasons import Reason

MAX_ENVELOPE_BYTES = 65536
MAX_DEPTH = 16  # the outermost value is at depth 1; a container at depth 16 may hold only scalars

_UINT_MAX = 2**64 - 1
_INT_MIN = -(2**63)

# The length forms of each family: (type byte, width in bytes, smallest length that needs it).
_STR_FORMS = ((0xD9, 1, 32), (0xDA, 2, 2**8), (0xDB, 4, 2**16))  # below 32: fixstr
_BIN_FORMS = ((0xC4, 1, 0), (0xC5, 2, 2**8), (0xC6, 4, 2**16))  # no fix form for bytes
_ARRAY_FORMS = ((0xDC, 2, 16), (0xDD, 4, 2**16))  # below 16: fixarray
_MAP_FORMS = ((0xDE, 2, 16), (0xDF, 4, 2**16))  # below 16: fixmap
_UINT_FORMS = ((0xCC, 1, 2**7), (0xCD, 2, 2**8), (0xCE, 4, 2**16), (0xCF, 8, 2**32))  # below 128: fixint
# Signed forms hold values from -2**(8w-1) up to a bound below which a shorter form would not do.
_INT_FORMS = ((0xD0, 1, -32), (0xD1, 2, -(2**7)), (0xD2, 4, -(2**15)), (0xD3, 8, -(2**31)))


# -- encoding ----------------------------------------------------------------------------------


def encode(value: Any) -> bytes:
    """Canonical encoding of None/bool/int/str/bytes/list/tuple/dict (str keys only).

    Raises EnvelopeError: FLOAT_FORBIDDEN for a float, WRONG_TYPE for any other type, a non-str key
    or an int outside -2**63 .. 2**64-1, TOO_DEEP for a container deeper than MAX_DEPTH. The first
    problem met wins, visiting depth first in output order, except that a dict's keys are all
    checked (in the dict's own order) before any of its values. No size cap (callers cap envelopes).
    """
    out = bytearray()
    _encode(value, 1, out)
    return bytes(out)


def _encode(value: Any, depth: int, out: bytearray) -> None:
    # bool before int: True is an int in Python but not in the protocol.
    if value is None:
        out.append(0xC0)
    elif value is False:
        out.append(0xC2)
    elif value is True:
        out.append(0xC3)
    elif isinstance(value, int):
        _encode_int(value, out)
    elif isinstance(value, float):
        raise EnvelopeError(Reason.FLOAT_FORBIDDEN, "floats are refused; use integer minor units")
    elif isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates have no UTF-8 form
            raise EnvelopeError(Reason.WRONG_TYPE, "text is not valid Unicode") from None
        _write_length(len(data), 0xA0, 32, _STR_FORMS, out)
        out += data
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        _write_length(len(data), None, 0, _BIN_FORMS, out)
        out += data
    elif isinstance(value, (list, tuple)):
        _enter(depth)
        _write_length(len(value), 0x90, 16, _ARRAY_FORMS, out)
        for item in value:
            _encode(item, depth + 1, out)
    elif isinstance(value, dict):
        _enter(depth)
        keys = {}  # key -> its UTF-8 bytes; every key is checked before any value is looked at
        for key in value:
            if not isinstance(key, str):
                raise EnvelopeError(Reason.WRONG_TYPE, f"map key {key!r} is not text")
            try:
                keys[key] = key.encode("utf-8")
            except UnicodeEncodeError:
                raise EnvelopeError(Reason.WRONG_TYPE, "map key is not valid Unicode") from None
        _write_length(len(value), 0x80, 16, _MAP_FORMS, out)
        for key in sorted(value, key=keys.__getitem__):
            _encode(key, depth + 1, out)
            _encode(value[key], depth + 1, out)
    else:
        raise EnvelopeError(Reason.WRONG_TYPE, f"cannot encode {type(value).__name__}")


def _enter(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EnvelopeError(Reason.TOO_DEEP, f"container at depth {depth} > {MAX_DEPTH}")


def _encode_int(value: int, out: bytearray) -> None:
    if value > _UINT_MAX or value < _INT_MIN:
        raise EnvelopeError(Reason.WRONG_TYPE, f"integer {value} is outside -2**63 .. 2**64-1")
    if 0 <= value < 128:
        out.append(value)  # positive fixint
    elif -32 <= value < 0:
        out.append(value & 0xFF)  # negative fixint 0xe0..0xff
    elif value > 0:
        for byte, width, smallest in reversed(_UINT_FORMS):  # the widest form first
            if value >= smallest:
                out.append(byte)
                out += value.to_bytes(width, "big")
                return
    else:
        for byte, width, bound in reversed(_INT_FORMS):
            if value < bound:
                out.append(byte)
                out += value.to_bytes(width, "big", signed=True)
                return


def _write_length(n: int, fix_base: int | None, fix_limit: int, forms, out: bytearray) -> None:
    if fix_base is not None and n < fix_limit:
        out.append(fix_base | n)
        return
    for byte, width, smallest in reversed(forms):
        if n >= smallest:
            if n >= 2 ** (8 * width):
                raise EnvelopeError(Reason.TOO_LARGE, f"length {n} does not fit any form")
            out.append(byte)
            out += n.to_bytes(width, "big")
            return


# -- decoding ----------------------------------------------------------------------------------


def decode(data: bytes, max_bytes: int = MAX_ENVELOPE_BYTES) -> Any:
    """Strict canonical decode (maps -> dict, arrays -> list, bin -> bytes).

    Raises EnvelopeError with the first reason met, in PROTOCOL.md's order (TOO_LARGE first when
    len(data) > max_bytes, MAX_ENVELOPE_BYTES unless a caller decoding another canonical message,
    such as a reconciliation answer, has its own cap).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode() needs bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise EnvelopeError(Reason.TOO_LARGE, f"{len(data)} bytes > {max_bytes}")
    reader = _Reader(data)
    value = reader.value(1)
    if reader.pos != len(data):
        raise EnvelopeError(Reason.TRAILING_BYTES, f"{len(data) - reader.pos} bytes after the value")
    return value


class _Reader:
    """A cursor over the input; each method reads one thing and moves past it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if len(self.data) - self.pos < n:
            raise EnvelopeError(Reason.MALFORMED, f"truncated at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def number(self, width: int, signed: bool = False) -> int:
        return int.from_bytes(self.take(width), "big", signed=signed)

    def length(self, width: int, smallest: int) -> int:
        at = self.pos - 1
        n = self.number(width)
        if n < smallest:
            raise EnvelopeError(Reason.NON_CANONICAL, f"length {n} in a long form at offset {at}")
        return n

    def value(self, depth: int) -> Any:
        at = self.pos
        t = self.take(1)[0]
        # Scalars without a payload, and the forbidden bytes.
        if t <= 0x7F:
            return t
        if t >= 0xE0:
            return t - 0x100
        if t == 0xC0:
            return None
        if t == 0xC2:
            return False
        if t == 0xC3:
            return True
        if t in (0xC1, 0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8):
            raise EnvelopeError(Reason.MALFORMED, f"type byte {t:#04x} at offset {at} is not allowed")
        if t in (0xCA, 0xCB):
            raise EnvelopeError(Reason.FLOAT_FORBIDDEN, f"float at offset {at}")
        is_container = 0x80 <= t <= 0x9F or t in (0xDC, 0xDD, 0xDE, 0xDF)
        if is_container and depth > MAX_DEPTH:
            raise EnvelopeError(Reason.TOO_DEEP, f"container at depth {depth} at offset {at}")
        # Integers.
        for byte, width, smallest in _UINT_FORMS:
            if t == byte:
                n = self.number(width)
                if n < smallest:
                    raise EnvelopeError(Reason.NON_CANONICAL, f"integer {n} in a long form at offset {at}")
                return n
        for byte, width, bound in _INT_FORMS:
            if t == byte:
                n = self.number(width, signed=True)
                if n >= bound:
                    raise EnvelopeError(Reason.NON_CANONICAL, f"integer {n} in a long form at offset {at}")
                return n
        # Text and bytes.
        if 0xA0 <= t <= 0xBF:
            return self.text(t & 0x1F, at)
        for byte, width, smallest in _STR_FORMS:
            if t == byte:
                return self.text(self.length(width, smallest), at)
        for byte, width, smallest in _BIN_FORMS:
            if t == byte:
                return self.take(self.length(width, smallest))
        # Containers.
        if 0x90 <= t <= 0x9F:
            return self.array(t & 0x0F, depth)
        if 0x80 <= t <= 0x8F:
            return self.map(t & 0x0F, depth)
        for byte, width, smallest in _ARRAY_FORMS:
            if t == byte:
                return self.array(self.length(width, smallest), depth)
        for byte, width, smallest in _MAP_FORMS:
            if t == byte:
                return self.map(self.length(width, smallest), depth)
        raise AssertionError(f"type byte {t:#04x} not handled")  # every byte value is covered above

    def text(self, n: int, at: int) -> str:
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError(Reason.MALFORMED, f"text at offset {at} is not valid UTF-8") from None

    def array(self, n: int, depth: int) -> list:
        # No preallocation: a huge declared length fails on the first missing item.
        return [self.value(depth + 1) for _ in range(n)]

    def map(self, n: int, depth: int) -> dict:
        result: dict[str, Any] = {}
        previous: bytes | None = None
        for _ in range(n):
            at = self.pos
            key = self.value(depth + 1)
            if not isinstance(key, str):
                raise EnvelopeError(Reason.NON_CANONICAL, f"map key at offset {at} is not text")
            key_bytes = key.encode("utf-8")
            if previous is not None and key_bytes <= previous:
                raise EnvelopeError(Reason.NON_CANONICAL, f"map key {key!r} at offset {at} is out of order")
            previous = key_bytes
            result[key] = self.value(depth + 1)
        return result
