"""Reading the operator log in tests: the lines a logger wrote, and a clock the rate limit reads."""

from __future__ import annotations

import logging


class FakeClock:
    """Seconds, moved by hand (the rate-limited log's clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog, logger: str, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and needle in r.getMessage()]


def logged(caplog, logger: str, needle: str):
    """For ``eventually``: the lines so far that say ``needle``."""

    async def check() -> list[logging.LogRecord]:
        return lines(caplog, logger, needle)

    return check
