"""Backups of a node home: one file that `vrm restore` turns back into a working home.

A backup is an uncompressed tar (mode 0600) of:

- ``manifest.json``: ``{"format": "vrm-backup", "version": 1, "node_id", "role", "created_at",
  "files": {name: sha256 hex}}``, written last in the archive, checked first on restore;
- ``node.db``: a consistent copy of the store made with SQLite's online backup API while the node may
  be running and writing: the copy is one read transaction's snapshot (WAL readers never block the
  writer), so it holds every transaction committed before the backup began and none half-done;
- ``identity.json``: the key file as it is — encrypted under the passphrase unless the home has none;
- ``config.json`` and, when present, ``node.toml``.

The copy is checked with ``PRAGMA integrity_check`` before it is archived, and again on restore.
Restoring never writes into a home that holds anything (like ``vrm init``), extracts only the names
above as regular files, and checks every digest before the home is complete (config.json last).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from node.errors import ConflictError, HomeError, ValidationError
from node.home import CONFIG_FILE, DB_FILE, KEY_FILE, load_home

FORMAT = "vrm-backup"
VERSION = 1
MANIFEST = "manifest.json"
SETTINGS_FILE = "node.toml"
MEMBERS = (DB_FILE, KEY_FILE, CONFIG_FILE, SETTINGS_FILE)
MAX_MEMBER = 64 * 1024**3  # a bigger entry is not one of ours (a hostile archive's bomb)


@dataclass(frozen=True)
class BackupInfo:
    path: str
    node_id: str
    role: str
    created_at: int
    size: int
    encrypted: bool


def snapshot_db(source: Path, dest: Path) -> None:
    """Copy the live store at ``source`` to ``dest``: one backup step over all pages, so a single read
    snapshot, then an integrity check of the copy."""
    src = sqlite3.connect(source)  # read-write: a read-only WAL reader may not create the -shm it needs
    try:
        src.execute("PRAGMA busy_timeout = 10000")
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = DELETE")  # the copy is one self-contained file
            check_integrity(dst, str(dest))
        finally:
            dst.close()
    finally:
        src.close()


def check_integrity(conn: sqlite3.Connection, name: str) -> None:
    result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        raise HomeError(f"{name} fails PRAGMA integrity_check: {'; '.join(result[:5])}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backup(home_path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> BackupInfo:
    """Write a backup of the home at ``home_path`` to ``dest`` (refused if ``dest`` exists)."""
    home = load_home(home_path)
    target = Path(dest).expanduser().absolute()
    if target.exists():
        raise ConflictError(f"{target} exists; a backup never overwrites a file")
    with tempfile.TemporaryDirectory(prefix=".vrm-backup-", dir=target.parent) as work:
        snapshot = Path(work) / DB_FILE
        snapshot_db(home.db_path, snapshot)
        files = {DB_FILE: snapshot, KEY_FILE: home.key_path, CONFIG_FILE: home.config_path}
        settings = Path(home.path) / SETTINGS_FILE
        if settings.exists():
            files[SETTINGS_FILE] = settings
        created_at = int(time.time() * 1000)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "node_id": home.node_id,
            "role": home.role,
            "created_at": created_at,
            "files": {name: _sha256(path) for name, path in files.items()},
        }
        partial = Path(work) / "archive.tar"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in files.items():
                tar.add(path, arcname=name, recursive=False, filter=_plain)
            body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
            entry = _plain(tarfile.TarInfo(MANIFEST))
            entry.size = len(body)
            tar.addfile(entry, io.BytesIO(body))
            tar.fileobj.flush()  # type: ignore[union-attr]
            raw.flush()
            os.fsync(raw.fileno())
        os.link(partial, target)  # refuses to replace a file that appeared meanwhile
    return BackupInfo(str(target), home.node_id, home.role, created_at, target.stat().st_size, home.encrypted)


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    info.mtime = int(time.time())
    return info


def read_manifest(tar: tarfile.TarFile, source: str) -> dict:
    try:
        member = tar.getmember(MANIFEST)
    except KeyError:
        raise ValidationError("backup", f"{source} has no {MANIFEST}: not a vrm backup") from None
    if not member.isfile() or member.size > 1 << 20:
        raise ValidationError("backup", f"{source}: {MANIFEST} is not a small regular file")
    try:
        manifest = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("backup", f"{source}: {MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ValidationError("backup", f"{source} is not a version {VERSION} vrm backup")
    files = manifest.get("files")
    if (
        not isinstance(files, dict)
        or not {DB_FILE, KEY_FILE, CONFIG_FILE} <= set(files)
        or not set(files) <= set(MEMBERS)
    ):
        raise ValidationError("backup", f"{source}: the manifest does not list a node's files")
    return manifest


def restore(source: str | os.PathLike[str], home_path: str | os.PathLike[str]) -> BackupInfo:
    """Bring the backup at ``source`` back as the home ``home_path`` (absent or an empty directory)."""
    archive = Path(source).expanduser().absolute()
    home = Path(home_path).expanduser().absolute()
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise HomeError(f"{home} is not empty; restore into a new directory")
    try:
        tar = tarfile.open(archive, mode="r:")
    except (OSError, tarfile.TarError) as exc:
        raise ValidationError("backup", f"cannot read {archive}: {exc}") from None
    created = not home.exists()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    try:
        with tar:
            manifest = read_manifest(tar, str(archive))
            files: dict[str, str] = manifest["files"]
            # config.json last: until it is there, the home reads as an interrupted restore.
            for name in sorted(files, key=lambda n: n == CONFIG_FILE):
                _extract(tar, name, home / name, files[name], str(archive))
        db = sqlite3.connect(f"file:{home / DB_FILE}?mode=ro", uri=True)
        try:
            check_integrity(db, f"{archive}:{DB_FILE}")
        finally:
            db.close()
        info = load_home(home)
        if info.node_id != manifest.get("node_id"):
            raise ValidationError("backup", f"{archive}: the key is not the node the manifest names")
    except BaseException:
        for name in (*MEMBERS, DB_FILE + "-wal", DB_FILE + "-shm"):
            (home / name).unlink(missing_ok=True)
        if created:
            home.rmdir()
        raise
    return BackupInfo(
        str(home), info.node_id, info.role, int(manifest.get("created_at", 0)), archive.stat().st_size, info.encrypted
    )


def _extract(tar: tarfile.TarFile, name: str, dest: Path, sha256: str, source: str) -> None:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise ValidationError("backup", f"{source} lacks {name}") from None
    if not member.isfile() or member.size > MAX_MEMBER:
        raise ValidationError("backup", f"{source}: {name} is not a regular file")
    reader = tar.extractfile(member)
    assert reader is not None
    digest = hashlib.sha256()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != sha256:
        raise ValidationError("backup", f"{source}: {name} does not match its digest (damaged archive)")
