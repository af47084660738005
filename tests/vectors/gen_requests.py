"""tests/vectors/requests.json: signed HTTP requests (PROTOCOL.md section 6), accepted and refused
(written by ``python -m tests.vectors.generate``).

Every request is built, signed and then mangled as a vector says, written in its JSON form, read back
from that form and verified by ``federation.httpsig.verify_request`` with a fresh NonceCache at the
file's ``now`` and authorities: what is written is what was checked, and a verdict that differs from
the one the construction intends stops the generator.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

from federation.digest import content_digest
from federation.httpsig import (
    ALGORITHM,
    COVERED,
    MAX_SKEW,
    RequestParts,
    VerifiedRequest,
    sign_components,
    sign_request,
    signature_base,
    verify_request,
)
from federation.noncecache import DEFAULT_WINDOW, NonceCache
from federation.sf import Dictionary
from node.errors import RequestSignatureError
from node.identity import Identity
from node.nodeid import encode_node_id
from node.reference import codec, ed25519

SEED = bytes([0xA1]) * 32  # section 6's Example signer
SIGNER = Identity.from_seed(SEED)
NODE_ID = encode_node_id(SIGNER.public_key)
OTHER = Identity.from_seed(bytes([0xB0]) * 32)  # signs where the keyid says SIGNER
AUTHORITIES = ("node.example", "node.example:8470")
CREATED = 1_700_000_000
NOW = CREATED + 10  # the receiver's clock runs a little behind the requests' arrival
SIGNED_FIELDS = ("content-digest", "signature-input", "signature")
EXAMPLE_NONCE = "AAECAwQFBgcICQoLDA0ODw"  # section 6's Example
# Reasons that need more than one request and the file's receiver: unknown_key a pinned key,
# replayed an earlier request (the "replayed" vector).
NOT_FROM_ONE_REQUEST = {"unknown_key", "replayed"}

MSGPACK = (("Content-Type", "application/msgpack"), ("Accept", "application/msgpack"))
GOSSIP_BODY = codec.encode([[3, bytes(range(0xF8, 0x100)) + b"\x00\x01"]])  # gossip-item shaped, not a real envelope
HELLO_BODY = codec.encode({"name": "example", "role": "vendor", "url": "https://node.example"})


def nonce_of(name: str) -> str:
    """A fixed, distinct nonce per vector: 16 bytes of SHA-256(name), unpadded base64url (22 chars)."""
    digest = hashlib.sha256(b"vrm request vector " + name.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def params_of(nonce: str, *, created: int = CREATED, keyid: str = NODE_ID, alg: str | None = ALGORITHM,
              **extra: int | str) -> list[tuple[str, int | str]]:
    """Our signer's parameters in its order; ``alg=None`` leaves alg out, ``extra`` goes last."""
    params: list[tuple[str, int | str]] = [("created", created), ("nonce", nonce), ("keyid", keyid)]
    if alg is not None:
        params.append(("alg", alg))
    return params + list(extra.items())


def signed(parts: RequestParts, nonce: str, *, created: int = CREATED) -> RequestParts:
    """``parts`` signed exactly as our deliverer signs: ``sign_request``."""
    for name, value in sign_request(parts, SIGNER, now=created, nonce=nonce).items():
        parts = parts.with_field(name, value)
    return parts


def signed_with(parts: RequestParts, params: list[tuple[str, int | str]], *, components=COVERED,
                identity: Identity = SIGNER, label: str = "vrm", digest: str | None = None) -> RequestParts:
    """``parts`` signed with any components and parameters, so a vector's one fault is signed too."""
    parts = parts.with_field("Content-Digest", digest or content_digest(parts.body))
    signature_input, signature = sign_components(parts, components, params, identity, label=label)
    return parts.with_field("Signature-Input", signature_input).with_field("Signature", signature)


def without(parts: RequestParts, name: str) -> RequestParts:
    return dataclasses.replace(parts, headers=tuple(h for h in parts.headers if h[0].lower() != name))


def edited_input(parts: RequestParts, old: str, new: str) -> RequestParts:
    """Signature-Input with one substring replaced, not signed again."""
    value = parts.field("signature-input")
    assert old in value, old
    return parts.with_field("Signature-Input", value.replace(old, new))


