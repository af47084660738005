"""Sealed boxes to node keys (node/seal.py): the key conversion against libsodium's vectors, round
trips, the context binding, and hostile keys and boxes, each refused with SealError.

The fixed vector (seeds, ephemeral key, plaintext, box) is in tests/vectors/grants.json, written by
``python -m tests.test_grants``; ``test_the_seal_vector`` checks it here on both backends' encodings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from node.backends import NATIVE, REFERENCE
from node.errors import VrmError
from node.identity import Identity
from node.seal import OVERHEAD, SealError, open_sealed, seal, x25519_private_key, x25519_public_key

P = 2**255 - 19
VECTORS_PATH = Path(__file__).resolve().parent / "vectors" / "grants.json"
ALICE = Identity.from_seed(bytes([2]) * 32)
BOB = Identity.from_seed(bytes([3]) * 32)
INFO = bytes([0x11]) * 32


def test_the_conversion_matches_libsodiums_vectors():
    # libsodium test/default/ed25519_convert.c and .exp
    sodium = Identity.from_seed(bytes.fromhex("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee"))
    assert sodium.public_key.hex() == "b5076a8474a832daee4dd5b4040983b6623b5f344aca57d4d6ee4baf3f259e6e"
    assert x25519_public_key(sodium.public_key).hex() == (
        "f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50"
    )
    assert x25519_private_key(sodium).private_bytes_raw().hex() == (
        "8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166"
    )
    # RFC 8032 test 1's key
    rfc = Identity.from_seed(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert x25519_public_key(rfc.public_key).hex() == "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e"


def test_the_public_conversion_agrees_with_the_private_one():
    for _ in range(40):
        identity = Identity.generate()
        private = x25519_private_key(identity)
        assert x25519_public_key(identity.public_key) == private.public_key().public_bytes_raw()


@pytest.mark.parametrize("plaintext", [b"", b"x", b"\x82\xa5email\xa3a@b" * 50, bytes(range(256)) * 100])
def test_a_box_opens_with_the_recipients_key_only(plaintext):
    box = seal(ALICE.public_key, plaintext, info=INFO)
    assert len(box) == len(plaintext) + OVERHEAD
    assert open_sealed(ALICE, box, info=INFO) == plaintext
    with pytest.raises(SealError):
        open_sealed(BOB, box, info=INFO)


def test_every_box_has_its_own_ephemeral_key():
    first, second = seal(ALICE.public_key, b"same", info=INFO), seal(ALICE.public_key, b"same", info=INFO)
    assert first[:32] != second[:32] and first[32:] != second[32:]


def test_a_box_opens_only_for_its_context():
    box = seal(ALICE.public_key, b"data", info=INFO)
    for info in (b"", bytes(32), INFO[:-1], INFO + b"\x00"):
        with pytest.raises(SealError):
            open_sealed(ALICE, box, info=info)


def test_truncated_boxes_are_refused():
    box = seal(ALICE.public_key, b"shipping address", info=INFO)
    for length in [*range(0, OVERHEAD + 1), len(box) - 1]:
        if length == OVERHEAD:
            continue  # 32 + 16 bytes is a valid box of an empty plaintext, but not this one's
        with pytest.raises(SealError):
            open_sealed(ALICE, box[:length], info=INFO)
    with pytest.raises(SealError):
        open_sealed(ALICE, box[:OVERHEAD], info=INFO)


def test_every_altered_byte_is_refused():
    box = seal(ALICE.public_key, b"1 Main Street", info=INFO)
    for i in range(len(box)):
        for flip in (0x01, 0x80):
            altered = bytearray(box)
            altered[i] ^= flip
            with pytest.raises(SealError):
                open_sealed(ALICE, bytes(altered), info=INFO)
    with pytest.raises(SealError):
        open_sealed(ALICE, box + b"\x00", info=INFO)


def test_a_small_order_ephemeral_key_is_refused():
    box = seal(ALICE.public_key, b"data", info=INFO)
    for u in (0, 1, P - 1, P, P + 1):  # points of order 1, 2 and 4 and their non-canonical forms
        forged = (u % 2**255).to_bytes(32, "little") + box[32:]
        with pytest.raises(SealError):
            open_sealed(ALICE, forged, info=INFO)


def test_hostile_inputs_are_refused_with_seal_error():
    for bad in (None, "text", 42, bytearray(10)):
        with pytest.raises(SealError):
            open_sealed(ALICE, bad, info=INFO)  # type: ignore[arg-type]
    for info in (None, "text", bytes(2000)):
        with pytest.raises(SealError):
            seal(ALICE.public_key, b"x", info=info)  # type: ignore[arg-type]
    with pytest.raises(SealError):
        seal(ALICE.public_key, "text", info=INFO)  # type: ignore[arg-type]
    assert issubclass(SealError, VrmError)


# Encodings of Ed25519 points of small order (1, 2, 4, 8), and of no point at all.
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # the identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # (0, -1): order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4, other sign
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
]
NOT_A_POINT = [
    "0200000000000000000000000000000000000000000000000000000000000000",  # y = 2: x² has no root
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p: not canonical
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1: the identity, non-canonical
    "0100000000000000000000000000000000000000000000000000000000000080",  # x = 0 with the sign bit set
]


@pytest.mark.parametrize("encoded", SMALL_ORDER + NOT_A_POINT)
def test_keys_that_are_no_usable_point_are_refused(encoded):
    with pytest.raises(SealError):
        x25519_public_key(bytes.fromhex(encoded))
    with pytest.raises(SealError):
        seal(bytes.fromhex(encoded), b"data", info=INFO)


def _edwards_encode(point):
    x, y, z, _ = point
    zi = pow(z, -1, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def test_a_key_with_a_torsion_component_is_refused():
    """A valid key plus a point of order 2 (or 8) is on the curve but outside the prime-order
    subgroup: libsodium refuses it, so do we."""
    from node.seal import _add, _decode_point

    point = _decode_point(ALICE.public_key)
    for torsion in ("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", SMALL_ORDER[4]):
        mixed = _edwards_encode(_add(point, _decode_point(bytes.fromhex(torsion))))
        assert _decode_point(mixed) is not None  # a point of the curve
        with pytest.raises(SealError, match="subgroup"):
            x25519_public_key(mixed)
    for bad in (b"", bytes(31), bytes(33), "00" * 32):
        with pytest.raises(SealError):
            x25519_public_key(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", [NATIVE, REFERENCE], ids=["native", "reference"])
def test_the_seal_vector(backend):
    vector = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["seal"]
    recipient = Identity.from_seed(bytes.fromhex(vector["recipient_seed"]))
    assert recipient.public_key.hex() == vector["recipient_public_key"]
    assert x25519_public_key(recipient.public_key).hex() == vector["recipient_x25519_public_key"]
    ephemeral = bytes.fromhex(vector["ephemeral_private_key"])
    assert X25519PrivateKey.from_private_bytes(ephemeral).public_key().public_bytes_raw().hex() == vector[
        "ephemeral_public_key"
    ]
    values = {k: v for k, v in vector["values"].items()}
    plaintext = backend.encode(values)
    assert plaintext.hex() == vector["plaintext"]
    info = bytes.fromhex(vector["info"])
    shared = X25519PrivateKey.from_private_bytes(ephemeral).exchange(
        X25519PublicKey.from_public_bytes(x25519_public_key(recipient.public_key))
    )
    assert shared.hex() == vector["shared_secret"]
    # The recipient derives the same secret from its identity alone.
    their_public = X25519PublicKey.from_public_bytes(bytes.fromhex(vector["ephemeral_public_key"]))
    mine = x25519_private_key(recipient).exchange(their_public)
    assert mine == shared
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vrm-seal-v1" + info).derive(shared)
    assert key.hex() == vector["key"]
    box = seal(recipient.public_key, plaintext, info=info, ephemeral=ephemeral)
    aad = box[:32] + x25519_public_key(recipient.public_key)
    assert box[32:] == ChaCha20Poly1305(key).encrypt(bytes(12), plaintext, aad)
    assert box.hex() == vector["sealed"]
    assert hashlib.sha256(box).hexdigest() == vector["sealed_sha256"]
    assert backend.decode(open_sealed(recipient, box, info=info)) == values
