"""Bounded memory of the request nonces seen within the replay window.

A signed request is acceptable while ``now - window <= created``; its nonce must be remembered for
exactly that long, until ``created + window``, after which the time check alone refuses a replay.

Memory stays bounded under a flood: at ``capacity`` entries the entry with the oldest ``created`` is
forgotten early. Forgetting must never enable a replay, so the cache keeps a **floor**: the largest
``created`` it ever forgot early. The rule is:

- a request with ``created <= floor`` is refused (``FORGOTTEN``): its nonce may be among those
  forgotten, so it cannot be checked;
- when full, a new request whose ``created`` is not newer than the oldest retained one is refused
  (``FORGOTTEN``) instead of evicting anything; otherwise the oldest entry is evicted, raising the floor.

Every entry ever forgotten early has ``created <= floor`` and every retained entry is newer than the
floor, so any request newer than the floor that was admitted before is still remembered. Under a flood
honest requests signed earlier than the newest forgotten second are refused (the signer retries with a
fresh ``created``); none is ever accepted twice. The floor stops mattering once it falls out of the
window. Only authenticated requests reach the cache, so an anonymous flood cannot fill it.

Restarts (graceful or kill -9) empty the cache, so the floor is also **persisted** (``ReplayFloor``,
a small file in the node's home): before a request with ``created`` above the persisted value is
admitted, ``created + margin`` is written and fsynced. A restarted cache starts with that value as its
floor, so every request admitted before the restart (``created`` at most the persisted value) is
refused after it, whatever the clocks did meanwhile. The cost is one small synced write every
``margin`` seconds of traffic, and that honest requests signed in the last ``margin`` seconds before a
restart are refused once after it (the signer retries with a fresh ``created``).
"""

from __future__ import annotations

import enum
import heapq
import logging
import os
import time
from collections.abc import Hashable
from pathlib import Path

LOGGER = logging.getLogger("vrm.federation")

DEFAULT_WINDOW = 300  # seconds
UNKNOWN_FLOOR_AHEAD = 60  # seconds: federation.httpsig.MAX_SKEW, how far ahead a request may be signed
DEFAULT_CAPACITY = 32_768  # about 12 MB when full; over 100 signed requests/s sustained for the window


class Admission(enum.Enum):
    NEW = "new"  # first sighting: remembered until created + window
    REPLAYED = "replayed"  # seen before within the window
    FORGOTTEN = "forgotten"  # too old for what the cache could keep (see the module docstring)


class ReplayFloor:
    """The persisted floor: one decimal integer (Unix seconds) in ``path``, written with fsync."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> int | None:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            LOGGER.warning("replay floor %s unreadable (%s)", self.path, exc)
            return self._unknown()
        if not text.isascii() or not text.isdigit() or len(text) > 19:
            LOGGER.warning("replay floor %s is not a number", self.path)
            return self._unknown()
        return int(text)

    @staticmethod
    def _unknown() -> int:
        # Lost: refuse whatever may have been accepted before (signed up to MAX_SKEW ahead of now),
        # which refuses honest requests too for that long, rather than guess.
        return int(time.time()) + UNKNOWN_FLOOR_AHEAD

    def store(self, value: int) -> None:
        """Write ``value`` durably (the rename is atomic; the fsyncs make it survive power loss)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, str(value).encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class NonceCache:
    """Which (key, nonce) pairs were admitted within the last ``window`` seconds; at most
    ``capacity`` of them. Times are integer seconds, passed in by the caller."""

    __slots__ = ("window", "capacity", "_heap", "_seen", "_floor", "_seq", "_persist", "_persisted", "_margin")

    def __init__(
        self,
        *,
        window: int = DEFAULT_WINDOW,
        capacity: int = DEFAULT_CAPACITY,
        persist: ReplayFloor | None = None,
        margin: int = 1,
    ) -> None:
        """``persist`` makes the memory survive restarts (see the module docstring)."""
        if window <= 0 or capacity <= 0 or margin < 0:
            raise ValueError("window and capacity must be positive, margin not negative")
        self.window = window
        self.capacity = capacity
        self._heap: list[tuple[int, int, Hashable]] = []  # (created, insertion order, key): oldest first
        self._seen: set[Hashable] = set()
        self._floor: int | None = None
        self._seq = 0
        self._persist = persist
        self._margin = margin
        self._persisted: int | None = None
        if persist is not None:
            self._floor = self._persisted = persist.load()

    @property
    def floor(self) -> int | None:
        """The newest ``created`` forgotten before its time, or None if nothing was."""
        return self._floor

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, key: Hashable, created: int, now: int) -> Admission:
        """Remember ``key`` (signed at ``created``) unless it was seen or cannot be checked."""
        self._expire(now)
        if key in self._seen:
            return Admission.REPLAYED
        if created + self.window < now or (self._floor is not None and created <= self._floor):
            return Admission.FORGOTTEN
        if len(self._seen) >= self.capacity:
            if created <= self._heap[0][0]:
                return Admission.FORGOTTEN
            evicted, _, old_key = heapq.heappop(self._heap)
            self._seen.discard(old_key)
            self._floor = evicted if self._floor is None else max(self._floor, evicted)
        if self._persist is not None and (self._persisted is None or created > self._persisted):
            try:
                self._persist.store(created + self._margin)
            except OSError as exc:  # cannot promise to remember it across a restart: do not admit it
                LOGGER.error("cannot persist the replay floor: %s", exc)
                return Admission.FORGOTTEN
            self._persisted = created + self._margin
        self._seq += 1
        heapq.heappush(self._heap, (created, self._seq, key))
        self._seen.add(key)
        return Admission.NEW

    def _expire(self, now: int) -> None:
        # An entry is needed while its request could still pass the time check: now <= created + window.
        heap = self._heap
        while heap and heap[0][0] + self.window < now:
            self._seen.discard(heapq.heappop(heap)[2])
