"""What the daemon tells its operator: refused requests, failed pulls and deliveries, breaker changes,
dead letters: each logged once, at a level that says how much it matters, and rate-limited.

``RateLimitedLog`` writes at most one line per *key* per ``interval_s``; what it holds back is counted
and said on the key's next line (``… (12 similar suppressed in 60s)``) or, when the key goes quiet, by
a ``12 similar suppressed`` line the next time anything is logged after the window. Keys are chosen so
a flood cannot grow them: a refusal's key is its status and reason code (never the sender, which a
stranger can mint by the thousand), a pull's or delivery's key names one of our own peers; and at most
``max_keys`` are tracked (the rest share one key).

``DaemonEvents`` builds the lines. It logs what an operator needs (status, reason code, route, the
signer's node id, the source address, a peer's URL without credentials) and never a header, token,
cookie, signature, passphrase or body: the callers pass none of them, and free text (an error's detail)
is cut short, stripped of URL credentials and of control characters first.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_INTERVAL_S = 60.0
MAX_KEYS = 1024
MAX_TEXT = 160
_OVERFLOW = "(other)"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class _Window:
    opened: float  # when the key's last line was written
    suppressed: int = 0
    level: int = logging.INFO
    message: str | Callable[[], str] = ""  # the last suppressed line, for the quiet-key summary


class RateLimitedLog:
    """At most one line per key per ``interval_s`` on ``logger`` (see the module docstring)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._swept = clock()

    def log(self, level: int, key: str, message: str | Callable[[], str]) -> bool:
        """Write ``message`` unless ``key`` had a line in the last ``interval_s``; True if written.
        ``message`` may be a function, called only when the line is written (a flood formats nothing)."""
        now = self._clock()
        if not self.logger.isEnabledFor(level):
            return False
        if key not in self._windows and len(self._windows) >= self.max_keys:
            key = _OVERFLOW
        if now - self._swept >= self.interval_s:
            self.flush(but=key)  # this key's own count goes on the line below
        window = self._windows.get(key)
        if window is not None and now - window.opened < self.interval_s:
            window.suppressed += 1
            window.level, window.message = max(window.level, level), message  # the summary's level
            return False
        message = message() if callable(message) else message
        if window is not None and window.suppressed:
            message += f" ({window.suppressed} similar suppressed in {self.interval_s:g}s)"
        self._windows[key] = _Window(opened=now, level=level)
        self.logger.log(level, message)
        return True

    def flush(self, but: str | None = None) -> None:
        """Say what quiet keys (all but ``but``) held back, and forget keys whose window has ended."""
        now = self._swept = self._clock()
        for key, window in list(self._windows.items()):
            if key == but or now - window.opened < self.interval_s:
                continue
            if window.suppressed:
                last = window.message() if callable(window.message) else window.message
                self.logger.log(window.level, f"{window.suppressed} similar suppressed in {self.interval_s:g}s; last: {last}")
            del self._windows[key]


def clean(text: object, limit: int = MAX_TEXT) -> str:
    """Free text safe for a log line: URL credentials removed, control characters escaped, cut short."""
    out = _USERINFO.sub(r"\1", str(text))
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", out)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def node_id(hex_key: str | None) -> str:
    """A peer's node id (vrm1…) from its hex key; ``-`` when unknown."""
    if not hex_key:
        return "-"
    from node.nodeid import encode_node_id

    try:
        return encode_node_id(bytes.fromhex(hex_key))
    except Exception:  # not a key (a test's name for a peer): shown as given, a log line never raises
        return clean(hex_key, 64)


