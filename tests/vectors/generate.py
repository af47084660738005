"""Generate tests/vectors/protocol.json, tests/vectors/edge.json and PROTOCOL.md's vectors block.

    python -m tests.vectors.generate           # (re)write the files
    python -m tests.vectors.generate --check   # exit 1 if any file differs from a fresh generation

Deterministic: fixed seeds and times, deterministic Ed25519. Every signature is made with
pyca/cryptography and must equal the reference's own RFC 8032 signer; every verdict written is
computed by the reference implementation and asserted against what the construction intends.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.identity import Identity
from node.nodeid import encode_node_id
from node.reasons import Reason
from node.reference import codec, ed25519
from node.reference import envelope as ref
from node.reference.ed25519 import BASE, L, P, TORSION
from node.reference.intent import parse_intent
from tests.vectors import VECTORS_DIR, refused_bytes, to_json

ROOT = VECTORS_DIR.parents[1]
PROTOCOL_MD = ROOT / "PROTOCOL.md"
BEGIN, END = "<!-- vectors:begin -->", "<!-- vectors:end -->"

CREATED = 1_700_000_000_000  # 2023-11-14T22:13:20Z
DAY_MS = 86_400_000


# -- shared helpers ----------------------------------------------------------------------------


def sign(seed: bytes, message: bytes) -> bytes:
    """cryptography's signature, checked against the reference signer (two implementations)."""
    signature = Identity.from_seed(seed).sign(message)
    assert signature == ed25519.sign(seed, message), "cryptography and the reference signer differ"
    return signature


def no_point_encoding() -> bytes:
    """The smallest y (canonical, sign 0) with no curve point."""
    y = 0
    while ed25519.decode_point(y.to_bytes(32, "little")) is not None:
        y += 1
    return y.to_bytes(32, "little")


def scalar_of(label: str) -> int:
    """A fixed nonce for a hand-built signature, derived from its label."""
    return int.from_bytes(hashlib.sha512(label.encode()).digest(), "little") % L


def keypair(seed: bytes) -> tuple[int, bytes]:
    """(secret scalar a, public key bytes) of an RFC 8032 seed."""
    a = ed25519.secret_scalar(seed)[0]
    public = ed25519.public_key(seed)
    assert public == Identity.from_seed(seed).public_key
    return a, public


def challenge(r_bytes: bytes, a_bytes: bytes, message: bytes) -> int:
    return ed25519.hash_to_scalar(r_bytes, a_bytes, message)


def with_s(r_bytes: bytes, s: int) -> bytes:
    return r_bytes + s.to_bytes(32, "little")


# -- protocol.json -----------------------------------------------------------------------------


def complete_vectors() -> list[dict[str, Any]]:
    """Full envelopes: every field, the signed bytes, the signature, the id and the encoding."""
    all_types = {
        "map": {"amount": 39900, "currency": "USD"},
        "array": [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1],
        "negative": [-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)],
        "text": "Zürich → 東京 🚀",
        "bytes": bytes(range(8)),
        "true": True,
        "false": False,
        "nil": None,
        "empty": {"array": [], "map": {}, "text": "", "bytes": b""},
    }
    long_forms = {
        "text_d9": "a" * 40,
        "bytes_c5": bytes(i % 256 for i in range(300)),
        "array_dc": list(range(16)),
        "map_de": {f"k{i:02}": i for i in range(16)},
    }
    specs = [
        ("intent", 0x01, "intent", CREATED, CREATED + 7 * DAY_MS,
         # a valid section-5 body: what the reference tokenizer gives for the text, plus terms
         {**parse_intent("?flight SFO->JFK before:2026-12-20 max:400USD"), "terms": ["contact-only-about-this"]}),
        ("offer_every_type", 0x02, "offer", CREATED, CREATED + DAY_MS, all_types),
        ("receipt_long_forms", 0x03, "receipt", CREATED, CREATED + DAY_MS, long_forms),
        # the largest times (uint64 encodings), living exactly a deletion's maximum lifetime
        ("deletion_extreme_times", 0x04, "deletion", 2**63 - 1 - 30 * DAY_MS, 2**63 - 1, None),
    ]
    vectors = []
    for name, seed_byte, kind, created, expires, body in specs:
        seed = bytes([seed_byte]) * 32
        public = Identity.from_seed(seed).public_key
        signed = ref.signed_bytes(public, body, created, expires, kind)
        signature = sign(seed, signed)
        raw = ref.encode_envelope(public, body, created, expires, kind, signature)
        envelope_id = hashlib.sha256(signed).digest()
        valid_at = created + 1
        assert ref.decode_envelope(raw) == (1, kind, public, created, expires, body, signature, signed, envelope_id)
        assert ref.Verifier().verify_one(raw, valid_at) == (Reason.OK, envelope_id)
        vectors.append({
            "name": name,
            "seed": seed.hex(),
            "public_key": public.hex(),
            "kind": kind,
            "created": created,
            "expires": expires,
            "body": to_json(body),
            "signed_bytes": signed.hex(),
            "signature": signature.hex(),
            "id": envelope_id.hex(),
            "envelope": raw.hex(),
            "valid_at": valid_at,
        })
    return vectors


