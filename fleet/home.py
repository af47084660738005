"""Which store a home uses: its own SQLite file (the default), or a fleet's PostgreSQL database.

The URL lives in the home's config.json as ``"store"`` (written by `vrm fleet init` / `vrm fleet
join`); `vrm serve --store URL` overrides it for one run. A home without it is unchanged.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from fleet import is_postgres_url
from node.errors import HomeError
from node.home import CONFIG_FILE, HomeInfo


def store_url(home: HomeInfo, override: str | None = None) -> str | None:
    """The fleet database URL for ``home`` (None: its SQLite store)."""
    url = override
    if url is None:
        try:
            url = json.loads(Path(home.config_path).read_text("utf-8")).get("store")
        except (OSError, ValueError):
            url = None
    if url is None or url == "":
        return None
    if not is_postgres_url(url):
        raise HomeError(f"store {url!r}: give a postgresql:// URL (or none for the home's SQLite store)")
    if home.role != "vendor":
        raise HomeError("only a vendor node runs on a fleet database; a person's node stays on SQLite")
    return url


def set_store_url(home: HomeInfo, url: str | None) -> None:
    """Record (or with None, remove) the fleet database in config.json, replaced atomically."""
    path = Path(home.config_path)
    config = json.loads(path.read_text("utf-8"))
    if url:
        config["store"] = url
    else:
        config.pop("store", None)
    tmp = path.with_name(f".{CONFIG_FILE}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write((json.dumps(config, indent=2) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
