"""tests/vectors/protocol.json: complete envelopes, refused encodings, accepted edge cases, node ids
(written by ``python -m tests.vectors.generate``)."""

from __future__ import annotations

import hashlib
from typing import Any

from node.identity import Identity
from node.nodeid import encode_node_id
from node.reasons import Reason
from node.reference import codec, ed25519
from node.reference import envelope as ref
from node.reference.ed25519 import BASE, L, TORSION
from node.reference.intent import parse_intent
from tests.vectors import refused_bytes, to_json
from tests.vectors.gen_common import CREATED, DAY_MS, challenge, keypair, no_point_encoding, scalar_of, sign, with_s


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