class Raw:
    """Bytes to splice in as an already encoded value."""

    def __init__(self, data: bytes) -> None:
        self.data = data


REMOVE = object()  # as a changed value: leave the key out


class Base:
    """The envelope the refused vectors are made from: valid at NOW, small enough to read."""

    SEED = bytes([0x05]) * 32
    NOW = CREATED + 1000

    def __init__(self) -> None:
        self.author = Identity.from_seed(self.SEED).public_key
        self.fields: dict[str, Any] = {"author": self.author, "body": "?taxi", "created": CREATED,
                                       "expires": CREATED + DAY_MS, "kind": "intent"}
        self.signed = ref.signed_bytes(**self.fields)
        self.sig = sign(self.SEED, self.signed)
        self.raw = ref.encode_envelope(**self.fields, sig=self.sig)

    def resigned(self, **changes: Any) -> bytes:
        """The base envelope with ``changes`` to its fields, signed again (so only they are at fault)."""
        fields = {**self.fields, **changes}
        return ref.encode_envelope(**fields, sig=sign(self.SEED, ref.signed_bytes(**fields)))

    def entries(self, **changes: Any) -> list[tuple[str, bytes]]:
        """The (key, encoded value) entries in key order, with ``changes`` applied: a value is
        encoded canonically, a Raw one spliced in as is, REMOVE drops the key."""
        values = {**self.fields, "sig": self.sig, "v": 1, **changes}
        return [(key, item.data if isinstance(item, Raw) else codec.encode(item))
                for key, item in sorted(values.items()) if item is not REMOVE]


def raw_map(entries: list[tuple[str, bytes]]) -> bytes:
    """A map with these entries in this order (so it may be unsorted or hold duplicates)."""
    assert len(entries) < 16
    return bytes([0x80 | len(entries)]) + b"".join(codec.encode(key) + value for key, value in entries)


