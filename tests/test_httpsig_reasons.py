"""RFC 9421 request signatures, sans IO: every reason code our profile refuses a request with (each
broken header, parameter and signature), replays, and garbage that only ever raises
RequestSignatureError. The signing helpers are tests/test_httpsig.py's.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.digest import content_digest
from federation.httpsig import COVERED, RequestParts, new_nonce, sign_components
from federation.noncecache import NonceCache
from federation.sf import Dictionary
from node.errors import RequestSignatureError
from node.nodeid import encode_node_id
from tests.test_httpsig import ALICE, BOB, NOW, reason_of, signed, verify


def edit_params(parts: RequestParts, **changes) -> RequestParts:
    """Change signature parameters in Signature-Input (None removes one) without re-signing."""
    inputs = Dictionary()
    inputs.parse(parts.field("signature-input").encode())
    for name, value in changes.items():
        if value is None:
            del inputs["vrm"].params[name]
        else:
            inputs["vrm"].params[name] = value
    return parts.with_field("signature-input", str(inputs))


def sign_with(components, params=None, identity=ALICE) -> RequestParts:
    parts = RequestParts("POST", "http", "node.example", "/p?q=1", (), b"body")
    parts = parts.with_field("content-digest", content_digest(b"body"))
    if params is None:
        params = (
            ("created", NOW),
            ("nonce", new_nonce()),
            ("keyid", encode_node_id(identity.public_key)),
            ("alg", "ed25519"),
        )
    sig_input, sig = sign_components(parts, components, params, identity)
    return parts.with_field("signature-input", sig_input).with_field("signature", sig)


def without(parts: RequestParts, name: str) -> RequestParts:
    return dataclasses.replace(parts, headers=tuple(h for h in parts.headers if h[0].lower() != name))


def typo(text: str) -> str:
    return text[:-1] + ("q" if text[-1] != "q" else "p")


def add_component(parts: RequestParts, name: str) -> RequestParts:
    inputs = Dictionary()
    inputs.parse(parts.field("signature-input").encode())
    inputs["vrm"].append(name)
    return parts.with_field("signature-input", str(inputs))


def retyped(parts: RequestParts, old: str, new: str) -> RequestParts:
    return parts.with_field("signature-input", parts.field("signature-input").replace(old, new))


def replaced_signature(parts: RequestParts, signature: bytes) -> RequestParts:
    return parts.with_field("signature", str(Dictionary({"vrm": signature})))


CASES = {
    # tampering after signing
    "method": (lambda: dataclasses.replace(signed(), method="PUT"), "bad_signature"),
    "path": (lambda: dataclasses.replace(signed(), target="/gossip/pull?hops=3"), "bad_signature"),
    "query": (lambda: dataclasses.replace(signed(), target="/gossip/push?hops=9"), "bad_signature"),
    "query added": (lambda: dataclasses.replace(signed(target="/inbox"), target="/inbox?all=1"), "bad_signature"),
    "query dropped": (lambda: dataclasses.replace(signed(), target="/gossip/push"), "bad_signature"),
    "authority": (lambda: dataclasses.replace(signed(), authority="other.example:8470"), "bad_signature"),
    "body": (lambda: dataclasses.replace(signed(), body=b"\x92\x01\x03"), "digest_mismatch"),
    "body and digest": (
        lambda: dataclasses.replace(signed(), body=b"x").with_field("content-digest", content_digest(b"x")),
        "bad_signature",
    ),
    "signature bytes": (lambda: replaced_signature(signed(), bytes(64)), "bad_signature"),
    "wrong key": (lambda: edit_params(signed(ALICE), keyid=encode_node_id(BOB.public_key)), "bad_signature"),
    # keys
    "keyid not a node id": (lambda: edit_params(signed(), keyid="test-key-ed25519"), "bad_key_id"),
    "keyid typo": (lambda: edit_params(signed(), keyid=typo(encode_node_id(ALICE.public_key))), "bad_key_id"),
    "keyid upper case": (lambda: edit_params(signed(), keyid=encode_node_id(ALICE.public_key).upper()), "bad_key_id"),
    # time
    "stale": (lambda: signed(now=NOW - 301), "stale"),
    "expires past": (lambda: edit_params(signed(), expires=NOW - 1), "stale"),
    "from future": (lambda: signed(now=NOW + 61), "from_future"),
    # missing pieces
    "no signature fields": (lambda: without(without(signed(), "signature"), "signature-input"), "missing_signature"),
    "other label only": (
        lambda: signed().with_field("signature-input", 'x=("@method");created=1').with_field("signature", "x=:AA==:"),
        "missing_signature",
    ),
    "no Signature": (lambda: without(signed(), "signature"), "malformed_signature"),
    "no Signature-Input": (lambda: without(signed(), "signature-input"), "malformed_signature"),
    "no Content-Digest": (lambda: without(signed(), "content-digest"), "digest_mismatch"),
    "digest garbage": (lambda: signed().with_field("content-digest", "sha-256=abc"), "digest_mismatch"),
    "digest sha-512 only": (
        lambda: signed().with_field("content-digest", content_digest(b"\x92\x01\x02", "sha-512")),
        "digest_mismatch",
    ),
    **{
        f"not covering {name}": (lambda name=name: sign_with([c for c in COVERED if c != name]), "missing_component")
        for name in COVERED
    },
    # algorithm
    "alg rsa": (lambda: edit_params(signed(), alg="rsa-pss-sha512"), "unsupported_algorithm"),
    "alg missing": (lambda: edit_params(signed(), alg=None), "unsupported_algorithm"),
    # malformed
    "created missing": (lambda: edit_params(signed(), created=None), "malformed_signature"),
    "created a string": (lambda: edit_params(signed(), created=str(NOW)), "malformed_signature"),
    "created a boolean": (lambda: edit_params(signed(), created=True), "malformed_signature"),
    "nonce missing": (lambda: edit_params(signed(), nonce=None), "malformed_signature"),
    "nonce short": (lambda: edit_params(signed(), nonce="abc"), "malformed_signature"),
    "nonce long": (lambda: edit_params(signed(), nonce="n" * 65), "malformed_signature"),
    "keyid missing": (lambda: edit_params(signed(), keyid=None), "malformed_signature"),
    "unknown parameter": (lambda: edit_params(signed(), color="red"), "malformed_signature"),
    "short signature": (lambda: replaced_signature(signed(), bytes(63)), "malformed_signature"),
    "signature a string": (lambda: signed().with_field("signature", 'vrm="abc"'), "malformed_signature"),
    "input not a list": (lambda: signed().with_field("signature-input", 'vrm="@method"'), "malformed_signature"),
    "duplicate component": (lambda: sign_with([*COVERED, "@method"]), "malformed_signature"),
    "component with parameters": (
        lambda: retyped(signed(), '"content-digest")', '"content-digest";sf)'),
        "malformed_signature",
    ),
    "component a token": (lambda: retyped(signed(), '"content-digest")', "content-digest)"), "malformed_signature"),
    "covered field absent": (lambda: add_component(signed(), "date"), "malformed_signature"),
    "non-ASCII target": (lambda: dataclasses.replace(signed(), target="/gossip/pushé?hops=3"), "malformed_signature"),
    "too long": (lambda: signed().with_field("signature", "vrm=:" + "A" * 9000 + ":"), "malformed_signature"),
}


@pytest.mark.parametrize("case", CASES)
def test_reason_codes(case):
    make, reason = CASES[case]
    assert reason_of(make()) == reason


def test_unknown_key_when_not_accepted():
    parts = signed(ALICE)
    assert reason_of(parts, accept_key=BOB.public_key.__eq__) == "unknown_key"
    assert verify(parts, accept_key=ALICE.public_key.__eq__).key == ALICE.public_key


def test_replayed_nonce():
    nonces = NonceCache()
    nonce = new_nonce()
    parts = signed(nonce=nonce)
    verify(parts, nonces=nonces)
    assert reason_of(parts, nonces=nonces, now=NOW + 299) == "replayed"
    assert reason_of(signed(nonce=nonce, target="/other"), nonces=nonces) == "replayed"
    # the same nonce from another signer is another request
    assert verify(signed(BOB, nonce=nonce), nonces=nonces).key == BOB.public_key


def test_only_authentic_requests_use_the_replay_memory():
    nonces = NonceCache()
    for make, _ in CASES.values():
        with pytest.raises(RequestSignatureError):
            verify(make(), nonces=nonces)
    assert len(nonces) == 0


def test_every_reason_code_is_produced():
    # the others are produced in tests/test_httpsig.py and tests/test_request_authority.py
    produced = {reason for _, reason in CASES.values()} | {"unknown_key", "replayed", "wrong_authority"}
    assert produced == set(RequestSignatureError.REASONS)


GARBAGE = st.one_of(
    st.text(max_size=80),
    st.text(alphabet='vrm=():;"@ -,*?0123456789abcdefAB+/', max_size=80),
    st.sampled_from(
        ["vrm", "vrm=", "vrm=(", "vrm=()", 'vrm=("@method"', "vrm=:abc", "vrm=:", "vrm=?2", "vrm=-", "vrm=1.2345"]
    ),
)


@given(sig_input=GARBAGE, sig=GARBAGE, digest=GARBAGE)
def test_garbage_fields_only_raise_request_signature_errors(sig_input, sig, digest):
    parts = signed(nonce="AAECAwQFBgcICQoLDA0ODw")
    for name, value in (("signature-input", sig_input), ("signature", sig), ("content-digest", digest)):
        mangled = parts.with_field(name, value)
        with pytest.raises(RequestSignatureError):
            verify(mangled)
