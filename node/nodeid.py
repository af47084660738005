"""Node ids: an Ed25519 public key as Bech32m text (BIP-350) with the human-readable part ``vrm``.

Bech32m was chosen because people copy node ids by hand: its checksum detects any error of up to four
substituted characters, and unlike Bech32 it also catches inserted or deleted ``q``s before the last
character. An id reads ``vrm1`` followed by 58 characters from a 32-letter alphabet without
look-alikes (no ``1``, ``b``, ``i``, ``o`` after the separator).
"""

from __future__ import annotations

from node.errors import IdentityError

HRP = "vrm"
PUBLIC_KEY_SIZE = 32

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {c: i for i, c in enumerate(_CHARSET)}
_BECH32M_CONST = 0x2BC830A3
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_MAX_LENGTH = 90  # BIP-173/350 limit, kept so one decoder serves the test vectors too
_CHECKSUM_LENGTH = 6


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _checksum(hrp: str, data: list[int]) -> list[int]:
    polymod = _polymod(_hrp_expand(hrp) + data + [0] * _CHECKSUM_LENGTH) ^ _BECH32M_CONST
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(_CHECKSUM_LENGTH)]


def bech32m_encode(hrp: str, data: list[int]) -> str:
    """Encode 5-bit groups ``data`` under ``hrp`` (lowercase output)."""
    hrp = hrp.lower()
    combined = data + _checksum(hrp, data)
    text = hrp + "1" + "".join(_CHARSET[d] for d in combined)
    if len(text) > _MAX_LENGTH:
        raise IdentityError(f"bech32m string would be {len(text)} characters, the limit is {_MAX_LENGTH}")
    return text


def bech32m_decode(text: str) -> tuple[str, list[int]]:
    """Decode and verify a Bech32m string; return (lowercase hrp, 5-bit data without the checksum)."""
    if len(text) > _MAX_LENGTH:
        raise IdentityError(f"too long ({len(text)} characters, the limit is {_MAX_LENGTH})")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise IdentityError("contains a character outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise IdentityError("mixes upper and lower case")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1:
        raise IdentityError("no human-readable part before the '1' separator")
    if len(text) - sep - 1 < _CHECKSUM_LENGTH:
        raise IdentityError("too short to hold a checksum")
    hrp, rest = text[:sep], text[sep + 1 :]
    bad = [c for c in rest if c not in _CHARSET_INDEX]
    if bad:
        raise IdentityError(f"invalid character {bad[0]!r} in the data part")
    data = [_CHARSET_INDEX[c] for c in rest]
    if _polymod(_hrp_expand(hrp) + data) != _BECH32M_CONST:
        raise IdentityError("checksum does not match (a typo, or not a Bech32m string)")
    return hrp, data[:-_CHECKSUM_LENGTH]


def _bytes_to_groups(data: bytes) -> list[int]:
    acc = bits = 0
    out = []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def _groups_to_bytes(groups: list[int]) -> bytes:
    acc = bits = 0
    out = bytearray()
    for group in groups:
        acc = (acc << 5) | group
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    # Padding must be short and zero, or two texts would name the same key.
    if bits >= 5 or (acc & ((1 << bits) - 1)):
        raise IdentityError("invalid padding in the data part")
    return bytes(out)


def encode_node_id(public_key: bytes) -> str:
    """The text form of a 32-byte Ed25519 public key, e.g. ``vrm1…``."""
    if not isinstance(public_key, (bytes, bytearray)) or len(public_key) != PUBLIC_KEY_SIZE:
        raise IdentityError(f"a node id encodes a {PUBLIC_KEY_SIZE}-byte public key")
    return bech32m_encode(HRP, _bytes_to_groups(bytes(public_key)))


def decode_node_id(text: str) -> bytes:
    """The 32-byte public key in a node id; IdentityError for anything else (typos included)."""
    if not isinstance(text, str):
        raise IdentityError("a node id is text")
    try:
        hrp, data = bech32m_decode(text.strip())
    except IdentityError as exc:
        raise IdentityError(f"not a node id: {exc}") from None
    if hrp != HRP:
        raise IdentityError(f"not a node id: prefix {hrp!r}, expected {HRP!r}")
    key = _groups_to_bytes(data)
    if len(key) != PUBLIC_KEY_SIZE:
        raise IdentityError(f"not a node id: holds {len(key)} bytes, expected {PUBLIC_KEY_SIZE}")
    return key


def parse_node_key(text: object) -> bytes:
    """The public key a node is named by: its node id (``vrm1…``) or its 64-hex public key (either
    case; surrounding space ignored). IdentityError for anything else; callers name the argument."""
    if not isinstance(text, str):
        raise IdentityError("a node is named by its node id or hex public key")
    value = text.strip()
    if len(value) == 2 * PUBLIC_KEY_SIZE and all(c in "0123456789abcdef" for c in value.lower()):
        return bytes.fromhex(value)
    return decode_node_id(value)


def is_node_id(text: str) -> bool:
    """True when ``text`` decodes as a node id."""
    try:
        decode_node_id(text)
    except IdentityError:
        return False
    return True