def refused_vectors() -> list[dict[str, Any]]:
    base = Base()
    entries = base.entries
    no_point = no_point_encoding()
    s_plus_l = with_s(base.sig[:32], int.from_bytes(base.sig[32:], "little") + L)
    flipped = bytearray(base.sig)
    flipped[32] ^= 0x01  # the lowest bit of S: still < l, now wrong

    def swap(items: list[tuple[str, bytes]], i: int, j: int) -> list[tuple[str, bytes]]:
        items = list(items)
        items[i], items[j] = items[j], items[i]
        return items

    # 65 537 bytes, well-formed but for the size: the body becomes bytes, written c5 + 2-byte length.
    too_large_body = 65537 - (len(base.raw) - len(codec.encode(base.fields["body"]))) - 3
    head = raw_map(entries(body=Raw(b"\xc5" + too_large_body.to_bytes(2, "big"))))
    body_at = head.index(b"\xc5" + too_large_body.to_bytes(2, "big")) + 3
    too_large_parts = [{"hex": head[:body_at].hex()}, {"hex": "00", "repeat": too_large_body}, {"hex": head[body_at:].hex()}]
    assert len(refused_bytes({"hex_parts": too_large_parts})) == 65537

    cases: list[tuple[str, Reason, str, bytes | list[dict[str, Any]], int]] = [
        ("truncated", Reason.MALFORMED, "the base envelope without its last byte", base.raw[:-1], base.NOW),
        ("reserved_type_byte", Reason.MALFORMED, "body is the never-used byte c1",
         raw_map(entries(body=Raw(b"\xc1"))), base.NOW),
        ("extension_type", Reason.MALFORMED, "body is a fixext 1 (d4 00 00)",
         raw_map(entries(body=Raw(b"\xd4\x00\x00"))), base.NOW),
        ("invalid_utf8", Reason.MALFORMED, "body is text a2 ff fe (not UTF-8)",
         raw_map(entries(body=Raw(b"\xa2\xff\xfe"))), base.NOW),
        ("int_not_shortest", Reason.NON_CANONICAL, "v written cc 01 instead of 01",
         raw_map(entries(v=Raw(b"\xcc\x01"))), base.NOW),
        ("negative_int_not_shortest", Reason.NON_CANONICAL, "body -1 written d0 ff instead of ff",
         raw_map(entries(body=Raw(b"\xd0\xff"))), base.NOW),
        ("length_not_shortest", Reason.NON_CANONICAL, "kind written d9 06 'intent' instead of a6 'intent'",
         raw_map(entries(kind=Raw(b"\xd9\x06intent"))), base.NOW),
        ("keys_unsorted", Reason.NON_CANONICAL, "the author and body entries swapped",
         raw_map(swap(entries(), 0, 1)), base.NOW),
        ("key_duplicated", Reason.NON_CANONICAL, "the author entry twice in a row",
         raw_map(entries()[:1] + entries()), base.NOW),
        ("key_not_text", Reason.NON_CANONICAL, "body is a map with the int key 1",
         raw_map(entries(body=Raw(b"\x81\x01\xc0"))), base.NOW),
        ("utf8_surrogate", Reason.MALFORMED, "body is text a3 ed a0 80 (U+D800, a surrogate, in UTF-8 form)",
         raw_map(entries(body=Raw(b"\xa3\xed\xa0\x80"))), base.NOW),
        ("utf8_overlong", Reason.MALFORMED, "body is text a2 c0 af ('/' in an overlong two-byte form)",
         raw_map(entries(body=Raw(b"\xa2\xc0\xaf"))), base.NOW),
        ("utf8_above_max", Reason.MALFORMED, "body is text a4 f4 90 80 80 (U+110000, above U+10FFFF)",
         raw_map(entries(body=Raw(b"\xa4\xf4\x90\x80\x80"))), base.NOW),
        ("key_container_at_depth_16", Reason.NON_CANONICAL,
         "body is 13 nested arrays holding a map whose key is an empty array (the key at depth 16)",
         raw_map(entries(body=Raw(b"\x91" * 13 + b"\x81\x90\xc0"))), base.NOW),
        ("key_too_deep", Reason.TOO_DEEP,
         "body is 14 nested arrays holding a map whose key is an empty array (the key at depth 17)",
         raw_map(entries(body=Raw(b"\x91" * 14 + b"\x81\x90\xc0"))), base.NOW),
        ("float", Reason.FLOAT_FORBIDDEN, "body is the float64 1.5",
         raw_map(entries(body=Raw(b"\xcb" + bytes.fromhex("3ff8000000000000")))), base.NOW),
        ("trailing_bytes", Reason.TRAILING_BYTES, "the base envelope followed by c0", base.raw + b"\xc0", base.NOW),
        ("too_deep", Reason.TOO_DEEP, "body is 16 nested arrays: the innermost is at depth 17",
         raw_map(entries(body=Raw(b"\x91" * 15 + b"\x90"))), base.NOW),
        ("too_large", Reason.TOO_LARGE, "an otherwise well-formed envelope of 65 537 bytes (body is bytes)",
         too_large_parts, base.NOW),
        ("not_a_map", Reason.WRONG_TYPE, "the array [1]", b"\x91\x01", base.NOW),
        ("author_31_bytes", Reason.WRONG_TYPE, "author is 31 bytes", raw_map(entries(author=base.author[:31])), base.NOW),
        ("created_negative", Reason.WRONG_TYPE, "created is -1", raw_map(entries(created=-1)), base.NOW),
        ("created_2_63", Reason.WRONG_TYPE, "created is 2^63", raw_map(entries(created=2**63)), base.NOW),
        ("kind_not_text", Reason.WRONG_TYPE, "kind is bytes 'intent'", raw_map(entries(kind=b"intent")), base.NOW),
        ("sig_63_bytes", Reason.WRONG_TYPE, "sig is 63 bytes", raw_map(entries(sig=base.sig[:63])), base.NOW),
        ("v_not_uint", Reason.WRONG_TYPE, "v is the text '1'", raw_map(entries(v="1")), base.NOW),
        ("missing_sig", Reason.MISSING_FIELD, "no sig entry", raw_map(entries(sig=REMOVE)), base.NOW),
        ("missing_v", Reason.MISSING_FIELD, "no v entry", raw_map(entries(v=REMOVE)), base.NOW),
        ("unknown_field", Reason.UNKNOWN_FIELD, "an extra entry note: 'x'", raw_map(entries(note="x")), base.NOW),
        ("version_2", Reason.UNSUPPORTED_VERSION, "v is 2", raw_map(entries(v=2)), base.NOW),
        ("unknown_kind", Reason.UNKNOWN_KIND, "kind is 'gossip'", raw_map(entries(kind="gossip")), base.NOW),
        ("expires_equals_created", Reason.BAD_EXPIRY, "expires = created",
         raw_map(entries(expires=CREATED)), base.NOW),
        ("created_in_future", Reason.NOT_YET_VALID, "the base envelope at now = created - 300 001",
         base.raw, CREATED - 300_001),
        ("expired", Reason.EXPIRED, "the base envelope at now = expires", base.raw, CREATED + DAY_MS),
        ("lifetime_past_limit", Reason.TOO_LONG_LIVED, "an intent living 365 days + 1 ms (its kind's maximum is 365 days)",
         base.resigned(expires=CREATED + 365 * DAY_MS + 1), base.NOW),
        ("created_zero_expires_max", Reason.TOO_LONG_LIVED, "created 0 and expires 2^63 - 1, signed",
         base.resigned(created=0, expires=2**63 - 1), base.NOW),
        ("first_lifetime_then_expired", Reason.TOO_LONG_LIVED, "a receipt living 3651 days, expired at now",
         base.resigned(kind="receipt", created=0, expires=3651 * DAY_MS), base.NOW),
        ("author_not_a_point", Reason.BAD_KEY, f"author is {no_point.hex()[:4]}.. (y = {no_point[0]}: no x exists)",
         raw_map(entries(author=no_point)), base.NOW),
        ("sig_bit_flipped", Reason.BAD_SIGNATURE, "the lowest bit of S flipped",
         raw_map(entries(sig=bytes(flipped))), base.NOW),
        ("body_changed", Reason.BAD_SIGNATURE, "body '?taxy' under the signature of '?taxi'",
         raw_map(entries(body="?taxy")), base.NOW),
        ("s_plus_l", Reason.BAD_SIGNATURE, "S + l in place of S (the equation holds; S >= l is refused)",
         raw_map(entries(sig=s_plus_l)), base.NOW),
        ("r_not_a_point", Reason.BAD_SIGNATURE, "R replaced by an encoding with no point",
         raw_map(entries(sig=no_point + base.sig[32:])), base.NOW),
        # The first problem met decides: each of these has two.
        ("first_float_then_unsorted", Reason.FLOAT_FORBIDDEN, "body {'b': 1.5, 'a': 1}, keys unsorted after the float",
         raw_map(entries(body=Raw(b"\x82\xa1b\xcb" + bytes.fromhex("3ff8000000000000") + b"\xa1a\x01"))), base.NOW),
        ("first_unsorted_then_float", Reason.NON_CANONICAL, "body {'b': 1, 'a': 1.5}, the float after the unsorted key",
         raw_map(entries(body=Raw(b"\x82\xa1b\x01\xa1a\xcb" + bytes.fromhex("3ff8000000000000")))), base.NOW),
        ("first_too_large_then_anything", Reason.TOO_LARGE, "65 537 bytes of c1", [{"hex": "c1", "repeat": 65537}],
         base.NOW),
        ("first_trailing_then_not_a_map", Reason.TRAILING_BYTES, "the array [1] followed by c0", b"\x91\x01\xc0",
         base.NOW),
        ("first_version_then_missing", Reason.UNSUPPORTED_VERSION, "v is 2 and author is missing",
         raw_map(entries(v=2, author=REMOVE)), base.NOW),
        ("first_missing_then_unknown", Reason.MISSING_FIELD, "no sig entry and an extra entry note",
         raw_map(entries(sig=REMOVE, note="x")), base.NOW),
        ("first_wrong_type_then_unknown_kind", Reason.WRONG_TYPE, "sig is 63 bytes and kind is 'gossip'",
         raw_map(entries(sig=base.sig[:63], kind="gossip")), base.NOW),
        ("first_unknown_kind_then_bad_expiry", Reason.UNKNOWN_KIND, "kind is 'gossip' and expires = created",
         raw_map(entries(kind="gossip", expires=CREATED)), base.NOW),
        ("first_time_then_bad_key", Reason.NOT_YET_VALID, "author has no point and created is 300 001 ms ahead",
         raw_map(entries(author=no_point)), CREATED - 300_001),
        ("first_expired_then_bad_signature", Reason.EXPIRED, "body changed and now = expires",
         raw_map(entries(body="?taxy")), CREATED + DAY_MS),
    ]
    vectors = []
    for name, reason, what, data, now in cases:
        vector: dict[str, Any] = {"name": name, "what": what}
        vector.update({"hex": data.hex()} if isinstance(data, bytes) else {"hex_parts": data})
        vector.update({"reason": reason.label, "code": int(reason), "now_ms": now})
        code, _ = ref.Verifier().verify_one(refused_bytes(vector), now)
        assert code == reason, f"{name}: the reference gives {Reason(code).label}, not {reason.label}"
        vectors.append(vector)
    return vectors


