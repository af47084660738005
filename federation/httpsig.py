"""RFC 9421 HTTP Message Signatures for node-to-node requests: the sans-IO core.

Pure functions over a request's parts (method, scheme, authority, target, header lines, body): no
sockets, no clock, no randomness except ``new_nonce``. The HTTP edges (``federation.auth``) turn httpx
and ASGI requests into ``RequestParts`` and call ``sign_request`` / ``verify_request``.

The base builder is generic RFC 9421 (derived components and plain header fields); the profile on
top of it — label ``vrm``, the five covered components, the parameters, the order of checks — is
PROTOCOL.md section 6.
"""

from __future__ import annotations

import base64
import functools
import secrets
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.digest import check_content_digest, content_digest
from federation.noncecache import Admission, NonceCache
from federation.sf import Dictionary, InnerList, Item
from node.errors import IdentityError, RequestSignatureError
from node.identity import Identity
from node.nodeid import decode_node_id, encode_node_id

LABEL = "vrm"
ALGORITHM = "ed25519"
COVERED = ("@method", "@authority", "@path", "@query", "content-digest")
MAX_SKEW = 60  # seconds a signer's clock may run ahead of ours
NONCE_BYTES = 16
NONCE_LENGTH = (16, 64)  # accepted nonce lengths in characters; ours are 22
MAX_FIELD_LENGTH = 8192  # Signature-Input / Signature: ours are ~250 characters
SIGNATURE_BYTES = 64
_REGISTERED_PARAMS = {"alg", "created", "expires", "keyid", "nonce", "tag"}  # RFC 9421 section 6.3
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_SF_TYPE = {int: "an sf-integer", str: "an sf-string"}


