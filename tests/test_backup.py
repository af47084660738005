"""`vrm backup` of a node while a writer commits, then `vrm restore`: the restored store passes
``PRAGMA integrity_check``, holds every write acknowledged before the backup began and no half of one,
and is the same node (its encrypted key came along)."""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VRM = Path(sys.executable).with_name("vrm")
PASSPHRASE = "backup test passphrase"
TIMEOUT_S = 60


def vrm(*args: str, home: Path, code: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(VRM), "--home", str(home), *args],
        capture_output=True, text=True, timeout=TIMEOUT_S,
        env={**os.environ, "VRM_PASSPHRASE": PASSPHRASE},
    )
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return result


def test_backup_under_write_load_restores_every_acknowledged_write(tmp_path):
    home = tmp_path / "node"
    vrm("init", home=home)
    vrm("config", "set", "server.port", "9471", home=home)
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests._writer_proc", str(home / "node.db")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    acks: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in writer.stdout:  # type: ignore[union-attr]
            acks.put(line)
        acks.put(None)

    threading.Thread(target=pump, daemon=True).start()
    acknowledged: set[int] = set()
    try:
        while len(acknowledged) < 30:  # the writer is well under way
            line = acks.get(timeout=TIMEOUT_S)
            assert line is not None, writer.stderr.read()  # type: ignore[union-attr]
            acknowledged.add(int(line))
        while not acks.empty():
            if (line := acks.get_nowait()) is not None:
                acknowledged.add(int(line))
        archive = tmp_path / "node.tar"
        vrm("backup", str(archive), home=home)  # while the writer keeps committing
        during = acks.qsize()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=TIMEOUT_S)
    assert during > 0, "the writer should have committed while the backup ran"

    restored = tmp_path / "restored"
    out = vrm("restore", str(archive), home=restored).stdout
    db = sqlite3.connect(restored / "node.db")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    present = {int(h.removeprefix("@w-")) for (h,) in db.execute("SELECT handle FROM vendors WHERE handle LIKE '@w-%'")}
    assert acknowledged <= present
    assert present == set(range(len(present)))  # a snapshot: a prefix of the commits, no gaps
    notes = db.execute(
        "SELECT count(*) FROM notes n JOIN vendors v ON n.vendor_id = v.id WHERE v.handle LIKE '@w-%'"
    ).fetchone()[0]
    assert notes == 3 * len(present)  # every transaction whole
    db.close()

    # The same node, its key still encrypted (the passphrase opens it), its settings kept.
    original = json.loads(vrm("id", "--json", home=home).stdout)
    again = json.loads(vrm("id", "--json", home=restored).stdout)
    assert (again["node_id"], again["encrypted"]) == (original["node_id"], True)
    assert original["node_id"] in out
    assert vrm("config", "get", "server.port", home=restored).stdout.strip() == "9471"
    assert vrm("vendors", "list", "--json", home=restored).returncode == 0
    assert (restored / "identity.json").stat().st_mode & 0o077 == 0


def test_restore_refuses_an_occupied_home_and_a_damaged_archive(tmp_path):
    home = tmp_path / "node"
    vrm("init", home=home)
    archive = tmp_path / "node.tar"
    vrm("backup", str(archive), home=home)
    vrm("backup", str(archive), home=home, code=4)  # never over an existing file
    assert "not empty" in vrm("restore", str(archive), home=home, code=1).stderr

    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "node.db":
                data = data[:5000] + bytes([data[5000] ^ 1]) + data[5001:]


            dst.addfile(member, io.BytesIO(data))
    err = vrm("restore", str(damaged), home=tmp_path / "new", code=6).stderr
    assert "node.db does not match its digest" in err
    assert not (tmp_path / "new").exists()  # nothing half-restored left behind
