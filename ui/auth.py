"""Who may use the page: one-time login tokens, pairing codes, sessions and CSRF tokens.

`vrm ui` asks the daemon for a login link (``UiAuth.mint``). The link's token is good once, for a few
minutes; the page trades it (a POST, so a link previewer that fetches the URL spends nothing) for a
random session id in an HttpOnly, SameSite=Strict cookie. Only a hash of each token and session id
is kept, so a memory dump does not hand out live sessions. A browser on the LAN (``--ui-lan``) must
also give the pairing code `vrm ui` prints; the code changes with every link.

Every change is a POST carrying the session's CSRF token (a form field or the ``X-CSRF-Token``
header) from the page's own origin; the cookie is SameSite=Strict too, so a cross-site form never
even arrives with a session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "vrm_session"
LOGIN_TTL_S = 300.0  # a login link is for the person who just ran `vrm ui`
SESSION_IDLE_S = 12 * 3600.0
MAX_SESSIONS = 64  # a handful of browsers; the oldest goes first
MAX_PENDING = 16


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


@dataclass
class Session:
    csrf: str
    lan: bool
    last_seen: float


@dataclass
class _Pending:
    expires: float
    pairing: str


@dataclass
class UiAuth:
    """Login tokens and sessions of one running node (in memory: a restart logs everyone out)."""

    clock: Callable[[], float] = time.monotonic
    _pending: dict[bytes, _Pending] = field(default_factory=dict)
    _sessions: dict[bytes, Session] = field(default_factory=dict)

    def mint(self) -> tuple[str, str]:
        """A new one-time login token and its pairing code (needed only from the LAN)."""
        now = self.clock()
        self._pending = {k: p for k, p in self._pending.items() if p.expires > now}
        while len(self._pending) >= MAX_PENDING:
            self._pending.pop(next(iter(self._pending)))
        token = secrets.token_urlsafe(32)
        pairing = f"{secrets.randbelow(10**6):06d}"
        self._pending[_digest(token)] = _Pending(now + LOGIN_TTL_S, pairing)
        return token, pairing

    def redeem(self, token: str, *, lan: bool, pairing: str = "") -> str | None:
        """The new session id for ``token``, or None (unknown, used, expired, or from the LAN without
        the right pairing code). A token is spent by its first attempt, right or wrong, so a
        pairing code cannot be guessed against it."""
        pending = self._pending.pop(_digest(token), None)
        if pending is None or pending.expires <= self.clock():
            return None
        if lan and not hmac.compare_digest(pairing.strip().encode(), pending.pairing.encode()):
            return None
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        session_id = secrets.token_urlsafe(32)
        self._sessions[_digest(session_id)] = Session(secrets.token_urlsafe(24), lan, self.clock())
        return session_id

    def session(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        key = _digest(session_id)
        found = self._sessions.get(key)
        now = self.clock()
        if found is None:
            return None
        if now - found.last_seen > SESSION_IDLE_S:
            del self._sessions[key]
            return None
        found.last_seen = now
        return found

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(_digest(session_id), None)


def csrf_ok(session: Session, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), session.csrf.encode())  # type: ignore[union-attr]
