"""RFC 9421 request signatures, sans IO: the RFC's own Ed25519 example, interop with the independent
``http-message-signatures`` package, the Content-Digest check and the nonce memory (every reason code
is tests/test_httpsig_reasons.py)."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, InvalidSignature, MappingKeyResolver
from http_message_signatures.algorithms import ED25519
from hypothesis import given
from hypothesis import strategies as st

from federation.auth import SignatureAuth, parts_from_httpx
from federation.digest import check_content_digest, content_digest
from federation.httpsig import (
    COVERED,
    RequestParts,
    new_nonce,
    sign_components,
    sign_request,
    signature_base,
    signature_params,
    verify_request,
)
from federation.noncecache import Admission, NonceCache
from federation.sf import Dictionary
from node.errors import RequestSignatureError
from node.identity import Identity
from node.nodeid import encode_node_id

NOW = 1_700_000_000
ALICE = Identity.from_seed(bytes([0xA1]) * 32)
BOB = Identity.from_seed(bytes([0xB0]) * 32)

# --- RFC 9421 appendix B.1.4 (test-key-ed25519) and B.2 (the example request), verbatim ---------------

RFC_PUBLIC_KEY_PEM = b"""\
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
"""

RFC_PRIVATE_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""

RFC_REQUEST = """\
POST /foo?param=Value&Pet=dog HTTP/1.1
Host: example.com
Date: Tue, 20 Apr 2021 02:07:55 GMT
Content-Type: application/json
Content-Digest: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:
Content-Length: 18

