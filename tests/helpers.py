"""Small things many test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import trio

from app.ops import run_op
from app.root import direct_services
from node.home import init_home
from node.identity import Identity
from node.keystore import load_identity
from node.peers import Peers
from node.store import Store


class Clock:
    """A clock that stands still until a test moves it (``clock.now += …``)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class InlineStore:
    """``AsyncStore`` without its thread: store calls run on the event loop, one Store shared by every
    ``trio.run`` of a test (an app composed over it answers in order, deterministically)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def run(self, fn, *args, **kwargs):
        await trio.lowlevel.checkpoint()
        return fn(*args, **kwargs)


DEAD_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there


@contextlib.asynccontextmanager
async def person_with_away_vendor(path: Path, clock: Callable[[], int] | None = None):
    """A person's node in direct mode whose vault holds an email, with a vendor peer that is away (its
    URL answers nothing): ``(services, the vendor's key)``."""
    home = init_home(path, None, "person")
    kwargs = {"clock": clock} if clock is not None else {}
    async with direct_services(home, load_identity(home.key_path, None), **kwargs) as services:
        vendor = Identity.generate().public_key
        Peers(services.store.store).add(public_key=vendor, url=DEAD_URL, role="vendor", name="Acme")
        await run_op(services, "vault.set", {"name": "email", "value": "alice@example.org"})
        yield services, vendor
