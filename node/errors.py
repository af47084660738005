"""The one exception hierarchy of vrm-node.

Everything the project raises on purpose derives from VrmError, so a caller (the CLI, the HTTP API)
can catch one class. The native core raises these same classes (imported into Rust), never its own.
"""

from __future__ import annotations

from node.reasons import Reason


class VrmError(Exception):
    """Base of every error vrm-node raises on purpose."""


class EnvelopeError(VrmError):
    """An envelope or canonical value was refused; ``reason`` says why, ``detail`` where."""

    def __init__(self, reason: int | str | Reason, detail: str = "") -> None:
        self.reason = Reason.parse(reason)
        self.detail = detail
        super().__init__(f"{self.reason.label}: {detail}" if detail else self.reason.label)

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working with two args
        return (type(self), (int(self.reason), self.detail))


class IdentityError(VrmError):
    """A key could not be created, loaded or decoded."""


class HomeError(VrmError):
    """The node's home directory is missing, incomplete, or already holds a node (never overwritten)."""


class PassphraseError(VrmError):
    """A passphrase was wrong, or needed and not given; nothing was changed."""


class StoreError(VrmError):
    """The store cannot be opened or upgraded (for example a schema newer than this program)."""


class ValidationError(VrmError):
    """An input value was refused before anything was written; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self):
        return (type(self), (self.field, self.message))


class SearchQueryError(ValidationError):
    """A full-text search query is not valid FTS5 syntax."""


class NotFoundError(VrmError):
    """No record of ``kind`` matches ``key`` (a vendor handle, an id, a vault field name)."""

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"no {kind} {key!r}")

    def __reduce__(self):
        return (type(self), (self.kind, self.key))


class ConflictError(VrmError):
    """The request conflicts with what is stored (a duplicate handle, resolving a resolved issue)."""


class StoreBusy(ConflictError):
    """The database rolled the transaction back to settle a deadlock or a serialization conflict with
    another writer (a fleet's listeners): nothing of it was written, and running it again may work. A
    ConflictError, so the ingest pipeline's retry of a conflicting batch covers it."""


class VaultError(VrmError):
    """A vault value cannot be stored or read (a damaged or swapped ciphertext, a plain write into an
    encrypted vault)."""


class ExchangeError(VrmError):
    """An export document was refused (unknown format or version, bad content) or the import target
    is not a new home."""


class IntentSyntaxError(ValidationError):
    """An intent's text was refused: ``word`` is the offending word, ``offset`` its character offset in
    the text (both empty/0 when the whole text is at fault). Raised alike by the native tokenizer and
    its Python reference."""

    def __init__(self, message: str, word: str = "", offset: int = 0) -> None:
        self.word = word
        self.offset = offset
        super().__init__("intent", message)

    def __str__(self) -> str:
        where = f" at {self.word!r} (character {self.offset})" if self.word else ""
        return f"{self.message}{where}"

    def __reduce__(self):
        return (type(self), (self.message, self.word, self.offset))


class RequestSignatureError(VrmError):
    """A node-to-node HTTP request's RFC 9421 signature was refused (PROTOCOL.md section 6).

    ``reason`` is the wire code sent back with the 401, ``detail`` a human explanation (never sent).
    """

    REASONS = (
        "missing_signature",
        "malformed_signature",
        "unsupported_algorithm",
        "bad_key_id",
        "unknown_key",
        "missing_component",
        "wrong_authority",
        "stale",
        "from_future",
        "digest_mismatch",
        "bad_signature",
        "replayed",
    )

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown request signature reason {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)

    def __reduce__(self):
        return (type(self), (self.reason, self.detail))


class DeliveryError(VrmError):
    """One attempt to deliver a batch to a peer failed (timeout, transport error, or a refusing status).

    ``retry`` says whether sending the same bytes later may succeed; ``detail`` is kept as the
    delivery's last error.
    """

    def __init__(self, detail: str, *, retry: bool = True) -> None:
        self.detail = detail
        self.retry = retry
        super().__init__(detail)

    def __reduce__(self):
        return (_delivery_error, (self.detail, self.retry))


def _delivery_error(detail: str, retry: bool) -> DeliveryError:
    return DeliveryError(detail, retry=retry)


class WireError(VrmError):
    """A federation message (a gossip batch, a pull or push response, a hello) was refused before
    anything was stored. ``reason`` is ``"malformed"`` (answered with 400) or ``"too_large"`` (413);
    ``detail`` says what was wrong."""

    REASONS = ("malformed", "too_large")

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown wire error reason {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)

    def __reduce__(self):
        return (type(self), (self.reason, self.detail))


class AccessRefused(VrmError):
    """A person's node refused a data access (PROTOCOL.md, consented access): ``reason`` is the
    refusal's label (``no_grant``, ``not_grantee``, ``expired``, ``revoked``, ``out_of_scope``,
    ``budget_spent``), ``detail`` a human explanation."""

    REASONS = ("no_grant", "not_grantee", "expired", "revoked", "out_of_scope", "budget_spent")

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = str(reason)
        self.detail = detail
        super().__init__(f"access refused: {self.reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):
        return (type(self), (self.reason, self.detail))