def signature_replaced(parts: RequestParts, signature: bytes) -> RequestParts:
    return parts.with_field("Signature", str(Dictionary({"vrm": signature})))


def signature_bytes(parts: RequestParts) -> bytes:
    fields = Dictionary()
    fields.parse(parts.field("signature").encode("ascii"))
    return fields["vrm"].value


# -- the JSON form, and the verdict computed from it -------------------------------------------------


def request_json(parts: RequestParts) -> dict[str, Any]:
    return {
        "method": parts.method,
        "scheme": parts.scheme,
        "authority": parts.authority,
        "target": parts.target,
        "headers": [[name, value] for name, value in parts.headers],
        "body": parts.body.hex(),
    }


def parts_of(request: dict[str, Any]) -> RequestParts:
    """The inverse of ``request_json`` (tests/test_request_vectors.py reads vectors with it)."""
    return RequestParts(
        request["method"], request["scheme"], request["authority"], request["target"],
        tuple((name, value) for name, value in request["headers"]), bytes.fromhex(request["body"]),
    )


def verdict(request: dict[str, Any], nonces: NonceCache | None = None) -> VerifiedRequest | str:
    """What our verifier says of a vector's request at the file's now and authorities: the verified
    request, or the reason it is refused."""
    try:
        return verify(parts_of(request), nonces if nonces is not None else NonceCache(window=DEFAULT_WINDOW))
    except RequestSignatureError as exc:
        return exc.reason


def verify(parts: RequestParts, nonces: NonceCache) -> VerifiedRequest:
    return verify_request(parts, now=NOW, nonces=nonces, max_skew=MAX_SKEW, authorities=frozenset(AUTHORITIES))


def base_of(parts: RequestParts) -> str:
    fields = Dictionary()
    fields.parse(parts.field("signature-input").encode("ascii"))
    return signature_base(parts, fields["vrm"]).decode("ascii")


# -- the vectors -------------------------------------------------------------------------------------


def accepted_specs() -> list[tuple[str, str, RequestParts, str]]:
    """(name, what, unsigned request, nonce)."""
    return [
        ("post_msgpack_body", "POST of a MessagePack body to the default http port (Host without a port)",
         RequestParts("POST", "http", "node.example", "/v1/gossip", MSGPACK, GOSSIP_BODY),
         nonce_of("post_msgpack_body")),
        ("get_empty_body_with_query", "GET with an empty body (its digest is the empty body's) and a query",
         RequestParts("GET", "http", "node.example", "/v1/inbox?after=41&limit=1000", MSGPACK[1:], b""),
         nonce_of("get_empty_body_with_query")),
        ("non_default_port", "the Example of PROTOCOL.md section 6: port 8470 stays in @authority",
         RequestParts("POST", "http", "node.example:8470", "/gossip/push?hops=3", MSGPACK[:1], b"\x92\x01\x02"),
         EXAMPLE_NONCE),
        ("https_default_port_dropped",
         "https with Host Node.Example:443: @authority is lower case without the default port, node.example",
         RequestParts("POST", "https", "Node.Example:443", "/v1/hello", MSGPACK, HELLO_BODY),
         nonce_of("https_default_port_dropped")),
    ]


def accepted_vectors() -> list[dict[str, Any]]:
    vectors = []
    for name, what, unsigned, nonce in accepted_specs():
        parts = signed(unsigned, nonce)
        request = request_json(parts)
        result = verdict(request)
        if not isinstance(result, VerifiedRequest) or result.node_id != NODE_ID:
            raise AssertionError(f"accepted/{name}: our verifier gives {result!r}")
        base = base_of(parts_of(request))
        # a second Ed25519 implementation, as for the envelope vectors (generate.py)
        if ed25519.sign(SEED, base.encode("ascii")) != signature_bytes(parts):
            raise AssertionError(f"accepted/{name}: cryptography and the reference signer differ")
        vectors.append({
            "name": name,
            "what": what,
            "created": CREATED,
            "nonce": nonce,
            "request": request,
            "signature_base": base,
            "node_id": result.node_id,
        })
    return vectors


