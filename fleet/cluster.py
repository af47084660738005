"""A throwaway PostgreSQL cluster for tests and the fleet demo: Debian's postgresql-15 binaries, a temp
directory, a free loopback port, dropped afterwards.

``initdb`` refuses to run as root, so when we are root the cluster belongs to the ``postgres`` user
(``runuser -u postgres --``) and its directory is handed to that user. The server listens on
127.0.0.1 only, trusts local connections (it is a test cluster that lives for one run) and uses the
temp directory for its Unix socket, so it never touches a system cluster.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_VERSION_DIRS = "/usr/lib/postgresql/*/bin"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (install Debian's postgresql-15)."""


def pg_bindir() -> Path:
    """The newest installed server's bin directory (initdb, pg_ctl)."""
    found = sorted(glob.glob(PG_VERSION_DIRS), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    for candidate in reversed(found):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresUnavailable("no PostgreSQL server found (apt-get install -y postgresql-15)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """``with PgCluster() as pg: pg.url`` — a running cluster with database ``vrm``."""

    def __init__(self, *, database: str = "vrm") -> None:
        self.bindir = pg_bindir()
        self.database = database
        self.port = 0
        self.root: Path | None = None
        self._as_postgres = os.geteuid() == 0

    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> PgCluster:
        self.root = Path(tempfile.mkdtemp(prefix="vrm-pg-"))
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(self.bindir / "initdb", "-D", self.datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions")
        self.port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} -c max_connections=200 -c fsync=on"
        done = self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-o", options, "-l", self.root / "log", "-w", "-t", "60", "start", check=False)
        if done.returncode != 0:
            log = (self.root / "log").read_text(errors="replace") if (self.root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr}\n{log}")
        self._wait_ready()
        self._run(self.bindir / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = self._run(self.bindir / "pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not become ready in 30 s")

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if self.datadir.exists():
                self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop", check=False)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
