"""The signed-request vectors (tests/vectors/requests.json, PROTOCOL.md section 6): our signer
reproduces every accepted request byte for byte, our verifier gives every stated verdict, and the
generator reproduces the committed file.
"""

from __future__ import annotations

import pytest

from federation.httpsig import RequestParts, sign_request, signature_base, verify_request
from federation.noncecache import NonceCache
from federation.sf import Dictionary
from node.errors import RequestSignatureError
from node.identity import Identity
from node.nodeid import encode_node_id
from tests.vectors import VECTORS_DIR, load
from tests.vectors.gen_requests import NOT_FROM_ONE_REQUEST, SIGNED_FIELDS, parts_of

VECTORS = load("requests")
SIGNER = VECTORS["signer"]
RECEIVER = VECTORS["receiver"]
ACCEPTED = VECTORS["accepted"]
REFUSED = VECTORS["refused"]
REPLAYED = VECTORS["replayed"]


def verify(request: dict, nonces: NonceCache | None = None):
    """Our verifier as the file's receiver: its now, window, skew and authorities."""
    return verify_request(
        parts_of(request),
        now=RECEIVER["now"],
        nonces=nonces if nonces is not None else NonceCache(window=RECEIVER["window"]),
        max_skew=RECEIVER["max_skew"],
        authorities=frozenset(RECEIVER["authorities"]),
    )


def unsigned(request: dict) -> RequestParts:
    parts = parts_of(request)
    headers = tuple((name, value) for name, value in parts.headers if name.lower() not in SIGNED_FIELDS)
    return RequestParts(parts.method, parts.scheme, parts.authority, parts.target, headers, parts.body)


def test_the_file_covers_every_single_request_reason():
    identity = Identity.from_seed(bytes.fromhex(SIGNER["seed"]))
    assert identity.public_key.hex() == SIGNER["public_key"]
    assert encode_node_id(identity.public_key) == SIGNER["node_id"]
    assert 3 <= len(ACCEPTED) <= 4
    assert {v["reason"] for v in REFUSED} == set(RequestSignatureError.REASONS) - NOT_FROM_ONE_REQUEST
    names = [v["name"] for v in ACCEPTED + REFUSED]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("vector", ACCEPTED, ids=[v["name"] for v in ACCEPTED])
def test_signer_reproduces_accepted_vector(vector):
    fields = sign_request(
        unsigned(vector["request"]),
        Identity.from_seed(bytes.fromhex(SIGNER["seed"])),
        now=vector["created"],
        nonce=vector["nonce"],
    )
    sent = parts_of(vector["request"])
    # the three fields come last, in this order, exactly as signed
    assert [list(h) for h in sent.headers[-3:]] == [[name, value] for name, value in fields.items()]
    inputs = Dictionary()
    inputs.parse(fields["Signature-Input"].encode("ascii"))
    base = signature_base(sent, inputs["vrm"])
    assert base == vector["signature_base"].encode("ascii")
    assert base.endswith(b'"@signature-params": ' + fields["Signature-Input"].removeprefix("vrm=").encode())


@pytest.mark.parametrize("vector", ACCEPTED, ids=[v["name"] for v in ACCEPTED])
def test_verifier_accepts_accepted_vector(vector):
    verified = verify(vector["request"])
    assert verified.node_id == vector["node_id"] == SIGNER["node_id"]
    assert (verified.created, verified.nonce) == (vector["created"], vector["nonce"])


@pytest.mark.parametrize("vector", REFUSED, ids=[v["name"] for v in REFUSED])
def test_verifier_refuses_refused_vector(vector):
    nonces = NonceCache(window=RECEIVER["window"])
    with pytest.raises(RequestSignatureError) as info:
        verify(vector["request"], nonces)
    assert info.value.reason == vector["reason"]
    assert len(nonces) == 0  # only authentic requests reach the replay memory


def test_replayed_vector():
    assert REPLAYED["request"] == next(v["request"] for v in ACCEPTED if v["name"] == REPLAYED["of"])
    nonces = NonceCache(window=RECEIVER["window"])
    assert verify(REPLAYED["request"], nonces).node_id == REPLAYED["first"]["node_id"]
    with pytest.raises(RequestSignatureError) as info:
        verify(REPLAYED["request"], nonces)
    assert info.value.reason == REPLAYED["second"]["reason"] == "replayed"


def test_generator_reproduces_requests_json():
    # generate() is what `python -m tests.vectors.generate --check` compares against (run whole by
    # tests/test_protocol_vectors.py); this names the file when only it is stale.
    from tests.vectors.generate import generate

    path = VECTORS_DIR / "requests.json"
    assert generate()[path] == path.read_text(encoding="utf-8"), "run python -m tests.vectors.generate"
