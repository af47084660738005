"""RFC 9530 ``Content-Digest``: the body hash that an HTTP message signature covers.

A signature covers headers, not bodies; covering ``content-digest`` binds the body to the signature.
We send ``sha-256``; a receiver requires it and also checks every other member whose algorithm it
knows (``sha-512``), ignoring unknown algorithms as RFC 9530 allows.
"""

from __future__ import annotations

import hashlib
import hmac

from federation.sf import Dictionary, Item
from node.errors import RequestSignatureError

ALGORITHM = "sha-256"
_HASHES = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
MAX_FIELD_LENGTH = 1024  # a few digests; anything longer is not ours and is not worth parsing


def content_digest(body: bytes, algorithm: str = ALGORITHM) -> str:
    """The ``Content-Digest`` field value of ``body``, e.g. ``sha-256=:47DEQpj8…=:``."""
    return str(Dictionary({algorithm: _HASHES[algorithm](body).digest()}))


def check_content_digest(value: str | None, body: bytes, *, require: str = ALGORITHM) -> None:
    """Raise ``digest_mismatch`` unless ``value`` holds a ``require`` digest and every known digest
    in it matches ``body``."""
    if value is None:
        raise RequestSignatureError("digest_mismatch", "no Content-Digest field")
    if len(value) > MAX_FIELD_LENGTH:
        raise RequestSignatureError("digest_mismatch", "Content-Digest field too long")
    members = Dictionary()
    try:
        members.parse(value.encode("ascii"))
    except Exception:  # http-sf raises assorted types on garbage; all of it is a bad field
        raise RequestSignatureError("digest_mismatch", "Content-Digest is not a structured dictionary") from None
    if require not in members:
        raise RequestSignatureError("digest_mismatch", f"Content-Digest has no {require} member")
    for name, member in members.items():
        if name not in _HASHES:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise RequestSignatureError("digest_mismatch", f"the {name} digest is not a byte sequence")
        if not hmac.compare_digest(member.value, _HASHES[name](body).digest()):
            raise RequestSignatureError("digest_mismatch", f"the {name} digest does not match the body")
