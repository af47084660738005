"""Which store a home uses: its own SQLite file (the default), or a fleet's PostgreSQL database.

The URL is node.toml's ``store.url`` (written by `vrm fleet init` and `vrm fleet join`, or `vrm
config set store.url`); an older home may carry it in config.json as ``"store"``. `vrm serve --store
URL` overrides both for one run. A home without either is unchanged.

``join_home`` makes a listener's home from the fleet's database: the vendor identity `vrm fleet init`
imported (the key file exactly as it was, still under its passphrase), so every listener signs as the
one vendor while each keeps its own admin.json and replay floor.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fleet import is_postgres_url
from node.errors import ConflictError, HomeError
from node.home import CONFIG_FILE, CONFIG_FORMAT, CONFIG_VERSION, KEY_FILE, HomeInfo, load_home
from node.clock import wall_clock_ms


def store_url(home: HomeInfo, override: str | None = None) -> str | None:
    """The fleet database URL for ``home`` (None: its SQLite store)."""
    url = override
    if url is None:
        url = _toml_url(home) or _json_url(home)
    if url is None or url == "":
        return None
    if not is_postgres_url(url):
        raise HomeError(f"store {url!r}: give a postgresql:// URL (or none for the home's SQLite store)")
    if home.role != "vendor":
        raise HomeError("only a vendor node runs on a fleet database; a person's node stays on SQLite")
    return url


def _toml_url(home: HomeInfo) -> str | None:
    from node.config import config_path, load

    if not config_path(home.path).exists():  # most homes: nothing to parse
        return None
    return load(home.path).get("store.url")


def _json_url(home: HomeInfo) -> str | None:
    try:
        return json.loads(Path(home.config_path).read_text("utf-8")).get("store")
    except (OSError, ValueError, AttributeError):
        return None


def open_fleet_store(url: str, *, migrate: bool = True, timeout: float = 5.0) -> Any:
    """The fleet's PgStore, after one connection attempt of at most ``timeout`` seconds: an unreachable
    database is a StoreError naming it (password hidden) at once, not after the pool's 30 s wait."""
    import psycopg

    from fleet.pgstore import PgStore, _redact
    from node.errors import StoreError

    try:
        psycopg.connect(url, connect_timeout=max(1, round(timeout))).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot reach the fleet database {_redact(url)}: {reason}") from None
    return PgStore(url, migrate=migrate, min_size=1, max_size=4)


def set_store_url(home: HomeInfo, url: str | None) -> None:
    """Record (or with None, remove) the fleet database as node.toml's ``store.url``."""
    from node.config import load, save

    config = load(home.path)
    if url:
        config.set("store.url", url)
    else:
        config.unset("store.url")
    save(home.path, config)


def fleet_identity_row(home: HomeInfo) -> dict[str, Any]:
    """The fleet_identity row for ``home`` (a vendor's): its public key, node id, profile and key file."""
    if home.role != "vendor":
        raise HomeError(f"{home.path} is a {home.role} node; a fleet is one vendor's listeners (vrm init --vendor)")
    return {
        "public_key": home.public_key,
        "node_id": home.node_id,
        "role": home.role,
        "name": home.name,
        "handle": home.handle,
        "key_file": Path(home.key_path).read_bytes(),
        "created_at": wall_clock_ms(),
    }


def import_identity(pg: Any, home: HomeInfo) -> bool:
    """Store ``home``'s identity as the fleet's (True), or find it already there (False).
    ConflictError when the database already belongs to another vendor."""
    row = fleet_identity_row(home)
    with pg.connection() as conn:
        with conn.transaction():
            conn.execute("LOCK TABLE fleet_identity IN EXCLUSIVE MODE")  # two inits race: one row wins
            existing = conn.execute("SELECT public_key, node_id FROM fleet_identity").fetchone()
            if existing is not None:
                if existing["public_key"] != row["public_key"]:
                    raise ConflictError(
                        f"this database is the fleet of vendor {existing['node_id']}, not of {home.node_id}"
                    )
                # the profile (name, handle) follows the home that ran init last
                conn.execute(
                    "UPDATE fleet_identity SET name = %s, handle = %s", (row["name"], row["handle"])
                )
                return False
            conn.execute(
                "INSERT INTO fleet_identity (public_key, node_id, role, name, handle, key_file, created_at) "
                "VALUES (%(public_key)s, %(node_id)s, %(role)s, %(name)s, %(handle)s, %(key_file)s, %(created_at)s)",
                row,
            )
            return True


def read_identity(pg: Any) -> dict[str, Any]:
    with pg.connection() as conn:
        row = conn.execute("SELECT * FROM fleet_identity").fetchone()
    if row is None:
        raise HomeError("this fleet database has no vendor identity yet: run `vrm fleet init --store URL` first")
    return row


def join_home(path: str | os.PathLike[str], pg: Any, url: str) -> HomeInfo:
    """A new home at ``path`` for one more listener: the fleet's identity and ``store.url = url``.
    Refuses a non-empty directory (never overwrites a home), like `vrm init`."""
    from node.config import Config, save

    row = read_identity(pg)
    home = Path(path).expanduser().absolute()
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise HomeError(f"{home} is not empty; join never overwrites it")
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.join-", dir=home.parent))
    try:
        os.chmod(staging, 0o700)
        _write_private(staging / KEY_FILE, bytes(row["key_file"]))
        config: dict[str, Any] = {
            "format": CONFIG_FORMAT,
            "version": CONFIG_VERSION,
            "role": "vendor",
            "created_at": wall_clock_ms(),
            "schema_version": 0,  # the home's own SQLite store is not used by a listener
        }
        for key in ("name", "handle"):
            if row[key]:
                config[key] = row[key]
        _write_private(staging / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode("utf-8"))
        settings = Config()
        settings.set("store.url", url)
        save(staging, settings)
        joined = load_home(staging)
        if joined.public_key != row["public_key"]:
            raise HomeError("the fleet's key file does not hold the fleet's public key (damaged identity row)")
        os.rename(staging, home)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_home(home)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