def refused_cases() -> list[tuple[str, str, str, Callable[[], RequestParts]]]:
    """(name, reason, what, build). Every build starts from a request that would be accepted."""
    post = RequestParts("POST", "http", "node.example", "/v1/gossip", MSGPACK, GOSSIP_BODY)
    port = RequestParts("POST", "http", "node.example:8470", "/gossip/push?hops=3", MSGPACK[:1], b"\x92\x01\x02")

    def ok(name: str, parts: RequestParts = post) -> RequestParts:
        return signed(parts, nonce_of(name))

    def with_params(name: str, parts: RequestParts = post, **changes: Any) -> RequestParts:
        return signed_with(parts, params_of(nonce_of(name), **changes))

    def covering(name: str, components: list[str], parts: RequestParts = post) -> RequestParts:
        return signed_with(parts, params_of(nonce_of(name)), components=components)

    def truncated(parts: RequestParts) -> RequestParts:
        return signature_replaced(parts, signature_bytes(parts)[:63])

    def flipped(name: str) -> RequestParts:
        parts = ok(name)
        signature = bytearray(signature_bytes(parts))
        signature[0] ^= 0x01
        return signature_replaced(parts, bytes(signature))

    other_host = dataclasses.replace(post, authority="other.example")
    wrong_sha512 = content_digest(post.body) + ", " + content_digest(b"not the body", "sha-512")

    cases: list[tuple[str, str, str, Callable[[], RequestParts]]] = [
        # step 1
        ("signature_input_not_a_dictionary", "malformed_signature",
         "Signature-Input is `vrm=(` (not a Structured Field)",
         lambda: ok("signature_input_not_a_dictionary").with_field("Signature-Input", "vrm=(")),
        ("signature_input_too_long", "malformed_signature",
         "Signature-Input 8193 characters long (a valid field padded with a tag parameter)",
         lambda: too_long(ok("signature_input_too_long"))),
        # step 2
        ("unsigned", "missing_signature", "no Signature-Input and no Signature (Content-Digest present)",
         lambda: without(without(ok("unsigned"), "signature"), "signature-input")),
        ("other_label_only", "missing_signature",
         "a valid signature by the same key, labelled `sig1` instead of `vrm`",
         lambda: signed_with(post, params_of(nonce_of("other_label_only")), label="sig1")),
        # step 3
        ("only_signature_input", "malformed_signature", "Signature removed: `vrm` only in Signature-Input",
         lambda: without(ok("only_signature_input"), "signature")),
        ("signature_63_bytes", "malformed_signature", "the Signature member is the signature without its last byte",
         lambda: truncated(ok("signature_63_bytes"))),
        ("signature_not_bytes", "malformed_signature", 'the Signature member is the String "abc"',
         lambda: ok("signature_not_bytes").with_field("Signature", 'vrm="abc"')),
        ("unknown_parameter", "malformed_signature", 'signed with an extra parameter color="red"',
         lambda: with_params("unknown_parameter", color="red")),
        ("created_missing", "malformed_signature", "signed without created",
         lambda: signed_with(post, [p for p in params_of(nonce_of("created_missing")) if p[0] != "created"])),
        ("created_a_string", "malformed_signature", 'created is the String "1700000000"',
         lambda: edited_input(ok("created_a_string"), f"created={CREATED}", f'created="{CREATED}"')),
        ("nonce_too_short", "malformed_signature", 'signed with the 15-character nonce "AAECAwQFBgcICQo"',
         lambda: signed_with(post, params_of("AAECAwQFBgcICQo"))),
        ("component_twice", "malformed_signature", "signed covering @method twice",
         lambda: covering("component_twice", [*COVERED, "@method"])),
        # step 4
        ("alg_rsa", "unsupported_algorithm", 'signed with alg="rsa-pss-sha512"',
         lambda: with_params("alg_rsa", alg="rsa-pss-sha512")),
        ("alg_missing", "unsupported_algorithm", "signed without alg",
         lambda: with_params("alg_missing", alg=None)),
        # step 5
        ("keyid_upper_case", "bad_key_id", "signed with the node id in upper case",
         lambda: with_params("keyid_upper_case", keyid=NODE_ID.upper())),
        ("keyid_not_a_node_id", "bad_key_id", 'signed with keyid="test-key-ed25519"',
         lambda: with_params("keyid_not_a_node_id", keyid="test-key-ed25519")),
        # step 7
        *[(f"{component.strip('@').replace('-', '_')}_not_covered", "missing_component",
           f"signed covering the other four components, not {component}",
           lambda component=component: covering(f"{component}_not_covered", [c for c in COVERED if c != component]))
          for component in COVERED],
        # step 8
        ("signed_for_another_node", "wrong_authority", "signed for Host other.example and sent with it",
         lambda: ok("signed_for_another_node", other_host)),
        ("signed_for_another_port", "wrong_authority", "signed for Host node.example:8080 and sent with it",
         lambda: ok("signed_for_another_port", dataclasses.replace(post, authority="node.example:8080"))),
        ("https_port_80", "wrong_authority",
         "https with Host node.example:80: 80 is only http's default port, so it stays",
         lambda: ok("https_port_80", dataclasses.replace(post, scheme="https", authority="node.example:80"))),
        # step 9
        ("created_301_s_ago", "stale", f"signed with created = now - 301 ({NOW - 301})",
         lambda: signed(post, nonce_of("created_301_s_ago"), created=NOW - 301)),
        ("past_expires", "stale", f"signed with expires = now - 1 ({NOW - 1})",
         lambda: with_params("past_expires", expires=NOW - 1)),
        ("created_61_s_ahead", "from_future", f"signed with created = now + 61 ({NOW + 61})",
         lambda: signed(post, nonce_of("created_61_s_ahead"), created=NOW + 61)),
        # step 10
        ("body_changed", "digest_mismatch", "the last body byte changed after signing",
         lambda: dataclasses.replace(ok("body_changed"), body=post.body[:-1] + b"\x02")),
        ("no_content_digest", "digest_mismatch", "Content-Digest removed after signing",
         lambda: without(ok("no_content_digest"), "content-digest")),
        ("sha512_only", "digest_mismatch", "Content-Digest replaced by the body's correct sha-512 digest alone",
         lambda: ok("sha512_only").with_field("Content-Digest", content_digest(post.body, "sha-512"))),
        ("wrong_sha512_beside_sha256", "digest_mismatch",
         "signed with a Content-Digest whose sha-256 is right and whose sha-512 is not the body's",
         lambda: signed_with(post, params_of(nonce_of("wrong_sha512_beside_sha256")), digest=wrong_sha512)),
        # step 11
        ("component_with_parameter", "malformed_signature", 'Signature-Input covers "content-digest";sf',
         lambda: edited_input(ok("component_with_parameter"), '"content-digest")', '"content-digest";sf)')),
        ("covered_field_absent", "malformed_signature",
         "signed also covering content-type, then Content-Type removed",
         lambda: without(covering("covered_field_absent", [*COVERED, "content-type"]), "content-type")),
        ("target_not_origin_form", "malformed_signature",
         "target sent in absolute form, http://node.example/v1/gossip",
         lambda: dataclasses.replace(ok("target_not_origin_form"), target="http://node.example/v1/gossip")),
        # step 12
        ("method_changed", "bad_signature", "method POST changed to PUT after signing",
         lambda: dataclasses.replace(ok("method_changed"), method="PUT")),
        ("path_changed", "bad_signature", "path /gossip/push changed to /gossip/pull after signing",
         lambda: dataclasses.replace(ok("path_changed", port), target="/gossip/pull?hops=3")),
        ("query_changed", "bad_signature", "query ?hops=3 changed to ?hops=9 after signing",
         lambda: dataclasses.replace(ok("query_changed", port), target="/gossip/push?hops=9")),
        ("query_added", "bad_signature", "?all=1 added to a target signed without a query",
         lambda: dataclasses.replace(ok("query_added"), target="/v1/gossip?all=1")),
        ("authority_changed_to_another_own_name", "bad_signature",
         "signed for node.example:8470, sent with Host node.example (also one of the receiver's names)",
         lambda: dataclasses.replace(ok("authority_changed_to_another_own_name", port), authority="node.example")),
        ("body_and_digest_replaced", "bad_signature", "another body sent with its own correct Content-Digest",
         lambda: dataclasses.replace(ok("body_and_digest_replaced"), body=b"\x90")
         .with_field("Content-Digest", content_digest(b"\x90"))),
        ("signature_bit_flipped", "bad_signature", "the lowest bit of the signature's first byte flipped",
         lambda: flipped("signature_bit_flipped")),
        ("signed_by_another_key", "bad_signature",
         f"signed by the key of seed b0 x 32 with keyid {NODE_ID} (seed a1 x 32)",
         lambda: signed_with(post, params_of(nonce_of("signed_by_another_key")), identity=OTHER)),
        # the first failure in the order decides
        ("first_missing_component_then_wrong_authority", "missing_component",
         "signed for other.example without covering @query",
         lambda: covering("first_missing_component_then_wrong_authority", [c for c in COVERED if c != "@query"],
                          other_host)),
        ("first_wrong_authority_then_stale", "wrong_authority", "signed for other.example 301 s ago",
         lambda: signed(other_host, nonce_of("first_wrong_authority_then_stale"), created=NOW - 301)),
        ("first_stale_then_digest_mismatch", "stale", "signed 301 s ago, body changed after signing",
         lambda: dataclasses.replace(signed(post, nonce_of("first_stale_then_digest_mismatch"), created=NOW - 301),
                                     body=b"\x90")),
    ]
    return cases


