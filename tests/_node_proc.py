"""A node in its own process, for tests that measure it (RSS): ``python -m tests._node_proc HOME LIMITS``.

Creates the home if needed, serves on 127.0.0.1 (port 0) with the request limits given as JSON
(``federation.limits.Limits`` fields), prints ``url`` once listening and runs until SIGTERM.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from federation.limits import Limits
from app.runtime import serve_forever
from node.home import init_home, is_home, load_home
from node.keystore import load_identity


def main(path: str, limits: str) -> None:
    home = load_home(path) if is_home(path) else init_home(Path(path), None, "vendor", name="Measured", handle="measured")
    identity = load_identity(home.key_path, None)
    options = {"app_options": {"limits": Limits(**json.loads(limits))}, "pull_interval": 3600.0}
    trio.run(lambda: serve_forever(home, identity, on_ready=lambda runtime: print(runtime.url, flush=True), **options))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
