"""Running under systemd: the generated units pass `systemd-analyze verify`, and a real `vrm serve`
speaks the notify protocol (READY=1 once it listens, WATCHDOG=1 pings, STOPPING=1 on SIGINT) to a
datagram socket this test listens on, with its settings from node.toml and flags overriding them."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from federation.sdnotify import Notifier

ROOT = Path(__file__).resolve().parent.parent
VRM = Path(sys.executable).with_name("vrm")
TIMEOUT_S = 60


def vrm(*args: str, home: Path, code: int = 0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(VRM), "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return result


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "node"
    vrm("init", "--no-passphrase", home=path)
    return path


def systemd_analyze() -> str:
    if shutil.which("systemd-analyze") is None:
        subprocess.run([str(ROOT / ".ci" / "ensure-debs"), "systemd"], check=True, timeout=900)
    return shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


@pytest.mark.parametrize("scope", ["--user", "--system"])
def test_generated_units_pass_systemd_analyze_verify(home, tmp_path, scope):
    vrm("config", "set", "service.watchdog_sec", "30", home=home)
    vrm("config", "set", "service.memory_max", "128M", home=home)
    units = tmp_path / "units"
    out = vrm("service", "install", scope, "--unit-dir", str(units), "--no-start", home=home).stdout
    unit = units / "vrm-node.service"
    assert f"wrote {unit}" in out
    text = unit.read_text()
    for line in ("Type=notify", "Restart=on-failure", "KillSignal=SIGINT", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "PrivateTmp=yes", "StateDirectory=vrm-node", "MemoryMax=128M",
                 "WatchdogSec=30s", f"ReadWritePaths={home}"):
        assert line in text.splitlines(), line
    assert ("User=" in text) == (scope == "--system")
    runtime = tmp_path / "run"  # the user manager's runtime directory, which verify --user needs
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "notice", "XDG_RUNTIME_DIR": str(runtime)}
    user = ["--user"] if scope == "--user" else []
    check = subprocess.run(
        [systemd_analyze(), "verify", *user, "--man=no", str(unit)],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
    )
    complaints = [line for line in check.stderr.splitlines() if "vrm-node.service" in line]
    assert check.returncode == 0 and not complaints, check.stderr

    assert "installed" in vrm("service", "status", scope, "--unit-dir", str(units), home=home, code=0).stdout
    vrm("service", "uninstall", scope, "--unit-dir", str(units), home=home)
    assert not unit.exists()
    vrm("service", "status", scope, "--unit-dir", str(units), home=home, code=3)


def test_a_path_socket_gets_the_states_too(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
        assert notifier.ready("up") and notifier.stopping()
        assert listener.recv(4096).split(b"\n")[:2] == [b"READY=1", b"STATUS=up"]
        assert listener.recv(4096) == b"STOPPING=1"
    assert not Notifier.from_environ({}).ready()  # outside systemd: nothing sent, nothing raised
    assert not Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready()  # logged, not raised


def test_serve_notifies_ready_watchdog_and_stopping(home):
    # node.toml says port 1 (taken below: binding it would fail) and a fixed admin port; --port 0
    # must win over the file while the admin port comes from it.
    with socket.socket() as taken, socket.socket() as probe:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        probe.bind(("127.0.0.1", 0))
        admin_port = probe.getsockname()[1]
        probe.close()
        vrm("config", "set", "server.port", str(taken.getsockname()[1]), home=home)
        vrm("config", "set", "server.admin_port", str(admin_port), home=home)
        vrm("config", "set", "log.format", "json", home=home)
        address = f"@vrm-test-{secrets.token_hex(8)}"  # an abstract socket, as systemd uses
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
            listener.bind("\0" + address[1:])
            listener.settimeout(TIMEOUT_S)
            process = subprocess.Popen(
                [str(VRM), "--home", str(home), "serve", "--port", "0"],
                env={**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            try:
                states = listener.recv(4096).decode().split("\n")
                assert states[0] == "READY=1" and f"MAINPID={process.pid}" in states
                # READY=1 came after both servers listen: the federation URL answers already.
                lines = dict(process.stdout.readline().strip().split(" ", 1) for _ in range(3))
                assert lines["admin"] == f"http://127.0.0.1:{admin_port}"
                port = int(lines["federation"].rsplit(":", 1)[1])
                assert port not in (0, taken.getsockname()[1])
                assert httpx.get(lines["federation"] + "/v1/node", timeout=5).status_code == 401  # unsigned
                started = time.monotonic()
                pings = [listener.recv(4096) for _ in range(3)]
                assert pings == [b"WATCHDOG=1"] * 3
                assert time.monotonic() - started < 3  # every half timeout (0.2 s), not once in a while
                process.send_signal(signal.SIGINT)
                while (state := listener.recv(4096)) == b"WATCHDOG=1":
                    pass
                assert state == b"STOPPING=1"
                _, err = process.communicate(timeout=TIMEOUT_S)
                assert process.returncode == 0, err
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
