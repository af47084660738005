"""The node's one wall clock: integer milliseconds since the epoch.

Everything that stamps or checks a time takes a ``clock`` argument defaulting to ``wall_clock_ms``, so
tests can pass their own and no module reads the time behind its caller's back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
