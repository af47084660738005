"""Test helpers for a vendor fleet: several real listeners over one PostgreSQL database.

``Fleet(nursery, tmp_path, pg_url)`` is one vendor (one key, made once) whose listeners each get a
home of their own holding a copy of that key (admin.json and the replay floor are per home, the rest
is the shared database). A listener runs in this process (``await fleet.start()``: a NodeRuntime on
port 0) or as a real `vrm serve --store URL` process (``await fleet.spawn()``), which a test can kill
with SIGKILL. ``fleet.db`` is the test's own view of the shared database.

``Inbox`` is a receiving peer that counts: it answers every pushed item ``ok`` and records each
envelope id it was sent, so a test can tell whether a delivery arrived once, twice or never.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio

from app.runtime import NodeRuntime
from federation import wire
from federation.server import serve
from fleet.pgstore import PgStore
from node import envelope
from node.home import HomeInfo, init_home, load_home
from node.identity import Identity
from node.intents import parse_intent
from node.keystore import load_identity
from tests.fednet import FAST

ROOT = Path(__file__).resolve().parent.parent
VRM = Path(sys.executable).with_name("vrm")
HOUR = 3_600_000


def intent(author: Identity, text: str) -> envelope.Envelope:
    now = envelope.now_ms()
    return envelope.create(author, "intent", parse_intent(text).body(()), created=now, expires=now + HOUR)


@dataclass
class Proc:
    """A `vrm serve` listener in its own process."""

    popen: subprocess.Popen[str]
    home: HomeInfo
    url: str
    admin_url: str

    def kill(self) -> None:
        """SIGKILL: no graceful stop, no rollback by the process, no last heartbeat."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)


class Fleet:
    def __init__(self, nursery: trio.Nursery, tmp_path: Path, url: str, *, name: str = "acme") -> None:
        self._nursery = nursery
        self._root = tmp_path
        self.url = url
        self.home = init_home(tmp_path / "vendor", None, "vendor", name=name.title(), handle=name)
        self.identity = load_identity(self.home.key_path, None)
        self.db = PgStore(url, max_size=4)
        self.runtimes: list[NodeRuntime] = []
        self.procs: list[Proc] = []
        self._homes = 0
        self._stopped: list[trio.Event] = []  # set when an in-process listener has closed its store

    def listener_home(self) -> HomeInfo:
        """A new home with the vendor's key (what `vrm fleet join` gives a listener's machine)."""
        self._homes += 1
        path = self._root / f"listener{self._homes}"
        shutil.copytree(self.home.path, path)
        return load_home(path)

    async def start(self, **options: Any) -> NodeRuntime:
        """A listener in this process; returns once it listens and has joined the fleet."""
        home = self.listener_home()
        runtime = NodeRuntime(home, load_identity(home.key_path, None), store=self.url, **{**FAST, **options})
        await self._nursery.start(self._run, runtime)
        self.runtimes.append(runtime)
        return runtime

    async def _run(self, runtime: NodeRuntime, *, task_status: trio.TaskStatus[None]) -> None:
        done = trio.Event()
        self._stopped.append(done)
        try:
            await runtime.run(task_status=task_status)
        finally:
            done.set()

    async def spawn(self, **options: Any) -> Proc:
        """A `vrm serve --store URL` process on port 0 (with NodeRuntime ``options``, the same server
        through tests/_fleet_proc.py); returns once it prints its URLs."""
        home = self.listener_home()
        if options:
            cmd = [sys.executable, "-m", "tests._fleet_proc", home.path, self.url, json.dumps(options)]
        else:
            cmd = [str(VRM), "--home", home.path, "serve", "--port", "0", "--store", self.url]
        popen = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

        def read_urls() -> tuple[str, str]:
            urls: dict[str, str] = {}
            assert popen.stdout is not None
            for line in popen.stdout:
                word, _, rest = line.strip().partition(" ")
                if word in ("federation", "admin"):
                    urls[word] = rest
                if len(urls) == 2:
                    return urls["federation"], urls["admin"]
            raise RuntimeError(f"vrm serve exited {popen.wait()}: {popen.stderr.read() if popen.stderr else ''}")

        try:
            url, admin_url = await trio.to_thread.run_sync(read_urls, abandon_on_cancel=True)
        except BaseException:
            popen.kill()
            raise
        # The rest of its output is drained so a full pipe never blocks the process.
        self._nursery.start_soon(partial(trio.to_thread.run_sync, _drain, popen, abandon_on_cancel=True))
        proc = Proc(popen, home, url, admin_url)
        self.procs.append(proc)
        return proc

    async def aclose(self) -> None:
        """Stop every listener and wait until each has let go of the database."""
        for runtime in self.runtimes:
            runtime.stop()
        for done in self._stopped:
            await done.wait()
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.terminate()  # a graceful stop, as systemd would
                try:
                    await trio.to_thread.run_sync(proc.popen.wait, 10)
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
                    await trio.to_thread.run_sync(proc.popen.wait)
        self.db.close()


async def until(predicate: Callable[[], object], *, interval: float = 0.02) -> None:
    """Poll ``predicate`` (synchronous) until it is true (the test's fail_after bounds the wait)."""
    while not predicate():
        await trio.sleep(interval)


def _drain(popen: subprocess.Popen[str]) -> None:
    for stream in (popen.stdout, popen.stderr):
        if stream is not None:
            for _line in stream:
                pass


class Inbox:
    """A receiving peer on 127.0.0.1 (port 0) that counts what it is pushed (``POST /v1/gossip`` is
    all it serves: a hello or a pull gets 404, which its senders take in their stride). While ``hold`` is set
    it keeps every push waiting unanswered (a peer slow enough that a sender dies mid-request)."""

    def __init__(self) -> None:
        self.identity = Identity.generate()
        self.received: collections.Counter[bytes] = collections.Counter()
        self.hold = False
        self.held = 0  # requests waiting unanswered right now
        self.first_at: int | None = None  # wall clock (ms) of the first push answered
        self.url: str | None = None

    @property
    def key(self) -> str:
        return self.identity.public_key.hex()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = (await receive())["type"]  # lifespan.startup, then lifespan.shutdown
                await send({"type": event + ".complete"})
                if event == "lifespan.shutdown":
                    return
        if (scope["method"], scope["path"]) != ("POST", "/v1/gossip"):  # hellos and pulls: not served
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.hold:
            self.held += 1
            try:
                await trio.sleep_forever()
            finally:
                self.held -= 1
        items = wire.decode_batch(body)
        if self.first_at is None:
            self.first_at = envelope.now_ms()
        for item in items:
            self.received[envelope.decode(item.envelope).id] += 1
        answer = wire.encode_reasons(bytes(len(items)))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", wire.MEDIA_TYPE.encode())]})
        await send({"type": "http.response.body", "body": answer})

    async def start(self, nursery: trio.Nursery) -> Inbox:
        bound = await nursery.start(partial(serve, self, graceful_timeout=0.1))
        self.url = bound.url
        return self