def too_long(parts: RequestParts) -> RequestParts:
    """Signature-Input padded to 8193 characters with a tag parameter (the limit is 8192)."""
    value = parts.field("signature-input")
    padding = 8193 - len(value) - len(';tag=""')
    long_value = value + ';tag="' + "x" * padding + '"'
    assert len(long_value) == 8193
    return parts.with_field("Signature-Input", long_value)


def refused_vectors() -> list[dict[str, Any]]:
    vectors = []
    for name, reason, what, build in refused_cases():
        request = request_json(build())
        result = verdict(request)
        if result != reason:
            raise AssertionError(f"refused/{name}: our verifier gives {result!r}, not {reason!r}")
        vectors.append({"name": name, "what": what, "request": request, "reason": reason})
    if len({v["name"] for v in vectors}) != len(vectors):
        raise AssertionError("refused vector names repeat")
    expected = set(RequestSignatureError.REASONS) - NOT_FROM_ONE_REQUEST
    if {v["reason"] for v in vectors} != expected:
        raise AssertionError(f"refused vectors miss {expected - {v['reason'] for v in vectors}}")
    return vectors


def replayed_vector(accepted: list[dict[str, Any]]) -> dict[str, Any]:
    first = accepted[0]
    nonces = NonceCache(window=DEFAULT_WINDOW)
    once, twice = verdict(first["request"], nonces), verdict(first["request"], nonces)
    if not isinstance(once, VerifiedRequest) or twice != "replayed":
        raise AssertionError(f"replayed: our verifier gives {once!r}, then {twice!r}")
    return {
        "name": "replayed",
        "what": f"accepted vector {first['name']} verified twice by one receiver (one replay memory): "
        "the first is accepted, the second refused",
        "of": first["name"],
        "request": first["request"],
        "first": {"node_id": once.node_id},
        "second": {"reason": twice},
    }


