"""Start and stop a fleet's listeners as real `vrm serve` processes (the demo and the benchmark).

``join_listeners`` makes one home per listener from the fleet's database (`vrm fleet join`: the one
vendor identity, ``store.url`` set) — a home has one admin API, so two listeners never share a home
directory, only the identity and the database. ``start_node`` runs ``python -m cli --home H serve``
with a free port, reads the federation and admin URLs it prints, and waits until ``GET /v1/health``
answers ok; ``Node.stop`` sends SIGTERM (a graceful stop: the listener marks itself stopped) and
kills only after ``grace`` seconds. ``Fleet`` is N of them, stopped together.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

_ROOT = Path(__file__).resolve().parent.parent


class LaunchError(RuntimeError):
    """A node process did not start, or did not become healthy in time (its log is quoted)."""


def vrm_command(home: str | os.PathLike[str], *args: str) -> list[str]:
    """``vrm --home HOME args…`` as this interpreter runs it (no dependency on PATH)."""
    return [sys.executable, "-m", "cli", "--home", str(home), *args]


def vrm(home: str | os.PathLike[str], *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run one `vrm` command to completion; its stdout, or LaunchError with its stderr."""
    done = subprocess.run(
        vrm_command(home, *args), capture_output=True, text=True, timeout=timeout, env=_env(env), cwd=_ROOT
    )
    if done.returncode != 0:
        raise LaunchError(f"vrm {' '.join(args)} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env.pop("VRM_HOME", None)  # --home decides
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@dataclass
class Node:
    """One running `vrm serve` process."""

    home: Path
    process: subprocess.Popen[str]
    log_path: Path
    url: str = ""
    admin_url: str = ""
    lines: list[str] = field(default_factory=list)

    def health(self, timeout: float = 2.0) -> tuple[int, dict[str, Any]]:
        return health(self.url, timeout=timeout)

    def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def health(url: str, *, timeout: float = 2.0) -> tuple[int, dict[str, Any]]:
    """``GET url/v1/health``: (status, body); (0, {}) when nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/v1/health", timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError):
        return 0, {}


def start_node(
    home: str | os.PathLike[str],
    *,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    log_dir: str | os.PathLike[str] | None = None,
    command: Sequence[str] | None = None,
) -> Node:
    """`vrm serve` for ``home`` on 127.0.0.1 (a free port unless ``args`` say otherwise), returned
    once it prints its URLs and its health is ok. ``command`` replaces `vrm serve` by another program
    printing the same lines (``command + [home]``: the benchmark's server with its budgets lifted)."""
    home = Path(home)
    log_path = Path(log_dir or home) / f"serve-{home.name}.log"
    stderr = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - the process keeps writing to it
    if command is not None:
        command = [*command, str(home), *args]
    else:
        command = vrm_command(home, "serve", "--host", "127.0.0.1", "--port", "0", *args)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=_env(env), cwd=_ROOT, start_new_session=True
    )
    stderr.close()
    node = Node(home, process, log_path)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines, node.lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        while not (node.url and node.admin_url):
            try:
                line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                raise LaunchError(f"{home}: no URLs within {timeout:.0f} s") from None
            if line is None:
                raise LaunchError(f"{home}: vrm serve exited {process.wait()}")
            if line.startswith("federation "):
                node.url = line.split(" ", 1)[1].strip()
            elif line.startswith("admin "):
                node.admin_url = line.split(" ", 1)[1].strip()
        while node.health()[0] != 200:
            if process.poll() is not None:
                raise LaunchError(f"{home}: vrm serve exited {process.returncode}")
            if time.monotonic() > deadline:
                raise LaunchError(f"{home}: /v1/health not ok within {timeout:.0f} s: {node.health()}")
            time.sleep(0.1)
    except LaunchError as exc:
        node.stop(grace=5)
        raise LaunchError(f"{exc}\n--- its log ---\n{node.log()[-4000:]}") from None
    return node


def _pump(stream: IO[str] | None, lines: queue.Queue[str | None], keep: list[str]) -> None:
    """Read the node's stdout to the end (so its pipe never fills), handing each line over."""
    assert stream is not None
    try:
        for line in stream:
            keep.append(line.rstrip("\n"))
            lines.put(line)
    except ValueError:  # closed by stop()
        pass
    lines.put(None)


def join_listeners(url: str, root: str | os.PathLike[str], count: int, *, env: dict[str, str] | None = None) -> list[Path]:
    """``count`` new listener homes under ``root`` (listener-1 …), each `vrm fleet join`ed to ``url``."""
    homes = []
    for i in range(1, count + 1):
        home = Path(root) / f"listener-{i}"
        vrm(home, "fleet", "join", "--store", url, env=env)
        homes.append(home)
    return homes


class Fleet:
    """``with Fleet(homes) as fleet: fleet.urls`` — one `vrm serve` per home, started in parallel."""

    def __init__(
        self,
        homes: Sequence[Path],
        *,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        timeout: float = 90.0,
        command: Sequence[str] | None = None,
    ) -> None:
        self.homes = list(homes)
        self.args, self.env, self.timeout, self.command = list(args), env, timeout, command
        self.nodes: list[Node] = []

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self) -> Fleet:
        errors: list[BaseException] = []
        started: list[Node | None] = [None] * len(self.homes)

        def one(i: int) -> None:
            try:
                started[i] = start_node(
                    self.homes[i], args=self.args, env=self.env, timeout=self.timeout, command=self.command
                )
            except BaseException as exc:  # reported below, after every thread ended
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(self.homes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.nodes = [n for n in started if n is not None]
        if errors:
            self.stop()
            raise errors[0]
        return self

    def stop(self) -> list[int]:
        codes = [n.stop() for n in self.nodes]
        self.nodes = []
        return codes

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
