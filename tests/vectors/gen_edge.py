"""tests/vectors/edge.json: Ed25519 edge cases, each with its ZIP-215 and cofactorless verdicts
(written by ``python -m tests.vectors.generate``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.reference import ed25519
from node.reference.ed25519 import BASE, L, P, TORSION
from tests.vectors.gen_common import challenge, keypair, no_point_encoding, scalar_of, sign, with_s


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
