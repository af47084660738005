"""Bounded memory of the request nonces seen within the replay window.

A signed request is acceptable while ``now - window <= created``; its nonce must be remembered for
exactly that long, until ``created + window``, after which the time check alone refuses a replay.
So the cache's time does not run backwards: a ``now`` earlier than one already seen counts as that
one, or a clock stepped back (NTP) would let an expired entry's request pass the time check again.
Only a step back of more than the whole window is followed (holding to the old time would then refuse
every honest request for as long), with a warning: a replay of what expired meanwhile could pass.

Memory stays bounded under a flood: at ``capacity`` entries one entry is forgotten early. Forgetting
must never enable a replay, so the cache keeps **floors**: a request with ``created <= floor`` is
refused (``FORGOTTEN``), since its nonce may be among those forgotten and cannot be checked.

The memory is shared per signer (a key is ``(signer, nonce)``), so that one signer's flood costs only
that signer: when full, the entry forgotten is the oldest of the signer holding the most entries (the
admitting signer itself if it ties), and only that signer's own floor rises to its ``created``. A
flooding signer thus evicts the oldest entries of signers holding more than it, then its own, then
has its own requests refused, while every other signer's fresh requests are admitted as before. Only when every signer holds a single entry (``capacity`` signers)
is no one to blame: the oldest entry is forgotten and the **global** floor, which every signer is held
to, rises instead. An eviction that raises the admitting signer's floor or the global one is refused
(``FORGOTTEN``) rather than done when the new request is not newer than the entry it would forget.

Each signer's evicted entries have ``created`` at most its floor and its retained ones at least it, so
any request newer than its floor that was admitted before is still remembered; none is ever accepted
twice. A signer's floor is kept while it holds an entry (at most ``capacity`` floors): once its last
entry expires its floor is past the window too, and an evicted last entry raised the global floor.
Only authenticated requests reach the cache, so an anonymous flood cannot fill it; a flood from as
many keys as there are entries still raises the global floor, as a single key's flood used to.

Restarts (graceful or kill -9) empty the cache, so floors are also **persisted** (``ReplayFloor``,
a small file in the node's home), written and fsynced before the request that needs them is
admitted. The global one covers what was signed up to the node's own clock: before a request with
``min(created, now)`` above it is admitted, ``min(created, now) + margin`` is written. A request signed
*ahead* of the clock (up to MAX_SKEW, 60 s) is covered by a floor of its own signer's instead,
``created + AHEAD_MARGIN``, so that one signer's fast clock, or a stranger signing a minute ahead on
purpose, holds only that signer off after a restart, not every peer for a minute. At most
``AHEAD_CAPACITY`` such floors are kept (each until it is past the window); beyond that the global
floor is raised to ``created + margin`` as if the request were the clock's. A restarted cache starts
with those floors, so every request admitted before the restart (``created`` at most its signer's
persisted floor or the global one) is refused after it, whatever the clocks did meanwhile. The cost
is one small synced write every ``margin`` seconds of traffic (plus one per ``AHEAD_MARGIN`` seconds
per signer ahead, at most ``AHEAD_CAPACITY`` in a window), and that honest requests signed in the last
``margin`` seconds before a restart are refused once after it (the signer retries with a fresh
``created``).
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
# About 12 MB when full (15 with evicted entries awaiting a compaction); over 100 signed requests/s
# sustained for the window.
DEFAULT_CAPACITY = 32_768
AHEAD_MARGIN = 10  # seconds a signer's own persisted floor reaches past its request: one write per 10 s
AHEAD_CAPACITY = 16  # signers ahead of the clock with a floor of their own (each one synced write)


class Admission(enum.Enum):
    NEW = "new"  # first sighting: remembered until created + window
    REPLAYED = "replayed"  # seen before within the window
    FORGOTTEN = "forgotten"  # too old for what the cache could keep (see the module docstring)


class ReplayFloor:
    """The persisted floors in ``path``: the global one (Unix seconds) on the first line, then one line
    ``<b|s> <hex> <floor>`` per signer ahead of the clock (its key as bytes or text), written with fsync.
    A file of one number (the format before signers' own floors) is the global floor alone."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> tuple[int | None, dict[Hashable, int]]:
        """(the global floor or None, the signers' own floors)."""
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None, {}
        except (OSError, UnicodeDecodeError) as exc:
            LOGGER.warning("replay floor %s unreadable (%s)", self.path, exc)
            return self._unknown(), {}
        lines = text.split("\n")
        first = lines[0].strip()
        if not _is_time(first):
            LOGGER.warning("replay floor %s is not a number", self.path)
            return self._unknown(), {}
        own: dict[Hashable, int] = {}
        for line in filter(None, (line.strip() for line in lines[1:])):
            parsed = _parse_own(line)
            if parsed is None:  # a floor that cannot be read might have been anyone's: hold everyone
                LOGGER.warning("replay floor %s has an unreadable line", self.path)
                return self._unknown(), {}
            own[parsed[0]] = parsed[1]
        return int(first), own

    @staticmethod
    def _unknown() -> int:
        # Lost: refuse whatever may have been accepted before (signed up to MAX_SKEW ahead of now),
        # which refuses honest requests too for that long, rather than guess.
        return int(time.time()) + UNKNOWN_FLOOR_AHEAD

    def store(self, value: int, own: dict[Hashable, int] | None = None) -> None:
        """Write the floors durably (the rename is atomic; the fsyncs make it survive power loss)."""
        lines = [str(value)] + [_format_own(signer, floor) for signer, floor in (own or {}).items()]
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, "\n".join(lines).encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _is_time(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 19


def _format_own(signer: Hashable, floor: int) -> str:
    if isinstance(signer, (bytes, bytearray)):
        return f"b {bytes(signer).hex()} {floor}"
    return f"s {str(signer).encode().hex()} {floor}"


def _parse_own(line: str) -> tuple[Hashable, int] | None:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] not in ("b", "s") or not _is_time(parts[2]):
        return None
    try:
        raw = bytes.fromhex(parts[1])
        signer: Hashable = raw if parts[0] == "b" else raw.decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return signer, int(parts[2])


_Entry = tuple[int, int, Hashable]  # (created, insertion order, key)


def signer_of(key: Hashable) -> Hashable:
    """Who signed the request a key stands for: ``(signer, nonce)`` keys (federation.httpsig) share
    the memory per signer; any other key is its own signer."""
    if isinstance(key, tuple) and len(key) == 2:
        return key[0]
    return key


class NonceCache:
    """Which (signer, nonce) pairs were admitted within the last ``window`` seconds; at most
    ``capacity`` of them. Times are integer seconds, passed in by the caller."""

    __slots__ = (
        "window", "capacity", "_heap", "_live", "_by_signer", "_signers_holding", "_most", "_floors",
        "_floor", "_seq", "_persist", "_persisted", "_margin", "_ahead", "_restored",
        "_latest",
    )

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
        # Every held entry, oldest first, for expiry. Entries evicted from a signer's own heap stay
        # here until they surface (stale: their seq is no longer the key's), or until a compaction.
        self._heap: list[_Entry] = []
        self._live: dict[Hashable, int] = {}  # key -> seq of the entry that holds it
        self._by_signer: dict[Hashable, list[_Entry]] = {}  # held entries of each signer, oldest first
        self._signers_holding: dict[int, set[Hashable]] = {}  # n -> the signers holding n entries
        self._most = 0  # the largest n above
        self._floors: dict[Hashable, int] = {}  # per signer, only while it holds an entry
        self._floor: int | None = None
        self._seq = 0
        self._latest = 0  # the latest ``now`` seen: a clock stepped back must not revive what expired
        self._persist = persist
        self._margin = margin
        self._persisted: int | None = None
        self._ahead: dict[Hashable, int] = {}  # the signers' own floors as persisted
        self._restored: dict[Hashable, int] = {}  # those a previous run persisted: held to here
        if persist is not None:
            self._floor, self._ahead = persist.load()
            self._persisted, self._restored = self._floor, dict(self._ahead)

    @property
    def floor(self) -> int | None:
        """The floor every signer is held to (the persisted one, raised by evictions that no single
        signer caused), or None if there is none."""
        return self._floor

    def floor_of(self, signer: Hashable) -> int | None:
        """The floor ``signer``'s requests are held to: the global one or its own, whichever is newer."""
        own = self._floors.get(signer)
        if self._restored:
            restored = self._restored.get(signer)
            if restored is not None and (own is None or restored > own):
                own = restored
        if own is None or (self._floor is not None and self._floor >= own):
            return self._floor
        return own

    def __len__(self) -> int:
        return len(self._live)

    def admit(self, key: Hashable, created: int, now: int) -> Admission:
        """Remember ``key`` (signed at ``created``) unless it was seen or cannot be checked."""
        if now >= self._latest:
            self._latest = now
        elif now > self._latest - self.window:
            now = self._latest
        else:  # stepped back a whole window: holding to the old time would refuse every honest request
            LOGGER.warning("the clock went back %d s, more than the replay window", self._latest - now)
            self._latest = now
        self._expire(now)
        if key in self._live:
            return Admission.REPLAYED
        signer = signer_of(key)
        floor = self.floor_of(signer)
        if created + self.window < now or (floor is not None and created <= floor):
            return Admission.FORGOTTEN
        victim = None
        if len(self._live) >= self.capacity:
            victim = self._victim_for(signer)
            # An eviction that raises the admitting signer's floor or everyone's (all hold one entry)
            # must not forget a newer request to make room for an older one.
            if (victim == signer or self._most == 1) and created <= self._by_signer[victim][0][0]:
                return Admission.FORGOTTEN
        if self._persist is not None and not self._persisted_for(signer, created, now):
            return Admission.FORGOTTEN  # cannot promise to remember it across a restart: not admitted
        self._seq += 1
        entry = (created, self._seq, key)
        heapq.heappush(self._heap, entry)
        self._live[key] = self._seq
        held = self._by_signer.setdefault(signer, [])
        heapq.heappush(held, entry)
        self._recount(signer, len(held) - 1, len(held))
        if victim is not None:  # after the push: a signer replacing its only entry keeps its own floor
            self._evict(victim)
        if len(self._heap) > self.capacity + self.capacity // 4:
            self._compact()
        return Admission.NEW

    def _persisted_for(self, signer: Hashable, created: int, now: int) -> bool:
        """Make the persisted floors cover ``created`` (see the module docstring); False when they
        could not be written."""
        value, ahead = self._persisted, self._ahead
        clock = min(created, now)
        if value is None or clock > value:
            value = clock + self._margin
        if created > now and created > max(value, ahead.get(signer, created - 1)):
            ahead = {k: f for k, f in ahead.items() if f + self.window >= now}  # the rest cannot pass
            if signer in ahead or len(ahead) < AHEAD_CAPACITY:
                ahead[signer] = created + AHEAD_MARGIN
            else:  # too many signers ahead: everyone is held to this one, as one clock
                value = created + self._margin
        if value == self._persisted and ahead is self._ahead:
            return True
        assert self._persist is not None
        try:
            self._persist.store(value, ahead)
        except OSError as exc:
            LOGGER.error("cannot persist the replay floor: %s", exc)
            return False
        self._persisted, self._ahead = value, ahead
        return True

    def _victim_for(self, signer: Hashable) -> Hashable:
        """Whose entry makes room, the memory being full: the signer holding the most entries (the
        admitting one if it ties), so a flood only evicts its own signer's entries. When every signer
        holds one, the oldest entry's signer (the eviction then raises the global floor)."""
        held = self._by_signer.get(signer)
        if held is not None and len(held) == self._most:
            return signer
        if self._most > 1:
            # set.pop resumes where the last one stopped; next(iter()) would rescan the slots that
            # earlier victims left empty, quadratic while a large tie is drained.
            heaviest = self._signers_holding[self._most]
            victim = heaviest.pop()
            heaviest.add(victim)
            return victim
        self._drop_stale_top()
        return signer_of(self._heap[0][2])

    def _evict(self, signer: Hashable) -> None:
        """Forget ``signer``'s oldest entry early, raising the floor that covers it."""
        held = self._by_signer[signer]
        created, _, key = heapq.heappop(held)
        del self._live[key]
        self._recount(signer, len(held) + 1, len(held))
        if held:
            self._floors[signer] = max(self._floors.get(signer, created), created)
        else:  # its last entry (every signer held one): no one signer to blame, so everyone's floor
            self._forget_signer(signer)
            self._floor = created if self._floor is None else max(self._floor, created)

    def _expire(self, now: int) -> None:
        # An entry is needed while its request could still pass the time check: now <= created + window.
        heap = self._heap
        while heap and heap[0][0] + self.window < now:
            created, seq, key = heapq.heappop(heap)
            if self._live.get(key) != seq:
                continue  # evicted earlier
            del self._live[key]
            signer = signer_of(key)
            held = self._by_signer[signer]
            heapq.heappop(held)  # the oldest held entry overall is its signer's oldest
            self._recount(signer, len(held) + 1, len(held))
            if not held:
                # Its floor is at most this entry's created, so the time check now refuses below it.
                self._forget_signer(signer)

    def _forget_signer(self, signer: Hashable) -> None:
        del self._by_signer[signer]
        self._floors.pop(signer, None)

    def _recount(self, signer: Hashable, before: int, after: int) -> None:
        """Move ``signer`` between the sets of ``_signers_holding``; counts change by one at a time."""
        if before:
            bucket = self._signers_holding[before]
            bucket.discard(signer)
            if not bucket:
                del self._signers_holding[before]
                if before == self._most:
                    self._most = after
        if after:
            self._signers_holding.setdefault(after, set()).add(signer)
            self._most = max(self._most, after)

    def _drop_stale_top(self) -> None:
        heap = self._heap
        while self._live.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)

    def _compact(self) -> None:
        # Stale entries (evicted ones, which keep their keys alive) come at most one per admission:
        # rebuilding once they are a quarter of the capacity bounds memory at an amortised O(1) each.
        self._heap = [entry for entry in self._heap if self._live.get(entry[2]) == entry[1]]
        heapq.heapify(self._heap)

