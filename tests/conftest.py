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


# -- vendor stores: the home's SQLite, or a fleet's PostgreSQL (fleet/) ------------------------------

VENDOR_ENGINES = ("sqlite", "postgresql")
# ``@vendor_engines`` (or ``pytestmark = vendor_engines``) runs a test once per vendor store engine;
# without it ``vendor_engine`` is SQLite.
vendor_engines = pytest.mark.parametrize("vendor_engine", VENDOR_ENGINES)


class PgDatabases:
    """One throwaway PostgreSQL cluster per test session (per xdist worker), started on first use.

    ``new()`` hands out a database at the newest fleet schema with no rows; ``release`` empties it
    (TRUNCATE, sequences restarted) for the next test. Creating a database costs checkpoints (seconds
    on a loaded machine), so a session creates only as many as one test uses at once."""

    TEMPLATE = "vrm"

    def __init__(self) -> None:
        self._cluster = None
        self._count = 0
        self._free: list[str] = []

    def _connect(self, name: str):
        import psycopg

        if self._cluster is None:
            from fleet.pgstore import PgStore
            from tests.pgcluster import PgCluster

            self._cluster = PgCluster(database=self.TEMPLATE).start()
            PgStore(self._cluster.url).close()  # the template at the newest schema
        return psycopg.connect(self._url(name), autocommit=True)

    def _url(self, name: str) -> str:
        assert self._cluster is not None
        return self._cluster.url.rsplit("/", 1)[0] + "/" + name

    def new(self) -> str:
        """The URL of a database at the newest fleet schema, empty of rows, for this test alone."""
        if self._free:
            return self._free.pop()
        self._count += 1
        name = f"t{os.getpid()}_{self._count}"
        with self._connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.TEMPLATE} STRATEGY FILE_COPY")
        return self._url(name)

    def release(self, url: str) -> None:
        """Empty the database for the next test (or drop it when something still holds it)."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        try:
            with self._connect(name) as conn:
                # DELETE, not TRUNCATE: a few rows are cheaper to delete than files to replace (and
                # fsync); replica mode skips the foreign keys and triggers while emptying.
                tables = [r[0] for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
                )]
                sequences = [r[0] for r in conn.execute("SELECT sequencename FROM pg_sequences")]
                with conn.transaction():
                    conn.execute("SET LOCAL lock_timeout = '2s'")
                    conn.execute("SET LOCAL session_replication_role = replica")
                    for table in tables:
                        conn.execute(f"DELETE FROM {table}")
                    for sequence in sequences:
                        conn.execute(f"ALTER SEQUENCE {sequence} RESTART")
        except psycopg.Error:
            with self._connect("postgres") as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        self._free.append(url)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None


@pytest.fixture(scope="session")
def pg_databases():
    databases = PgDatabases()
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def pg_url(pg_databases):
    """A fresh fleet database (migrated, no rows) on the session's cluster, dropped afterwards."""
    url = pg_databases.new()
    yield url
    pg_databases.release(url)


@pytest.fixture
def vendor_engine() -> str:
    return "sqlite"


@pytest.fixture
def open_vendor_store(vendor_engine, tmp_path, pg_databases):
    """``open_vendor_store(name, clock=...)``: a new, empty vendor store of the test's engine (each
    call a store of its own: a SQLite file, or a database of the session's PostgreSQL cluster)."""
    from node.clock import wall_clock_ms
    from node.store import Store

    opened: list = []
    urls: list[str] = []

    def open_store(name: str = "vendor", clock=wall_clock_ms):
        if vendor_engine == "sqlite":
            store = Store(tmp_path / f"{name}.db", clock=clock)
        else:
            from fleet.pgstore import PgStore

            urls.append(pg_databases.new())
            store = PgStore(urls[-1], clock=clock, max_size=4)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()
    for url in urls:
        pg_databases.release(url)


@pytest.fixture
def vendor_store(open_vendor_store):
    """An empty vendor store of the test's engine (see ``vendor_engines``)."""
    return open_vendor_store()


@pytest.fixture
def make_node(tmp_path, open_vendor_store):
    """Pipelines over real stores, passing items by hand (tests/pipelinenodes.py)."""
    from tests.pipelinenodes import pipeline_nodes

    with pipeline_nodes(tmp_path, open_vendor_store) as make:
        yield make


@pytest.fixture
async def fleet(nursery, tmp_path, pg_url):
    """A vendor fleet over a fresh database (tests/fleetnet.py): listeners started by the test, all
    stopped after it."""
    import trio

    from tests.fleetnet import Fleet

    fleet = Fleet(nursery, tmp_path, pg_url)
    yield fleet
    with trio.fail_after(30):
        await fleet.aclose()
