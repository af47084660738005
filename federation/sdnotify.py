"""The systemd notify protocol (sd_notify(3)), without libsystemd: one datagram per state change.

A unit with ``Type=notify`` starts the daemon with ``$NOTIFY_SOCKET`` (a path, or ``@name`` for an
abstract socket); the daemon sends ``READY=1`` once it serves, ``STOPPING=1`` when it begins to shut
down, and — when the unit sets ``WatchdogSec`` — ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC``
microseconds, or systemd restarts it. ``$WATCHDOG_PID``, when set, names the process the watchdog is
meant for; another process (a child) must not ping.

Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing, so `vrm serve` behaves the same from
a terminal. A send that fails is logged, never raised: the node keeps serving either way.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

LOGGER = logging.getLogger("vrm.sdnotify")


class Notifier:
    """Where to send states, read once from the environment (``from_environ``)."""

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        watchdog = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec)
        return cls(address, watchdog_usec=watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def ping_interval(self) -> float | None:
        """Seconds between watchdog pings: half the watchdog timeout, as sd_watchdog_enabled(3) advises."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2_000_000

    def notify(self, *states: str) -> bool:
        """Send ``states`` (``"READY=1"``, ``"STATUS=…"``) as one datagram; False when not sent."""
        if self.address is None:
            return False
        target = self.address
        if target.startswith("@"):  # abstract namespace: a leading NUL instead of the @
            target = "\0" + target[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(states).encode("utf-8"), target)
        except OSError as exc:
            LOGGER.warning("could not notify systemd at %s: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")
