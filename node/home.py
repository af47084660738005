"""The node's home directory: where it lives and what ``init`` puts there.

Layout::

    <home>/            mode 0700
      identity.json    the key file (node.keystore), mode 0600
      node.db          the store (node.store), plus SQLite's node.db-wal / node.db-shm
      config.json      {"format": "vrm-home", "version": 1, "role", "created_at", "schema_version",
                        "imported_from"?}

``config.json`` is written last, so a home without it is an interrupted ``init``: it is reported as
incomplete and, like any non-empty directory, never initialised over.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from node.errors import HomeError, VrmError
from node.keystore import derive_vault_key, encode_passphrase, read_public, save_identity, write_new_file
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

    @property
    def key_path(self) -> Path:
        return Path(self.path) / KEY_FILE

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


def init_home(
    path: str | os.PathLike[str],
    passphrase: str | None,
    role: str = "person",
    *,
    clock: Clock = wall_clock_ms,
    imported_from: dict[str, Any] | None = None,
) -> HomeInfo:
    """Create a home with a new Ed25519 identity and an empty store.

    ``passphrase=None`` stores the key unencrypted (the caller should say so plainly). Raises HomeError
    if ``path`` is a file or a non-empty directory: an existing identity is never overwritten.
    """
    if role not in ROLES:
        raise HomeError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if passphrase is not None:
        encode_passphrase(passphrase)  # refuse an empty one before anything is created
    home = Path(path).expanduser().absolute()
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        what = "a node home" if (home / KEY_FILE).exists() else "not empty"
        raise HomeError(f"{home} is {what}; init never overwrites it")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    save_identity(home / KEY_FILE, secrets.token_bytes(32), passphrase)
    with Store(home / DB_FILE, clock=clock) as store:
        schema_version = store.schema_version
    config: dict[str, Any] = {
        "format": CONFIG_FORMAT,
        "version": CONFIG_VERSION,
        "role": role,
        "created_at": clock(),
        "schema_version": schema_version,
    }
    if imported_from is not None:
        config["imported_from"] = imported_from
    write_new_file(home / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode("utf-8"))
    return load_home(home)


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
    )


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