@dataclass(frozen=True, slots=True)
class RequestParts:
    """What a signature can cover. ``target`` is the origin-form request target (``/path?query``,
    percent-encoding as sent); ``headers`` are the field lines in order, names in any case."""

    method: str
    scheme: str
    authority: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def field(self, name: str) -> str | None:
        """The combined value of every line of field ``name`` (RFC 9421 section 2.1), or None."""
        lines = [v.strip(" \t") for k, v in self.headers if k.lower() == name]
        return ", ".join(lines) if lines else None

    def with_field(self, name: str, value: str) -> RequestParts:
        """A copy whose field ``name`` has exactly one line, ``value``."""
        kept = tuple((k, v) for k, v in self.headers if k.lower() != name.lower())
        return RequestParts(self.method, self.scheme, self.authority, self.target, (*kept, (name, value)), self.body)


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request whose signature passed every check: who signed it, when, with which nonce."""

    key: bytes  # the signer's 32-byte Ed25519 public key
    node_id: str
    created: int
    nonce: str


def normalize_authority(authority: str, scheme: str) -> str:
    """RFC 9110 section 4.2.3, as RFC 9421 ``@authority`` requires: lower case, no default port."""
    authority = authority.lower()
    host, sep, port = authority.rpartition(":")
    if sep and "]" not in port and port == _DEFAULT_PORTS.get(scheme.lower()):
        return host
    return authority


def authority_of(url: str) -> str:
    """The ``@authority`` of a request signed for ``url``, normalized as the signature base has it."""
    parts = urlsplit(url)
    return normalize_authority(parts.netloc.rpartition("@")[2], parts.scheme)


class OwnAuthorities:
    """The ``@authority`` values a receiver answers to: those of the URLs it is reached at. Names are
    added as they become known (a node bound to port 0 learns its port only once it listens); until
    one is added every request is refused, which costs nothing since nobody knows the URL yet."""

    def __init__(self, urls: Iterable[str] = ()) -> None:
        self._names: frozenset[str] = frozenset()
        self.add(*urls)

    def add(self, *urls: str) -> None:
        self._names |= {authority_of(url) for url in urls}

    def __contains__(self, authority: object) -> bool:
        return authority in self._names


def _split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    if path and not path.startswith("/"):
        raise RequestSignatureError("malformed_signature", f"request target {target!r} is not in origin form")
    return path or "/", query


_DERIVED: dict[str, Callable[[RequestParts], str]] = {
    "@method": lambda p: p.method,
    "@scheme": lambda p: p.scheme.lower(),
    "@authority": lambda p: normalize_authority(p.authority, p.scheme),
    "@target-uri": lambda p: f"{p.scheme.lower()}://{normalize_authority(p.authority, p.scheme)}{p.target}",
    "@request-target": lambda p: p.target,
    "@path": lambda p: _split_target(p.target)[0],
    "@query": lambda p: "?" + _split_target(p.target)[1],
}


def component_value(parts: RequestParts, name: str) -> str:
    """The value of one covered component: a derived ``@…`` component or a header field."""
    if name.startswith("@"):
        if name not in _DERIVED:
            raise RequestSignatureError("malformed_signature", f"unsupported derived component {name!r}")
        return _DERIVED[name](parts)
    if name != name.lower():
        raise RequestSignatureError("malformed_signature", f"component name {name!r} is not lower case")
    value = parts.field(name)
    if value is None:
        raise RequestSignatureError("malformed_signature", f"covered field {name!r} is not in the request")
    return value


def signature_params(components: Sequence[str], params: Iterable[tuple[str, int | str]]) -> InnerList:
    """The ``@signature-params`` inner list: covered component names with the signature parameters."""
    value = InnerList(list(components))
    for name, param in params:
        value.params[name] = param
    return value


def signature_base(parts: RequestParts, params: InnerList) -> bytes:
    """The RFC 9421 section 2.5 signature base for the components and parameters in ``params``."""
    lines = []
    for item in params:
        name = item.value
        if type(name) is not str or item.params:  # exactly an sf-string: no tokens, no ;key or ;sf
            raise RequestSignatureError("malformed_signature", f"unsupported component identifier {str(item)!r}")
        value = component_value(parts, name)
        if "\n" in value or "\r" in value:
            raise RequestSignatureError("malformed_signature", f"component {name!r} holds a line break")
        lines.append(f"{item}: {value}")
    lines.append(f'"@signature-params": {params}')
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise RequestSignatureError("malformed_signature", "a covered value is not ASCII") from None


def sign_components(
    parts: RequestParts,
    components: Sequence[str],
    params: Iterable[tuple[str, int | str]],
    signer: Identity,
    *,
    label: str = LABEL,
) -> tuple[str, str]:
    """Sign any component list: the ``Signature-Input`` and ``Signature`` field values."""
    inner = signature_params(components, params)
    signature = signer.sign(signature_base(parts, inner))
    return str(Dictionary({label: inner})), str(Dictionary({label: signature}))


def new_nonce() -> str:
    """16 random bytes as unpadded base64url (22 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode("ascii")


def sign_request(parts: RequestParts, identity: Identity, *, now: int, nonce: str) -> dict[str, str]:
    """The fields that make ``parts`` a signed vrm request: ``Content-Digest``, ``Signature-Input``,
    ``Signature`` (each replaces any field of that name)."""
    digest = content_digest(parts.body)
    params = (("created", now), ("nonce", nonce), ("keyid", encode_node_id(identity.public_key)), ("alg", ALGORITHM))
    signature_input, signature = sign_components(parts.with_field("content-digest", digest), COVERED, params, identity)
    return {"Content-Digest": digest, "Signature-Input": signature_input, "Signature": signature}


def _parse_dictionary(parts: RequestParts, name: str) -> Dictionary | None:
    value = parts.field(name)
    if value is None:
        return None
    if len(value) > MAX_FIELD_LENGTH:
        raise RequestSignatureError("malformed_signature", f"{name} is longer than {MAX_FIELD_LENGTH} characters")
    parsed = Dictionary()
    try:
        parsed.parse(value.encode("ascii"))
    except Exception:  # http-sf raises assorted types on garbage; all of it is a malformed field
        raise RequestSignatureError("malformed_signature", f"{name} is not a structured dictionary") from None
    return parsed


def _signature_of(parts: RequestParts) -> tuple[InnerList, bytes]:
    """The ``vrm`` member of Signature-Input and of Signature, shape-checked."""
    inputs = _parse_dictionary(parts, "signature-input")
    signatures = _parse_dictionary(parts, "signature")
    has_input = inputs is not None and LABEL in inputs
    has_signature = signatures is not None and LABEL in signatures
    if not has_input and not has_signature:
        raise RequestSignatureError("missing_signature", f"no signature labelled {LABEL!r}")
    if not (has_input and has_signature):
        raise RequestSignatureError("malformed_signature", f"{LABEL!r} is in only one of Signature-Input, Signature")
    inner, signature = inputs[LABEL], signatures[LABEL]
    if not isinstance(inner, InnerList):
        raise RequestSignatureError("malformed_signature", "the Signature-Input member is not an inner list")
    if not isinstance(signature, Item) or type(signature.value) is not bytes:
        raise RequestSignatureError("malformed_signature", "the Signature member is not a byte sequence")
    if len(signature.value) != SIGNATURE_BYTES:
        raise RequestSignatureError("malformed_signature", f"the signature is not {SIGNATURE_BYTES} bytes")
    _check_params(inner)
    names = [item.value for item in inner]
    if len(set(names)) != len(names):
        raise RequestSignatureError("malformed_signature", "a component is covered twice")
    return inner, signature.value


def _check_params(inner: InnerList) -> None:
    params = inner.params
    unknown = set(params) - _REGISTERED_PARAMS
    if unknown:
        raise RequestSignatureError("malformed_signature", f"unknown signature parameter {min(unknown)!r}")
    for name, kind in (("created", int), ("keyid", str), ("nonce", str)):
        if name not in params:
            raise RequestSignatureError("malformed_signature", f"no {name} parameter")
        if type(params[name]) is not kind:  # exact: True is an int, a Token is a str
            raise RequestSignatureError("malformed_signature", f"the {name} parameter is not {_SF_TYPE[kind]}")
    for name, kind in (("expires", int), ("tag", str)):
        if name in params and type(params[name]) is not kind:
            raise RequestSignatureError("malformed_signature", f"the {name} parameter is not {_SF_TYPE[kind]}")
    if not NONCE_LENGTH[0] <= len(params["nonce"]) <= NONCE_LENGTH[1]:
        raise RequestSignatureError("malformed_signature", f"the nonce is not {NONCE_LENGTH[0]}-{NONCE_LENGTH[1]} long")


@functools.lru_cache(maxsize=4096, typed=True)
def _signer_key(keyid: str) -> tuple[bytes, Ed25519PublicKey]:
    """The key a canonical keyid names (RequestSignatureError ``bad_key_id`` otherwise). Memoized, as a
    pure function of the text: bech32m in Python cost a fifth of a millisecond per request, and a peer
    signs every request with the same keyid. A refusal is not kept; a flood of fresh keyids only
    cycles the bounded memo."""
    try:
        key = decode_node_id(keyid)
        public_key = Ed25519PublicKey.from_public_bytes(key)
    except (IdentityError, ValueError) as exc:
        raise RequestSignatureError("bad_key_id", str(exc)) from None
    if encode_node_id(key) != keyid:  # one spelling per key: lower case, no spaces
        raise RequestSignatureError("bad_key_id", "keyid is not the canonical node id text")
    return key, public_key


def verify_request(
    parts: RequestParts,
    *,
    now: int,
    nonces: NonceCache,
    max_skew: int = MAX_SKEW,
    accept_key: Callable[[bytes], bool] | None = None,
    authorities: Container[str] | None = None,
) -> VerifiedRequest:
    """Check a vrm request signature in the order of PROTOCOL.md section 6; raise
    RequestSignatureError with the first failing reason. The replay window is ``nonces.window``.
    ``accept_key`` (e.g. ``pinned_key.__eq__``) refuses other signers with ``unknown_key``.
    ``authorities``: the receiver's own ``@authority`` values (normalized: ``authority_of``,
    ``OwnAuthorities``); a request signed for any other is refused ``wrong_authority``, since a
    capture would otherwise be replayable at every other node within the window. None: not checked."""
    inner, signature = _signature_of(parts)
    params = inner.params
    if params.get("alg") != ALGORITHM or type(params.get("alg")) is not str:
        raise RequestSignatureError("unsupported_algorithm", f"alg is {params.get('alg')!r}, expected {ALGORITHM!r}")
    key, public_key = _signer_key(params["keyid"])
    if accept_key is not None and not accept_key(key):
        raise RequestSignatureError("unknown_key", f"{params['keyid']} is not an accepted signer")
    covered = {item.value for item in inner}
    for name in COVERED:
        if name not in covered:
            raise RequestSignatureError("missing_component", f"{name!r} is not covered")
    # before the digest and Ed25519: free, and nobody can use this node to test captured signatures
    if authorities is not None and (authority := component_value(parts, "@authority")) not in authorities:
        raise RequestSignatureError("wrong_authority", f"signed for {authority!r}, another node")
    created = params["created"]
    if created < now - nonces.window:
        raise RequestSignatureError("stale", f"created {now - created} s ago, the window is {nonces.window} s")
    if created > now + max_skew:
        raise RequestSignatureError("from_future", f"created {created - now} s ahead, at most {max_skew} s allowed")
    if "expires" in params and params["expires"] < now:
        raise RequestSignatureError("stale", "past its expires parameter")
    check_content_digest(parts.field("content-digest"), parts.body)
    base = signature_base(parts, inner)
    try:
        public_key.verify(signature, base)
    except InvalidSignature:
        raise RequestSignatureError("bad_signature", "the Ed25519 signature does not verify") from None
    admission = nonces.admit((key, params["nonce"]), created, now)
    if admission is Admission.REPLAYED:
        raise RequestSignatureError("replayed", "this nonce was already used in the window")
    if admission is Admission.FORGOTTEN:
        raise RequestSignatureError("stale", "older than what the replay memory still holds")
    return VerifiedRequest(key=key, node_id=params["keyid"], created=created, nonce=params["nonce"])