{"hello": "world"}
"""

# B.2.6, with the RFC 8792 line wrapping of the last line undone.
RFC_B26_COMPONENTS = ("date", "@method", "@path", "@authority", "content-type", "content-length")
RFC_B26_PARAMS = (("created", 1618884473), ("keyid", "test-key-ed25519"))
RFC_B26_BASE = """\
"date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@authority": example.com
"content-type": application/json
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519\""""
RFC_B26_SIGNATURE_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");'
    'created=1618884473;keyid="test-key-ed25519"'
)
RFC_B26_SIGNATURE = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"


def parse_request_text(text: str, scheme: str = "https") -> RequestParts:
    head, _, body = text.partition("\n\n")
    request_line, *lines = head.split("\n")
    method, target, _version = request_line.split(" ")
    headers = tuple(tuple(line.split(": ", 1)) for line in lines)
    host = next(v for k, v in headers if k.lower() == "host")
    return RequestParts(method, scheme, host, target, headers, body.removesuffix("\n").encode())


def rfc_identity() -> Identity:
    return Identity.from_seed(load_pem_private_key(RFC_PRIVATE_KEY_PEM, password=None).private_bytes_raw())


def test_rfc9421_b26_signature_base_is_byte_exact():
    parts = parse_request_text(RFC_REQUEST)
    base = signature_base(parts, signature_params(RFC_B26_COMPONENTS, RFC_B26_PARAMS))
    assert base == RFC_B26_BASE.encode("ascii")


def test_rfc9421_b26_signature_is_reproduced():
    parts = parse_request_text(RFC_REQUEST)
    signature_input, signature = sign_components(
        parts, RFC_B26_COMPONENTS, RFC_B26_PARAMS, rfc_identity(), label="sig-b26"
    )
    assert signature_input == RFC_B26_SIGNATURE_INPUT
    assert signature == RFC_B26_SIGNATURE
    # and the RFC's public key (an independent Ed25519 implementation) accepts it
    public = load_pem_public_key(RFC_PUBLIC_KEY_PEM)
    assert public.public_bytes_raw() == rfc_identity().public_key
    public.verify(_sig_bytes(signature), RFC_B26_BASE.encode())


def _sig_bytes(field: str) -> bytes:
    parsed = Dictionary()
    parsed.parse(field.encode())
    return next(iter(parsed.values())).value


def test_rfc_example_content_digest_checks_with_sha512():
    parts = parse_request_text(RFC_REQUEST)
    check_content_digest(parts.field("content-digest"), parts.body, require="sha-512")
    with pytest.raises(RequestSignatureError) as info:
        check_content_digest(parts.field("content-digest"), parts.body + b" ", require="sha-512")
    assert info.value.reason == "digest_mismatch"


def test_content_digest_of_empty_body():
    # RFC 9530 appendix: the sha-256 of an empty body
    assert content_digest(b"") == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


# --- our profile: sign and verify ---------------------------------------------------------------------


def signed(
    identity: Identity = ALICE,
    *,
    method: str = "POST",
    target: str = "/gossip/push?hops=3",
    body: bytes = b"\x92\x01\x02",
    now: int = NOW,
    nonce: str | None = None,
    authority: str = "node.example:8470",
) -> RequestParts:
    parts = RequestParts(method, "http", authority, target, (("Content-Type", "application/msgpack"),), body)
    fields = sign_request(parts, identity, now=now, nonce=nonce or new_nonce())
    for name, value in fields.items():
        parts = parts.with_field(name, value)
    return parts


def verify(parts: RequestParts, *, now: int = NOW, nonces: NonceCache | None = None, **kwargs):
    return verify_request(parts, now=now, nonces=nonces if nonces is not None else NonceCache(), **kwargs)


def reason_of(parts: RequestParts, **kwargs) -> str:
    with pytest.raises(RequestSignatureError) as info:
        verify(parts, **kwargs)
    return info.value.reason


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("POST", "/gossip/push?hops=3", b"\x92\x01\x02"),
        ("GET", "/inbox", b""),
        ("GET", "/", b""),
        ("PUT", "/a%20b?q=%C3%A4&x", b"x" * 5000),
    ],
)
def test_round_trip(method, target, body):
    parts = signed(method=method, target=target, body=body)
    peer = verify(parts)
    assert peer.key == ALICE.public_key
    assert peer.node_id == encode_node_id(ALICE.public_key)
    assert peer.created == NOW


def test_nonces_are_fresh_22_character_base64url():
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(
        len(n) == 22 and set(n) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for n in nonces
    )


# The worked example of PROTOCOL.md section 6 (seed a1 × 32); the document copies these values.
EXAMPLE_SIGNATURE_INPUT = (
    'vrm=("@method" "@authority" "@path" "@query" "content-digest");created=1700000000'
    ';nonce="AAECAwQFBgcICQoLDA0ODw";keyid="vrm1h37tedtrvd6l58vzgdx5veeymy3h0afmnqrfth2f6fksecfzqkjstkrc8w";alg="ed25519"'
)
EXAMPLE_BASE = f"""\
"@method": POST
"@authority": node.example:8470
"@path": /gossip/push
"@query": ?hops=3
"content-digest": sha-256=:8w180khfggXxRZx6JZEhpdVK5odePdz+dq+6yev5W6Q=:
"@signature-params": {EXAMPLE_SIGNATURE_INPUT.removeprefix("vrm=")}"""
EXAMPLE_SIGNATURE = "vrm=:zfWurGZuU59kz/i1vkJUvdc219M9T2duUKznKpPuNVMTzJtPgVNH5dgjYgZ6SL0XZs2zPpRTZ0fh8U/QP6/hBQ==:"


def test_protocol_example():
    parts = signed(nonce="AAECAwQFBgcICQoLDA0ODw")
    assert encode_node_id(ALICE.public_key) == "vrm1h37tedtrvd6l58vzgdx5veeymy3h0afmnqrfth2f6fksecfzqkjstkrc8w"
    assert parts.field("content-digest") == "sha-256=:8w180khfggXxRZx6JZEhpdVK5odePdz+dq+6yev5W6Q=:"
    assert parts.field("signature-input") == EXAMPLE_SIGNATURE_INPUT
    inputs = Dictionary()
    inputs.parse(EXAMPLE_SIGNATURE_INPUT.encode())
    assert signature_base(parts, inputs["vrm"]) == EXAMPLE_BASE.encode()
    assert parts.field("signature") == EXAMPLE_SIGNATURE
    Ed25519PublicKey.from_public_bytes(ALICE.public_key).verify(_sig_bytes(EXAMPLE_SIGNATURE), EXAMPLE_BASE.encode())


def test_authority_is_normalized_on_both_sides():
    parts = signed()
    assert verify(dataclasses.replace(parts, authority="NODE.example:8470")).key == ALICE.public_key
    default_port = signed(authority="node.example")
    assert verify(dataclasses.replace(default_port, authority="Node.Example:80")).key == ALICE.public_key
    assert reason_of(dataclasses.replace(default_port, authority="node.example:8080")) == "bad_signature"


def test_extra_covered_components_are_allowed():
    parts = RequestParts("POST", "https", "n.example", "/x", (("Content-Type", "application/json"),), b"{}")
    parts = parts.with_field("content-digest", content_digest(b"{}"))
    params = (("created", NOW), ("nonce", new_nonce()), ("keyid", encode_node_id(ALICE.public_key)), ("alg", "ed25519"))
    sig_input, sig = sign_components(parts, (*COVERED, "content-type", "@target-uri"), params, ALICE)
    assert verify(parts.with_field("signature-input", sig_input).with_field("signature", sig)).key == ALICE.public_key


# --- interop with the independent http-message-signatures package -----------------------------------


def hms_message(request: httpx.Request) -> SimpleNamespace:
    return SimpleNamespace(method=request.method, url=str(request.url), headers=request.headers)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "http://node.example:8470/gossip/push?hops=3", b"\x92\x01\x02"),
        ("POST", "https://node.example/gossip/push", b"\x00" * 1000),
        ("GET", "http://127.0.0.1:8470/inbox?since=17&limit=100", None),
        ("GET", "http://node.example/peers", None),
    ],
)
def test_http_message_signatures_verifies_our_signature(method, url, body):
    request = httpx.Request(method, url, content=body)
    flow = SignatureAuth(ALICE).auth_flow(request)
    request = next(flow)
    node_id = encode_node_id(ALICE.public_key)
    resolver = MappingKeyResolver(
        public_keys={node_id: Ed25519PublicKey.from_public_bytes(ALICE.public_key)}, private_keys={}
    )
    verifier = HTTPMessageVerifier(signature_algorithm=ED25519, key_resolver=resolver)
    (result,) = verifier.verify(
        hms_message(request), max_age=timedelta(seconds=300), require_components=COVERED, body=request.content
    )
    assert result.label == "vrm" and result.parameters["keyid"] == node_id and result.parameters["alg"] == "ed25519"
    assert result.body == request.content
    # their verifier is really checking: a changed path fails there too
    tampered = hms_message(request)
    tampered.url = tampered.url.replace("node.example", "other.example").replace("127.0.0.1", "127.0.0.2")
    with pytest.raises(InvalidSignature):
        verifier.verify(tampered, max_age=timedelta(seconds=300), body=request.content)


@pytest.mark.parametrize("url", ["http://node.example:8470/gossip/push?hops=3", "https://node.example/inbox"])
@pytest.mark.parametrize("body", [b"\x92\x01\x02", b""])
def test_we_verify_a_signature_made_by_http_message_signatures(url, body):
    seed = bytes(range(32))
    identity = Identity.from_seed(seed)
    node_id = encode_node_id(identity.public_key)
    resolver = MappingKeyResolver(public_keys={}, private_keys={node_id: Ed25519PrivateKey.from_private_bytes(seed)})
    request = httpx.Request("POST", url, content=body)
    HTTPMessageSigner(signature_algorithm=ED25519, key_resolver=resolver).sign(
        hms_message(request),
        key_id=node_id,
        created=datetime.fromtimestamp(NOW, UTC),
        nonce=new_nonce(),
        label="vrm",
        covered_component_ids=COVERED,
        body=body,
    )
    peer = verify(parts_from_httpx(request))
    assert peer.key == identity.public_key
    assert reason_of(dataclasses.replace(parts_from_httpx(request), method="PUT")) == "bad_signature"


# --- the nonce memory ----------------------------------------------------------------------------------


def test_nonce_remembered_for_the_window_then_dropped():
    cache = NonceCache(window=300)
    assert cache.admit("n", created=100, now=100) is Admission.NEW
    assert cache.admit("n", created=100, now=400) is Admission.REPLAYED  # 400 <= 100 + 300: still valid
    assert cache.admit("m", created=401, now=401) is Admission.NEW  # expires "n"
    assert len(cache) == 1
    assert cache.admit("n", created=100, now=401) is Admission.FORGOTTEN  # stale by time anyway


def test_future_created_is_remembered_from_created():
    cache = NonceCache(window=300)
    assert cache.admit("f", created=160, now=100) is Admission.NEW
    assert cache.admit("f", created=160, now=455) is Admission.REPLAYED


def test_eviction_raises_the_floor_and_never_reopens_a_replay():
    cache = NonceCache(window=300, capacity=3)
    for key, created in (("a", 100), ("b", 101), ("c", 102)):
        assert cache.admit(key, created, now=102) is Admission.NEW
    assert cache.admit("d", 103, now=103) is Admission.NEW  # evicts "a" early
    assert cache.floor == 100 and len(cache) == 3
    assert cache.admit("a", 100, now=104) is Admission.FORGOTTEN  # a replay of "a" is not accepted
    assert cache.admit("e", 100, now=104) is Admission.FORGOTTEN  # nor anything else that old
    assert cache.admit("b", 101, now=104) is Admission.REPLAYED
    # full, and not newer than the oldest retained (101): refused without evicting anything
    assert cache.admit("g", 101, now=104) is Admission.FORGOTTEN
    assert cache.floor == 100 and len(cache) == 3


@given(
    created=st.lists(st.integers(0, 500), min_size=1, max_size=16),
    ops=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 6)), max_size=300),
    capacity=st.integers(1, 8),
)
def test_nonce_cache_never_admits_a_replay_and_stays_bounded(created, ops, capacity):
    # A signed request is (nonce, created): a replay repeats both. Request i is (i, 800 + created[i]).
    cache = NonceCache(window=300, capacity=capacity)
    admitted: set[int] = set()
    now = 1000
    for index, step in ops:
        now += step
        key = index % len(created)
        signed_at = 800 + created[key]
        if not now - 300 <= signed_at <= now + 60:
            continue  # the verifier's time check refuses it before the cache is asked
        result = cache.admit(key, signed_at, now)
        if key in admitted:
            assert result is not Admission.NEW
        if result is Admission.NEW:
            admitted.add(key)
        assert len(cache) <= capacity


def test_nonce_cache_without_pressure_is_exact():
    cache = NonceCache(window=300, capacity=1000)
    for i in range(500):
        assert cache.admit(i, NOW, NOW) is Admission.NEW
    assert all(cache.admit(i, NOW, NOW + 300) is Admission.REPLAYED for i in range(500))
    assert cache.floor is None


# --- the nonce memory is shared per signer ------------------------------------------------------------


def test_one_signers_future_flood_does_not_refuse_other_signers():
    # The reviewer's scenario: a key fills the memory with valid requests signed MAX_SKEW ahead.
    cache = NonceCache(window=300, capacity=50)
    for _ in range(50):
        verify(signed(BOB, method="GET", target="/v1/node", body=b"", now=NOW + 60), nonces=cache)
    assert len(cache) == 50
    for skew in (0, 30, 59):
        assert verify(signed(ALICE, now=NOW + skew), nonces=cache).key == ALICE.public_key
    assert cache.floor is None  # nobody else's floor moved
    assert cache.floor_of(ALICE.public_key) is None
    assert cache.floor_of(BOB.public_key) == NOW + 60
    # the flooder's own further requests are what is refused
    again = signed(BOB, method="GET", target="/v1/node", body=b"", now=NOW + 60)
    assert reason_of(again, nonces=cache) == "stale"
    assert len(cache) == 50


def test_the_flooders_evicted_nonces_stay_refused_and_others_are_remembered():
    cache = NonceCache(window=300, capacity=4)
    assert cache.admit(("alice", "a1"), 100, now=100) is Admission.NEW
    for i, created in enumerate((160, 161, 162)):
        assert cache.admit(("mallory", f"m{i}"), created, now=100) is Admission.NEW
    assert cache.admit(("alice", "a2"), 100, now=101) is Admission.NEW  # evicts mallory's oldest (160)
    assert cache.floor_of("mallory") == 160 and cache.floor_of("alice") is None and len(cache) == 4
    assert cache.admit(("mallory", "m0"), 160, now=102) is Admission.FORGOTTEN  # the evicted one's replay
    assert cache.admit(("mallory", "m1"), 161, now=102) is Admission.REPLAYED
    assert cache.admit(("alice", "a1"), 100, now=102) is Admission.REPLAYED  # alice lost nothing
    assert cache.admit(("alice", "a2"), 100, now=102) is Admission.REPLAYED
    # mallory, now tied with alice at two entries, makes room from her own entries only
    assert cache.admit(("mallory", "m3"), 170, now=103) is Admission.NEW
    assert cache.admit(("mallory", "m1"), 161, now=103) is Admission.FORGOTTEN
    assert cache.floor_of("mallory") == 161 and cache.floor_of("alice") is None
    # and never for a request older than what it would forget
    assert cache.admit(("mallory", "m4"), 165, now=103) is Admission.NEW  # evicts 162
    assert cache.admit(("mallory", "m5"), 163, now=103) is Admission.FORGOTTEN  # 163 <= 165, her oldest now


def test_an_honest_signer_holding_the_most_makes_room_from_its_own_entries():
    cache = NonceCache(window=300, capacity=3)
    for nonce, created in (("a1", 100), ("a2", 101)):
        assert cache.admit(("alice", nonce), created, now=101) is Admission.NEW
    assert cache.admit(("bob", "b1"), 101, now=101) is Admission.NEW
    assert cache.admit(("bob", "b2"), 102, now=102) is Admission.NEW  # alice holds the most: her 100 goes
    assert cache.floor_of("alice") == 100 and cache.floor_of("bob") is None
    assert cache.admit(("alice", "a1"), 100, now=102) is Admission.FORGOTTEN
    assert cache.admit(("bob", "b1"), 101, now=102) is Admission.REPLAYED


def test_when_every_signer_holds_one_entry_the_global_floor_rises():
    cache = NonceCache(window=300, capacity=3)
    for signer, created in (("a", 100), ("b", 101), ("c", 102)):
        assert cache.admit((signer, "n"), created, now=102) is Admission.NEW
    assert cache.admit(("d", "n"), 103, now=103) is Admission.NEW  # no one holds more: the oldest goes
    assert cache.floor == 100 and cache.floor_of("a") == 100 and cache.floor_of("d") == 100
    assert cache.admit(("a", "n"), 100, now=104) is Admission.FORGOTTEN
    assert cache.admit(("b", "n"), 101, now=104) is Admission.REPLAYED
    # a signer replacing its only entry raises only its own floor
    assert cache.admit(("b", "m"), 104, now=104) is Admission.NEW
    assert cache.floor == 100 and cache.floor_of("b") == 101
    assert cache.admit(("b", "n"), 101, now=105) is Admission.FORGOTTEN


def test_per_signer_state_stays_bounded_under_many_signers():
    capacity = 16
    cache = NonceCache(window=300, capacity=capacity)
    now = NOW
    for i in range(5_000):
        now += i % 3 == 0  # about 1 700 s: entries expire too
        signer = i // 2 % 700 if i % 5 else "flooder"  # two requests in a row: some get a floor of their own
        cache.admit((signer, i), now + (60 if signer == "flooder" else i % 7), now)
        assert len(cache) <= capacity
        assert len(cache._by_signer) <= capacity and len(cache._floors) <= capacity
        assert len(cache._heap) <= capacity + capacity // 4  # evicted entries are compacted away
    assert sum(len(held) for held in cache._by_signer.values()) == len(cache)


@given(
    created=st.lists(st.integers(0, 500), min_size=1, max_size=24),
    ops=st.lists(st.tuples(st.integers(0, 23), st.integers(0, 6)), max_size=300),
    signers=st.integers(1, 4),
    capacity=st.integers(1, 8),
)
def test_nonce_cache_shared_by_signers_never_admits_a_replay(created, ops, signers, capacity):
    # Request i is signed by signer i % signers at 800 + created[i]; a replay repeats it.
    cache = NonceCache(window=300, capacity=capacity)
    admitted: set[tuple[int, int]] = set()
    now = 1000
    for index, step in ops:
        now += step
        i = index % len(created)
        key = (i % signers, i)
        signed_at = 800 + created[i]
        if not now - 300 <= signed_at <= now + 60:
            continue
        result = cache.admit(key, signed_at, now)
        if key in admitted:
            assert result is not Admission.NEW
        if result is Admission.NEW:
            admitted.add(key)
        assert len(cache) <= capacity and len(cache._floors) <= capacity


def test_clock_default_is_wall_time():
    # the Auth's default clock signs with the current time, which a fresh verifier accepts
    request = next(SignatureAuth(ALICE).auth_flow(httpx.Request("GET", "http://n.example/")))
    assert verify(parts_from_httpx(request), now=int(time.time())).key == ALICE.public_key