def accepted_edge_vectors() -> list[dict[str, Any]]:
    """Envelopes valid under ZIP-215 that a cofactorless or strict verifier would refuse."""
    base = Base()
    a, _ = keypair(base.SEED)
    t8 = TORSION[1]
    cases = []

    # Author key with a torsion component: A' = A + T8 (its secret a still signs for it, up to [8]).
    author = ed25519.encode_point(ed25519.add(ed25519.multiply(a, BASE), t8))
    signed = ref.signed_bytes(**{**base.fields, "author": author})
    r = scalar_of("accepted/author_with_torsion")
    r_bytes = ed25519.encode_point(ed25519.multiply(r, BASE))
    sig = with_s(r_bytes, (r + challenge(r_bytes, author, signed) * a) % L)
    cases.append(("author_with_torsion", "author = A + T (T of order 8); [8] removes T from the check",
                  ref.encode_envelope(**{**base.fields, "author": author}, sig=sig)))

    # R with a torsion component.
    r = scalar_of("accepted/r_with_torsion")
    r_bytes = ed25519.encode_point(ed25519.add(ed25519.multiply(r, BASE), t8))
    sig = with_s(r_bytes, (r + challenge(r_bytes, base.author, base.signed) * a) % L)
    cases.append(("r_with_torsion", "R = [r]B + T (T of order 8)", ref.encode_envelope(**base.fields, sig=sig)))

    # A small-order author in a non-canonical encoding (the identity, x = 0 with the sign bit set):
    # any S with R = [S]B satisfies the cofactored equation.
    author = (1 | 1 << 255).to_bytes(32, "little")
    r = scalar_of("accepted/small_order_author")
    sig = with_s(ed25519.encode_point(ed25519.multiply(r, BASE)), r)
    cases.append(("small_order_noncanonical_author", "author 0100..80: the identity, x = 0 with the sign bit set",
                  ref.encode_envelope(**{**base.fields, "author": author}, sig=sig)))

    vectors = []
    for name, why, raw in cases:
        code, envelope_id = ref.Verifier().verify_one(raw, base.NOW)
        assert code == Reason.OK, name
        vectors.append({"name": name, "why": why, "hex": raw.hex(), "now_ms": base.NOW, "id": envelope_id.hex()})
    return vectors


