"""The node's home directory: where it lives and what ``init`` puts there.

Layout::

    <home>/            mode 0700
      identity.json    the key file (node.keystore), mode 0600
      node.db          the store (node.store), plus SQLite's node.db-wal / node.db-shm
      config.json      {"format": "vrm-home", "version": 1, "role", "created_at", "schema_version",
                        "name"?, "handle"?, "imported_from"?}
      admin.json       while `vrm serve` runs: its admin URL and token (federation.admin)

``name`` and ``handle`` are how the node presents itself to peers (a vendor's offers carry them); a home
written before they existed has neither and loads with both empty.

``config.json`` is written last, so a home without it is an interrupted ``init``: it is reported as
incomplete and, like any non-empty directory, never initialised over.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from node.errors import HomeError, ValidationError, VrmError
from node.keystore import (
    OWASP_ARGON2,
    Argon2Params,
    derive_vault_key,
    encode_passphrase,
    read_public,
    save_identity,
    write_new_file,
)
from node.store import Clock, Store, wall_clock_ms
from node.vault import Vault

APP_NAME = "vrm-node"
HOME_ENV = "VRM_HOME"
KEY_FILE = "identity.json"
DB_FILE = "node.db"
CONFIG_FILE = "config.json"
CONFIG_FORMAT = "vrm-home"
CONFIG_VERSION = 1
ROLES = ("person", "vendor")
MAX_NAME = 200  # the offer body's limits (design: vendor {"handle" 1..64, "name" 1..200})
_HANDLE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")  # as node.records.HANDLE after its "@"


@dataclass(frozen=True)
class HomeInfo:
    """A node home as ``vrm id`` / ``vrm init`` report it (``dataclasses.asdict`` gives the JSON form)."""

    path: str
    role: str
    node_id: str
    public_key: str  # hex
    encrypted: bool  # the key (and the vault) are encrypted under a passphrase
    created_at: int
    schema_version: int  # at creation; the store upgrades itself on open
    imported_from: dict[str, Any] | None = None
    name: str = ""  # display name shown to peers ("Acme Air"); "" when none was given
    handle: str = ""  # without the '@' ("acme-air"); "" when none was given

    @property
    def key_path(self) -> Path:
        return Path(self.path) / KEY_FILE

    @property
    def replay_floor_path(self) -> Path:
        """Where the federation API persists its replay floor (federation/noncecache.py)."""
        return Path(self.path) / "replay.floor"

    @property
    def db_path(self) -> Path:
        return Path(self.path) / DB_FILE

    @property
    def config_path(self) -> Path:
        return Path(self.path) / CONFIG_FILE


def resolve_home(
    explicit: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Path:
    """The home to use: ``explicit`` (``--home``), else ``$VRM_HOME``, else the platform data directory."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser().absolute()
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser().absolute()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def check_name(name: object) -> str:
    """A node's display name, trimmed: "" (none) or 1..200 characters."""
    if not isinstance(name, str):
        raise ValidationError("name", "must be text")
    name = name.strip()
    if len(name) > MAX_NAME or any(c in name for c in "\n\r\t"):
        raise ValidationError("name", f"a name is one line of at most {MAX_NAME} characters")
    return name


def check_handle(handle: object) -> str:
    """A node's handle without its '@' ("@Acme-Air" → "acme-air"): "" (none) or 1..64 of a-z 0-9 _ . -."""
    if not isinstance(handle, str):
        raise ValidationError("handle", "must be text")
    text = handle.strip().lower().removeprefix("@")
    if text and not _HANDLE.fullmatch(text):
        raise ValidationError(
            "handle", f"{handle!r} is not a handle: a-z 0-9 _ . - (starting with a letter or digit), at most 63"
        )
    return text


