"""A fleet listener in its own process with test options: ``python -m tests._fleet_proc HOME URL JSON``.

What `vrm serve --store URL` runs (``serve_forever``), with NodeRuntime options `vrm serve` has no flag
for (a short ``request_timeout``, hence a short claim lease); prints ``federation URL`` and ``admin
URL`` once listening, as `vrm serve` does, and runs until SIGTERM or SIGKILL.
"""

from __future__ import annotations

import json
import sys

import trio

from app.runtime import serve_forever
from node.home import load_home
from node.keystore import load_identity


def main(path: str, url: str, options: str) -> None:
    home = load_home(path)

    def ready(runtime) -> None:
        print(f"federation {runtime.url}\nadmin {runtime.admin_url}", flush=True)

    trio.run(
        lambda: serve_forever(
            home, load_identity(home.key_path, None), store=url, on_ready=ready, pull_interval=3600.0, **json.loads(options)
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