class DaemonEvents:
    """The daemon's operator log (loggers ``vrm.federation``, ``vrm.sync``, ``vrm.delivery``)."""

    def __init__(self, *, interval_s: float = DEFAULT_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        def limited(name: str) -> RateLimitedLog:
            return RateLimitedLog(logging.getLogger(name), interval_s=interval_s, clock=clock)

        self._requests = limited("vrm.federation")
        self._sync = limited("vrm.sync")
        self._delivery = limited("vrm.delivery")

    def refused(
        self, *, status: int, reason: str, method: str, path: str, peer: str | None, source: str | None
    ) -> None:
        """A federation request answered 4xx or 5xx. ``peer``: the verified signer's hex key (None
        before the signature is checked). A 5xx is an error; a refusal a well-behaved peer meets in
        normal operation (429 rate_limited, 503 busy, 403 access refused, 404) is info; the rest
        (forged or malformed requests, 401, 400, 413 …) are warnings."""
        if status >= 500 and status != 503:
            level = logging.ERROR
        elif status in (403, 404, 429, 503):
            level = logging.INFO
        else:
            level = logging.WARNING
        self._requests.log(
            level,
            f"refused:{status}:{reason[:40]}",
            lambda: f"refused {clean(method, 8)} {clean(path, 60)}: {status} {clean(reason, 40)} "
            f"(peer {node_id(peer)}, from {clean(source or '-', 60)})",
        )

    def pull_failed(self, peer: str, url: str | None, error: object) -> None:
        self._sync.log(
            logging.WARNING,
            f"pull:{peer}",
            f"pull from peer {node_id(peer)} at {clean(url or '-', 100)} failed: {clean(error)}",
        )

    def pull_recovered(self, peer: str, url: str | None, failures: int) -> None:
        """A pull worked after ``failures`` failed ones: good news, once (info)."""
        self._sync.log(
            logging.INFO,
            f"pull-ok:{peer}",
            f"pulls from peer {node_id(peer)} at {clean(url or '-', 100)} work again "
            f"(after {failures} failure(s))",
        )

    def delivery_failed(self, peer: str, count: int, error: object, *, retry: bool) -> None:
        what = "will retry" if retry else "refused for good"
        self._delivery.log(
            logging.WARNING,
            f"delivery:{peer}:{retry}",
            f"delivery of {count} item(s) to peer {node_id(peer)} failed ({what}): {clean(error)}",
        )

    def dead_lettered(self, peer: str, count: int, error: object) -> None:
        self._delivery.log(
            logging.ERROR,
            f"dead:{peer}",
            f"{count} delivery(ies) to peer {node_id(peer)} dead-lettered (see `vrm status`): {clean(error)}",
        )

    def expired(self, peer: str, count: int) -> None:
        """Deliveries that expired before the peer took them (a warning: nothing failed for good, but
        what they said never arrived)."""
        self._delivery.log(
            logging.WARNING,
            f"expired:{peer}",
            f"{count} delivery(ies) to peer {node_id(peer)} dead-lettered: expired (see `vrm status`)",
        )

    def breaker_changed(self, peer: str, change: tuple[object, object] | None, failures: int) -> None:
        """``change``: what CircuitBreaker.record_* returned (None: nothing changed, nothing said).
        Opening is news an operator acts on (warning); closing again is good news (info); a failed
        probe re-opening it is only debug (it happens once per cool-down while the peer is down)."""
        if change is None:
            return
        old, new = (getattr(state, "value", state) for state in change)
        if new == "closed":
            level, what = logging.INFO, f"{old} -> closed: the peer answers again"
        elif old == "closed":
            level, what = logging.WARNING, f"closed -> {new} after {failures} consecutive failure(s)"
        else:
            level, what = logging.DEBUG, f"{old} -> {new}: the probe failed"
        self._delivery.log(level, f"breaker:{peer}:{new}", f"circuit breaker for peer {node_id(peer)}: {what}")


# -- the federation app's refusals ---------------------------------------------------------------------

SEEN_STATE = "vrm.refusal"  # scope["state"][SEEN_STATE]: what RefusalLog learns of a request
_MAX_ERROR_BODY = 4096  # a refusal body is a few fields; the rest is not read


@dataclass
class _Seen:
    status: int = 0
    reason: str = ""
    body: bytes = b""
    peer: str | None = None  # the verified signer, once the signature is checked


class RefusalLog:
    """ASGI middleware around the federation app: every 4xx/5xx answer is logged once through
    ``events.refused`` with its reason code (from the refusal body, or the ``Vrm-Signature-Error``
    header of a 401). A 500 ``internal_error`` is not logged again: the app logged its traceback."""

    def __init__(self, app: Callable, events: DaemonEvents | None = None) -> None:
        self.app = app
        self.events = events if events is not None else DaemonEvents()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = _Seen()
        scope = {**scope, "state": {**scope.get("state", {}), SEEN_STATE: seen}}

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                seen.status = int(message["status"])
                for name, value in message.get("headers", ()):
                    if name.lower() == b"vrm-signature-error":
                        seen.reason = value.decode("latin-1")
            elif message["type"] == "http.response.body" and seen.status >= 400:
                if len(seen.body) < _MAX_ERROR_BODY:
                    seen.body += message.get("body", b"")[: _MAX_ERROR_BODY - len(seen.body)]
                if not message.get("more_body", False):
                    self._log(scope, seen)
            await send(message)

        await self.app(scope, receive, watch)

    def _log(self, scope: dict, seen: _Seen) -> None:
        error = _error_of(seen.body)
        if error == "internal_error":
            return
        reason = f"{error}/{seen.reason}" if error and seen.reason else error or seen.reason or "-"
        self.events.refused(
            status=seen.status,
            reason=reason,
            method=str(scope.get("method", "")),
            path=str(scope.get("path", "")),
            peer=seen.peer,
            source=_client(scope),
        )


def _client(scope: dict) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def note_signer(scope: dict, peer: str) -> None:
    """Tell RefusalLog (when it wraps the app) who signed the request being answered."""
    seen = scope.get("state", {}).get(SEEN_STATE)
    if isinstance(seen, _Seen):
        seen.peer = peer


def _error_of(body: bytes) -> str:
    """The ``error`` of a refusal body, msgpack or JSON (``""`` when unreadable)."""
    if not body:
        return ""
    if body[:1] == b"{":
        import json

        try:
            doc = json.loads(body)
        except ValueError:
            return ""
        return str(doc.get("error", "")) if isinstance(doc, dict) else ""
    from federation import wire

    return wire.decode_error(body)