def init_home(
    path: str | os.PathLike[str],
    passphrase: str | None,
    role: str = "person",
    *,
    clock: Clock = wall_clock_ms,
    imported_from: dict[str, Any] | None = None,
    name: str = "",
    handle: str = "",
    kdf: Argon2Params = OWASP_ARGON2,
    seed: bytes | None = None,
) -> HomeInfo:
    """Create a home with a new Ed25519 identity and an empty store.

    ``passphrase=None`` stores the key unencrypted (the caller should say so plainly). Raises HomeError
    if ``path`` is a file or a non-empty directory: an existing identity is never overwritten.
    ``name`` and ``handle`` (ValidationError when malformed) are how the node presents itself to peers.
    ``kdf`` is the passphrase's Argon2id cost (OWASP's by default; tests pass a cheaper one). ``seed``
    restores an existing identity (an import with an identity backup); None makes a new one.
    """
    if role not in ROLES:
        raise HomeError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    name, handle = check_name(name), check_handle(handle)
    if passphrase is not None:
        encode_passphrase(passphrase)  # refuse an empty one before anything is created
    home = Path(path).expanduser().absolute()
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        what = "a node home" if (home / KEY_FILE).exists() else "not empty"
        raise HomeError(f"{home} is {what}; init never overwrites it")
    # Built in a staging directory beside it and renamed into place: a failure at any step (the
    # store cannot be opened, the disk fills) leaves no half-made home, only what was there before.
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.init-", dir=home.parent))
    try:
        os.chmod(staging, 0o700)
        save_identity(staging / KEY_FILE, secrets.token_bytes(32) if seed is None else seed, passphrase, kdf=kdf)
        with Store(staging / DB_FILE, clock=clock) as store:
            schema_version = store.schema_version
        config: dict[str, Any] = {
            "format": CONFIG_FORMAT,
            "version": CONFIG_VERSION,
            "role": role,
            "created_at": clock(),
            "schema_version": schema_version,
        }
        if name:
            config["name"] = name
        if handle:
            config["handle"] = handle
        if imported_from is not None:
            config["imported_from"] = imported_from
        write_new_file(staging / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode("utf-8"))
        os.rename(staging, home)  # atomic; replaces an empty directory, refuses a non-empty one
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(home.parent)
    return load_home(home)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_home(path: str | os.PathLike[str]) -> HomeInfo:
    """Read a home's config and public identity (no passphrase needed); HomeError if it is not one."""
    home = Path(path).expanduser().absolute()
    if not (home / KEY_FILE).exists():
        raise HomeError(f"{home} is not a vrm home (no {KEY_FILE}); run `vrm init`")
    if not (home / CONFIG_FILE).exists():
        raise HomeError(f"{home} is incomplete (no {CONFIG_FILE}): an interrupted init")
    try:
        config = json.loads((home / CONFIG_FILE).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HomeError(f"{home / CONFIG_FILE} is unreadable: {exc}") from None
    if (
        not isinstance(config, dict)
        or config.get("format") != CONFIG_FORMAT
        or config.get("version") != CONFIG_VERSION
    ):
        raise HomeError(f"{home / CONFIG_FILE} is not a version {CONFIG_VERSION} vrm home config")
    if config.get("role") not in ROLES:
        raise HomeError(f"{home / CONFIG_FILE} names an unknown role {config.get('role')!r}")
    key = read_public(home / KEY_FILE)
    return HomeInfo(
        path=str(home),
        role=config["role"],
        node_id=key.node_id,
        public_key=key.public_key.hex(),
        encrypted=key.encrypted,
        created_at=int(config.get("created_at", 0)),
        schema_version=int(config.get("schema_version", 0)),
        imported_from=config.get("imported_from"),
        name=_text(config, "name"),
        handle=_text(config, "handle"),
    )


def _text(config: dict[str, Any], key: str) -> str:
    value = config.get(key, "")
    return value if isinstance(value, str) else ""


def set_profile(
    path: str | os.PathLike[str], *, name: str | None = None, handle: str | None = None
) -> HomeInfo:
    """Change the name and/or handle the node presents to peers (None keeps a value, "" clears it).

    config.json is replaced atomically (a temporary file renamed over it), so a crash keeps the old one.
    """
    info = load_home(path)
    config = json.loads(Path(info.config_path).read_text("utf-8"))
    for key, value in (("name", None if name is None else check_name(name)),
                       ("handle", None if handle is None else check_handle(handle))):  # fmt: skip
        if value is None:
            continue
        if value:
            config[key] = value
        else:
            config.pop(key, None)
    tmp = info.config_path.with_name(f".{CONFIG_FILE}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write((json.dumps(config, indent=2) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, info.config_path)
    finally:
        tmp.unlink(missing_ok=True)
    return load_home(path)


def is_home(path: str | os.PathLike[str]) -> bool:
    try:
        load_home(path)
    except VrmError:
        return False
    return True


def open_store(home: HomeInfo, *, clock: Clock = wall_clock_ms) -> Store:
    """The home's store, migrated to the current schema."""
    return Store(home.db_path, clock=clock)


def open_vault(
    home: HomeInfo, store: Store, passphrase: str | None, *, clock: Clock = wall_clock_ms
) -> Vault:
    """The home's vault; PassphraseError when the home is encrypted and the passphrase is wrong or missing."""
    return Vault(store, derive_vault_key(home.key_path, passphrase), clock=clock)