def protocol_vectors() -> dict[str, Any]:
    return {
        "about": "vrm-node protocol v1 test vectors (PROTOCOL.md section 4). Generated by "
        "`python -m tests.vectors.generate`; do not edit. Times are ms; in a body, "
        '{"hex": ...} stands for bytes. A refused vector gives its bytes as "hex" or as '
        '"hex_parts" (each part\'s hex repeated "repeat" times, joined); verifying it at now_ms '
        "must give exactly its reason.",
        "envelopes": complete_vectors(),
        "refused": refused_vectors(),
        "accepted_edge_cases": accepted_edge_vectors(),
        "node_ids": node_id_vectors(),
    }


def node_id_vectors() -> list[dict[str, str]]:
    """Public keys and their node ids: the envelopes' authors, and keys of all zero and all ff bytes."""
    keys = [Identity.from_seed(bytes([n]) * 32).public_key for n in (0x01, 0x02, 0xA1)] + [bytes(32), b"\xff" * 32]
    return [{"public_key": key.hex(), "node_id": encode_node_id(key)} for key in keys]


# -- edge.json ---------------------------------------------------------------------------------


def _order(point: ed25519.Point) -> int:
    return next(n for n in (1, 2, 4, 8) if ed25519.is_identity(ed25519.multiply(n, point)))


