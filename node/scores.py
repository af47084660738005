"""Peer scores: the persisted standing of every signer that misbehaved (the ``peer_scores`` table).

A signer starts at ``FULL`` (100). Each offence lowers its score by its ``PENALTIES`` weight and is
counted by name (what `vrm peers list` shows as *why*); the score recovers ``RECOVERY_PER_MINUTE``
points a minute, back to full. Below ``THROTTLE_BELOW`` the signer is throttled (federation/scoring.py
lets it one request a second); at ``REFUSE_BELOW`` or lower it is refused for ``COOLDOWN_MS``, after
which it starts again throttled, at ``AFTER_COOLDOWN``. Honest peers commit no offences, so they stay
at full; an occasional limit hit costs little and is forgotten within minutes.

Offences (PROTOCOL.md, peer scoring): ``bad_signature`` (an envelope with an invalid signature in a
push: relaying forgeries), ``malformed_batch`` (a push that does not decode), ``limit_hit`` (a request
refused 429 or 413 for its own limit), ``unanswered_promise`` (an announced URL that did not answer as the
announcer); from Plumtree (federation/tree.py, at most one of each per peer every two seconds)
``ignored_prune`` (pushes on after a PRUNE) and ``unanswered_ihave`` (announced ids it did not deliver
when grafted). Times are milliseconds passed in by the caller. At most ``MAX_ROWS`` rows are kept: rows
recovered to full are deleted first (they say nothing), then the oldest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from node.store import Store

FULL = 100.0
THROTTLE_BELOW = 50.0
REFUSE_BELOW = 10.0
AFTER_COOLDOWN = 40.0
RECOVERY_PER_MINUTE = 2.0
COOLDOWN_MS = 10 * 60_000
MAX_ROWS = 10_000
PENALTIES = {
    "bad_signature": 5.0,
    "malformed_batch": 20.0,
    "limit_hit": 2.0,
    "unanswered_promise": 10.0,
    "ignored_prune": 3.0,
    "unanswered_ihave": 3.0,
}
MAX_PENALTY = 40.0  # one request costs at most this much, whatever it carried


@dataclass
class Standing:
    public_key: str
    score: float = FULL
    updated_at: int = 0
    offences: dict[str, int] = field(default_factory=dict)
    refused_until: int | None = None

    def current(self, now: int) -> float:
        """The score at ``now``, recovered since it was last lowered."""
        recovered = max(0, now - self.updated_at) / 60_000 * RECOVERY_PER_MINUTE
        return min(FULL, self.score + recovered)

    def state(self, now: int) -> str:
        """``ok``, ``throttled`` or ``refused`` at ``now``."""
        if self.refused_until is not None and now < self.refused_until:
            return "refused"
        return "throttled" if self.current(now) < THROTTLE_BELOW else "ok"

    def offend(self, offences: dict[str, int], now: int) -> None:
        """Lower the score for ``offences`` (name -> count) committed at ``now``."""
        penalty = min(MAX_PENALTY, sum(PENALTIES[name] * n for name, n in offences.items()))
        if self.refused_until is not None and now >= self.refused_until:  # a cool-down ended
            self.score, self.updated_at, self.refused_until = AFTER_COOLDOWN, now, None
        self.score = self.current(now) - penalty
        self.updated_at = now
        for name, n in offences.items():
            self.offences[name] = self.offences.get(name, 0) + n
        if self.score <= REFUSE_BELOW and self.refused_until is None:
            self.refused_until = now + COOLDOWN_MS

    def why(self) -> str:
        return ", ".join(f"{name} ×{n}" for name, n in sorted(self.offences.items()))

    def to_json(self, now: int) -> dict[str, object]:
        return {
            "score": round(self.current(now), 1),
            "state": self.state(now),
            "offences": dict(self.offences),
            "refused_until": self.refused_until,
        }


class Scores:
    """The ``peer_scores`` table over one Store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load(self) -> dict[str, Standing]:
        rows = self._store.query("SELECT * FROM peer_scores ORDER BY updated_at DESC LIMIT ?", [MAX_ROWS])
        return {r["public_key"]: _standing(r) for r in rows}

    def get(self, public_key_hex: str) -> Standing:
        row = self._store.query_one("SELECT * FROM peer_scores WHERE public_key = ?", [public_key_hex])
        return Standing(public_key_hex) if row is None else _standing(row)

    def save_many(self, standings: list[Standing], now: int) -> None:
        with self._store.transaction():
            for standing in standings:
                self.save(standing, now)

    def save(self, standing: Standing, now: int) -> None:
        with self._store.transaction():
            self._store.execute(
                "INSERT INTO peer_scores (public_key, score, updated_at, offences, refused_until)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (public_key) DO UPDATE SET score = excluded.score,"
                " updated_at = excluded.updated_at, offences = excluded.offences,"
                " refused_until = excluded.refused_until",
                [standing.public_key, standing.score, standing.updated_at, json.dumps(standing.offences),
                 standing.refused_until],
            )
            count = self._store.query_one("SELECT count(*) AS n FROM peer_scores")["n"]
            if count > MAX_ROWS:
                # Recovered rows first (score plus what it regained is full), then the oldest.
                self._store.execute(
                    "DELETE FROM peer_scores WHERE public_key IN (SELECT public_key FROM peer_scores"
                    " ORDER BY (score + (? - updated_at) / 60000.0 * ?) >= ? DESC, updated_at LIMIT ?)",
                    [now, RECOVERY_PER_MINUTE, FULL, count - MAX_ROWS],
                )


def _standing(row: dict) -> Standing:
    try:
        offences = {str(k): int(v) for k, v in json.loads(row["offences"]).items()}
    except (ValueError, AttributeError, TypeError):
        offences = {}
    return Standing(row["public_key"], row["score"], row["updated_at"], offences, row["refused_until"])