def request_vectors() -> dict[str, Any]:
    accepted = accepted_vectors()
    return {
        "about": "vrm-node signed HTTP request test vectors (PROTOCOL.md section 6). Generated by "
        "`python -m tests.vectors.generate`; do not edit. A request is its method, scheme, authority (the "
        "Host field as sent), target (origin form, as sent), headers (every other field line as sent, in "
        "order) and body (hex). Verify each as the receiver described: at its `now` (Unix seconds), with "
        "its replay window and clock skew, answering to its authorities, with an empty replay memory per "
        "vector. An accepted vector must verify as its node_id, and signing its request without the "
        "Content-Digest, Signature-Input and Signature fields at its created with its nonce and the "
        "signer's seed must give those fields and its signature_base exactly. A refused vector must be "
        "refused with exactly its reason. The replayed vector is one request verified twice against one "
        "replay memory. unknown_key is not here: it needs a receiver that pins another key.",
        "signer": {"seed": SEED.hex(), "public_key": SIGNER.public_key.hex(), "node_id": NODE_ID},
        "receiver": {"authorities": list(AUTHORITIES), "now": NOW, "window": DEFAULT_WINDOW, "max_skew": MAX_SKEW},
        "accepted": accepted,
        "refused": refused_vectors(),
        "replayed": replayed_vector(accepted),
    }