def small_order_encodings() -> list[tuple[str, str, bytes]]:
    """Every 32-byte encoding of the 8 small-order points as (name, description, encoding): 8
    canonical and 6 non-canonical (y + p where y + p < 2^255, and x = 0 with the sign bit set)."""
    found = []
    for index, t in enumerate(TORSION):
        x, y = ed25519.affine(t)
        for y_enc in [y] + ([y + P] if y + P < 2**255 else []):
            for sign in [x & 1] + ([1] if x == 0 else []):
                forms = (["y_plus_p"] if y_enc != y else []) + (["x0_sign_set"] if sign != x & 1 else [])
                name = f"T{index}_order{_order(t)}_{'_'.join(forms) or 'canonical'}"
                what = " and ".join({"y_plus_p": "y + p", "x0_sign_set": "x = 0 with the sign bit set"}[f] for f in forms)
                description = f"[{index}]T8, of order {_order(t)}, " + (f"non-canonical: {what}" if forms else "canonical")
                found.append((name, description, (y_enc | sign << 255).to_bytes(32, "little")))
    assert len(found) == 14
    return found


def cofactorless(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The same decoding and S < l rules, with the cofactorless equation [S]B = R + [k]A."""
    item = ed25519.prepare(public_key, message, signature)
    if item is None:
        return False
    return ed25519.equal(ed25519.multiply(item.S, BASE), ed25519.add(item.R, ed25519.multiply(item.k, item.A)))


def edge_vectors() -> dict[str, Any]:
    vectors: list[dict[str, Any]] = []

    def add(name: str, why: str, public_key: bytes, message: bytes, signature: bytes, expect: bool) -> None:
        verdict = ed25519.verify(public_key, message, signature)
        assert verdict == expect, f"{name}: the reference says {verdict}"
        vectors.append({
            "name": name,
            "why": why,
            "public_key": public_key.hex(),
            "message": message.hex(),
            "signature": signature.hex(),
            "zip215": verdict,
            "cofactorless": cofactorless(public_key, message, signature),
        })

    def message_for(name: str, accept: Callable[[bytes], bool] = lambda m: True) -> bytes:
        """The first message 'vrm-node edge <name> <i>' that ``accept`` takes (deterministic)."""
        i = 0
        while not accept(message := f"vrm-node edge {name} {i}".encode()):
            i += 1
        return message

    seed = bytes([0x07]) * 32
    a, public = keypair(seed)
    m = message_for("ordinary")
    add("ordinary", "a valid RFC 8032 signature", public, m, sign(seed, m), True)
    add("ordinary_empty_message", "a valid signature of the empty message", public, b"", sign(seed, b""), True)
    add("ordinary_other_message", "a valid signature checked against another message", public,
        message_for("other"), sign(seed, m), False)

    encodings = small_order_encodings()
    for label, description, encoding in encodings:
        # A small-order key: [8][k]A = 0, so R = [r]B with S = r passes the cofactored check for
        # any message; the cofactorless one only when [k]A happens to be the identity.
        name = f"small_order_A_{label}"
        r = scalar_of(name)
        add(name, f"A = {description}; R = [r]B, S = r: [8]([S]B - R - [k]A) = [8](-[k]A) = identity",
            encoding, message_for(name), with_s(ed25519.encode_point(ed25519.multiply(r, BASE)), r), True)
    for label, description, encoding in encodings:
        # A small-order R with an ordinary key: S = k*a makes [S]B - [k]A = 0, leaving -R, which [8]
        # removes. k hashes R's bytes as received, so a verifier that re-encodes R fails here.
        name = f"small_order_R_{label}"
        m = message_for(name)
        add(name, f"R = {description}; S = k*a: [8](-R) = identity, with k over R's bytes as received",
            public, m, with_s(encoding, challenge(encoding, public, m) * a % L), True)

    for index in (4, 2, 1):  # torsion of order 2, 4 and 8
        t = TORSION[index]
        order = _order(t)
        # Key with a torsion component: A' = A + T. The cofactorless check fails whenever [k]T != 0,
        # so pick a message whose k is not a multiple of T's order.
        a_bytes = ed25519.encode_point(ed25519.add(ed25519.multiply(a, BASE), t))
        r = scalar_of(f"A+T{index}")
        r_bytes = ed25519.encode_point(ed25519.multiply(r, BASE))
        m = message_for(f"A+T{index}", lambda msg: challenge(r_bytes, a_bytes, msg) % order != 0)
        add(f"A_with_torsion_order_{order}", f"A' = [a]B + T (order {order}): valid cofactored, not cofactorless",
            a_bytes, m, with_s(r_bytes, (r + challenge(r_bytes, a_bytes, m) * a) % L), True)
        # R with a torsion component: the cofactorless check is always off by T.
        r_bytes = ed25519.encode_point(ed25519.add(ed25519.multiply(r, BASE), t))
        m = message_for(f"R+T{index}")
        add(f"R_with_torsion_order_{order}", f"R = [r]B + T (order {order}): valid cofactored, not cofactorless",
            public, m, with_s(r_bytes, (r + challenge(r_bytes, public, m) * a) % L), True)

    t8 = TORSION[1]
    a_bytes = ed25519.encode_point(ed25519.add(ed25519.multiply(a, BASE), t8))
    r = scalar_of("both")
    r_bytes = ed25519.encode_point(ed25519.add(ed25519.multiply(r, BASE), TORSION[3]))
    m = message_for("both")
    add("A_and_R_with_torsion", "A' = A + T8 and R' = R + [3]T8: valid cofactored only", a_bytes, m,
        with_s(r_bytes, (r + challenge(r_bytes, a_bytes, m) * a) % L), True)

    identity = ed25519.encode_point(ed25519.IDENTITY)
    add("identity_everything", "A = R = identity and S = 0: the equation holds trivially", identity,
        message_for("identity"), identity + bytes(32), True)

    m = message_for("s_plus_l")
    good = sign(seed, m)
    add("S_plus_l", "a valid signature with S + l in place of S: the equation holds, S >= l is refused",
        public, m, with_s(good[:32], int.from_bytes(good[32:], "little") + L), False)
    add("S_equals_l", "A = R = identity and S = l: the equation holds, S >= l is refused", identity,
        message_for("s_equals_l"), with_s(identity, L), False)
    add("S_max", "S = 2^256 - 1", public, m, good[:32] + b"\xff" * 32, False)

    no_point = no_point_encoding()
    add("A_not_a_point", "A has no point (y with no x): invalid whatever the rest", no_point, m, good, False)
    add("R_not_a_point", "R has no point: invalid", public, m, no_point + good[32:], False)
    y, candidate = next(
        (y, encoding)
        for y in range(19)
        if (point := ed25519.decode_point(encoding := (y + P).to_bytes(32, "little"))) is not None
        and not ed25519.is_identity(ed25519.mul_by_cofactor(point))
    )
    add("A_noncanonical_not_small_order", f"A is y = {y} + p (decodes, not small order); the signature is "
        "someone else's, so invalid: a bad signature, not a bad key", candidate, m, good, False)
    add("R_noncanonical_not_small_order", f"R is y = {y} + p: decodes, but not the R of this signature",
        public, m, candidate + good[32:], False)

    return {
        "about": "Ed25519 edge cases (ZIP-215, PROTOCOL.md section 2). Generated by "
        "`python -m tests.vectors.generate` with the reference arithmetic; do not edit. zip215 is the "
        "verdict every conforming verifier must give, single or batch. cofactorless is what the "
        "cofactorless equation [S]B = R + [k]A gives under the same decoding and S < l rules: where "
        "the two differ, a verifier that mixes them (e.g. ed25519-dalek verify vs verify_batch) splits.",
        "vectors": vectors,
    }


# -- PROTOCOL.md block -------------------------------------------------------------------------


def _wrapped(label: str, text: str, width: int = 64, *, label_width: int = 13) -> list[str]:
    chunks = [text[i : i + width] for i in range(0, len(text), width)] or [""]
    return [f"{label:<{label_width}} {chunks[0]}"] + [f"{'':<{label_width}} {chunk}" for chunk in chunks[1:]]


def _json_lines(value: Any) -> list[str]:
    """Compact JSON, one line per entry of a top-level object."""
    if not isinstance(value, dict) or not value:
        return [json.dumps(value, ensure_ascii=False)]
    entries = [f"  {json.dumps(key)}: {json.dumps(item, ensure_ascii=False)}" for key, item in value.items()]
    return ["{", *[entry + "," for entry in entries[:-1]], entries[-1], "}"]


def protocol_md_block(protocol: dict[str, Any]) -> str:
    lines = [BEGIN, "", "Generated by `python -m tests.vectors.generate` from `tests/vectors/protocol.json`; do not edit.", ""]
    for vector in protocol["envelopes"][:2]:
        lines += [f"#### Envelope `{vector['name']}`", "", "```text"]
        for field in ("seed", "public_key", "kind", "created", "expires"):
            lines += _wrapped(field, str(vector[field]))
        lines += [f"{'body':<13} {line}" if i == 0 else f"{'':<13} {line}" for i, line in enumerate(_json_lines(vector["body"]))]
        for field in ("signed_bytes", "signature", "id", "envelope"):
            lines += _wrapped(field, vector[field])
        lines += ["```", ""]
    lines += [
        "Bodies are shown as JSON with bytes as `{\"hex\": ...}`. Long hex values are wrapped; join the lines.",
        "",
        "#### Refused encodings",
        "",
        "Each is the envelope of seed `05` × 32, kind `intent`, body `\"?taxi\"`, created "
        f"{CREATED}, expires {CREATED + DAY_MS}, changed as said, verified at `now` = {Base.NOW} unless "
        "given. Their bytes follow the table (and are in `protocol.json`).",
        "",
        "| name | change | now | code | reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    for vector in protocol["refused"]:
        now = "" if vector["now_ms"] == Base.NOW else str(vector["now_ms"])
        lines.append(f"| `{vector['name']}` | {vector['what']} | {now} | {vector['code']} | `{vector['reason']}` |")
    lines += ["", "The bytes of each, in hex (a run `00 × n` stands for n bytes 00; join the lines):", "", "```text"]
    width = max(len(v["name"]) for v in protocol["refused"])
    for vector in protocol["refused"]:
        if "hex" in vector:
            lines += _wrapped(vector["name"], vector["hex"], label_width=width)
            continue
        label = vector["name"]
        for part in vector["hex_parts"]:
            repeat = int(part.get("repeat", 1))
            if repeat == 1:
                lines += _wrapped(label, part["hex"], label_width=width)
            else:
                lines.append(f"{label:<{width}} {part['hex']} × {repeat}")
            label = ""
    lines += ["```", "", "#### Node ids", "",
              "A node id is its 32-byte Ed25519 public key in Bech32m (BIP-350) with the human-readable part "
              "`vrm` (section 2's keys; PROTOCOL.md section 6 uses them as `keyid`):", "", "```text"]
    for vector in protocol["node_ids"]:
        lines += _wrapped("public_key", vector["public_key"]) + _wrapped("node_id", vector["node_id"]) + [""]
    lines[-1:] = ["```", "", END]
    return "\n".join(lines)


def with_block(markdown: str, block: str) -> str:
    start, end = markdown.index(BEGIN), markdown.index(END) + len(END)
    return markdown[:start] + block + markdown[end:]


# -- main --------------------------------------------------------------------------------------


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def generate() -> dict[Path, str]:
    """Every generated file's path and content."""
    protocol = protocol_vectors()
    return {
        VECTORS_DIR / "protocol.json": render_json(protocol),
        VECTORS_DIR / "edge.json": render_json(edge_vectors()),
        PROTOCOL_MD: with_block(PROTOCOL_MD.read_text(encoding="utf-8"), protocol_md_block(protocol)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.vectors.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the files are current")
    args = parser.parse_args(argv)
    stale = []
    for path, content in generate().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(content, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
