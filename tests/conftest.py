"""Shared fixtures: both implementations of the message layer, fixed clocks, authors.

``backend`` runs a test once against the native core and once against the pure-Python reference;
``native`` and ``reference`` give both at once for differential tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `pytest` as well as `python -m pytest` from anywhere
    sys.path.insert(0, str(_ROOT))

BACKENDS = ("native", "reference")

from tests.vectors.loaders import NOW_MS  # noqa: E402

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# CI: the same budget, derandomized so a run is reproducible.
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
# A long local run: HYPOTHESIS_PROFILE=thorough
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))


def _get_backend(name: str):
    from node.backends import get_backend

    return get_backend(name)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    """Each backend in turn (the test id says which)."""
    return _get_backend(request.param)


@pytest.fixture(scope="session")
def native():
    return _get_backend("native")


@pytest.fixture(scope="session")
def reference():
    return _get_backend("reference")


@pytest.fixture(scope="session")
def now_ms() -> int:
    return NOW_MS


@pytest.fixture
def store(tmp_path):
    """An empty node store at the newest schema (modules may define their own)."""
    from node.store import Store

    with Store(tmp_path / "node.db") as s:
        yield s
