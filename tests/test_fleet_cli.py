"""`vrm fleet init/join/status` and the vendor's everyday commands on a fleet's PostgreSQL database,
against a real throwaway cluster, with listeners as real `vrm serve` processes (fleet/launch.py)."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.clirun import Vrm
from fleet.cluster import free_port
from fleet.launch import start_node
from fleet.pgschema import PG_MIGRATIONS
from fleet.pgstore import PgStore
from node.store import Store
from tests.pgcluster import PgCluster

WAIT_S = 30.0
LATEST = len(PG_MIGRATIONS)  # the schema version this program migrates to


def eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster():
    with PgCluster() as pg:
        yield pg


@pytest.fixture
def db_url(cluster) -> str:
    """A database of its own on the module's cluster, for each test."""
    name = f"t_{secrets.token_hex(4)}"
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fleet-templates")
    Vrm(root / "acme")("init", "--vendor", "--no-passphrase", "--name", "Acme Air")
    Vrm(root / "zeta")("init", "--vendor", "--no-passphrase", "--name", "Zeta Rail")
    Vrm(root / "alice")("init", "--no-passphrase", "--name", "Alice")
    return {"acme": root / "acme", "zeta": root / "zeta", "alice": root / "alice"}


@pytest.fixture
def homes(templates, tmp_path) -> Callable[[str], Vrm]:
    def copy(name: str) -> Vrm:
        shutil.copytree(templates[name], tmp_path / name)
        return Vrm(tmp_path / name)

    return copy


def test_init_creates_the_schema_imports_the_identity_and_changes_nothing_when_run_again(homes, db_url):
    acme = homes("acme")
    first = acme.json("fleet", "init", "--store", db_url)
    assert (first["schema_version_before"], first["schema_version"], first["identity_imported"]) == (0, LATEST, True)
    assert first["node_id"] == acme.json("id")["node_id"] and first["schema_current"] is True
    assert acme("config", "get", "store.url").stdout.strip() == db_url  # the home now works on the fleet

    again = acme.json("fleet", "init", "--store", db_url)
    assert (again["schema_version_before"], again["schema_version"], again["identity_imported"]) == (LATEST, LATEST, False)
    with PgStore(db_url, migrate=False) as pg:
        [row] = pg.query("SELECT node_id, role, name, handle, key_file FROM fleet_identity")
        assert (row["node_id"], row["role"], row["name"], row["handle"]) == (first["node_id"], "vendor", "Acme Air", "acme-air")
        assert bytes(row["key_file"]) == (acme.home / "identity.json").read_bytes()
        assert pg.query("SELECT count(*) AS n FROM schema_migrations")[0]["n"] == LATEST
    out = acme("fleet", "init", "--store", db_url).stdout
    assert f"already at version {LATEST}" in out and "already the fleet's" in out


def test_init_refuses_a_person_home_another_vendors_fleet_and_a_database_that_does_not_answer(homes, db_url):
    alice, acme, zeta = homes("alice"), homes("acme"), homes("zeta")
    refused = alice("fleet", "init", "--store", db_url, code=6)
    assert "vendor" in refused.stderr
    with PgStore(db_url, migrate=False) as pg:  # nothing was created for the person
        assert "schema_migrations" not in pg.table_names()

    acme("fleet", "init", "--store", db_url)
    taken = zeta("fleet", "init", "--store", db_url, code=4)
    assert acme.json("id")["node_id"] in taken.stderr  # names whose fleet it is
    assert zeta("config", "get", "store.url").stdout.strip() == ""  # left on its SQLite store

    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/vrm"
    started = time.monotonic()
    down = zeta("fleet", "init", "--store", nowhere, code=1)
    assert "cannot reach the fleet database" in down.stderr and "Traceback" not in down.stderr
    assert time.monotonic() - started < 15  # a clear error at once, not a pool's long wait
    bad = zeta("fleet", "init", "--store", "mysql://db/vrm", code=2)
    assert "postgresql://" in bad.stderr


def test_join_makes_a_listener_home_that_is_the_same_vendor(homes, db_url, tmp_path):
    acme = homes("acme")
    acme("fleet", "init", "--store", db_url)
    listener = Vrm(tmp_path / "listener")
    joined = listener.json("fleet", "join", "--store", db_url)
    assert joined["node_id"] == acme.json("id")["node_id"] and joined["encrypted"] is False
    assert listener.json("id")["node_id"] == joined["node_id"]
    assert (listener.home / "identity.json").read_bytes() == (acme.home / "identity.json").read_bytes()
    assert listener("config", "get", "store.url").stdout.strip() == db_url
    listener("fleet", "join", "--store", db_url, code=1)  # never over an existing home

    empty = Vrm(tmp_path / "elsewhere")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM fleet_identity")
    assert "vrm fleet init" in empty("fleet", "join", "--store", db_url, code=1).stderr


def test_the_vendors_commands_work_on_the_fleet_database_with_a_listener_serving_it(homes, db_url, tmp_path):
    """subscribe, subscriptions list/remove, leads list/show, offer, offers list/show and fleet status,
    run from the vendor's home while the only `vrm serve` is a listener in another home."""
    acme, alice = homes("acme"), homes("alice")
    acme("fleet", "init", "--store", db_url)
    sub = acme.json("subscribe", "?flight")
    acme.json("subscribe", "?hotel")
    assert [s["text"] for s in acme.json("subscriptions", "list")] == ["?flight", "?hotel"]
    with PgStore(db_url, migrate=False) as pg:
        assert pg.count("subscriptions") == 2  # in PostgreSQL …
    if acme.home.joinpath("node.db").exists():  # … not in the home's own SQLite file
        with Store(acme.home / "node.db") as local:
            assert local.count("subscriptions") == 0

    Vrm(tmp_path / "l1")("fleet", "join", "--store", db_url)
    listener = start_node(tmp_path / "l1", args=("--allow-private-peers",))
    person = start_node(alice.home, args=("--allow-private-peers",))
    try:
        status = acme.json("fleet", "status")
        [seen] = [li for li in status["listeners"] if li["alive"]]
        assert seen["url"] == listener.url and status["subscriptions"] == 2

        alice("peers", "add", listener.url, "--id", acme.json("id")["node_id"])  # the fleet's one identity
        intent = alice.json("intent", "?flight SFO->JFK max:400USD", "--expires", "1d")
        [lead] = eventually(lambda: acme.json("leads", "list"), "the lead in the fleet database")
        assert lead["intent_id"] == intent["id"] and lead["subscription_ids"] == [sub["id"]]
        assert "?flight" in acme("leads", "show", str(lead["id"])).stdout

        made = acme.json("offer", str(lead["id"]), "--price", "349USD", "--text", "SFO->JFK Dec 18")
        assert (made["direction"], made["price_minor"]) == ("sent", 34900)
        [listed] = acme.json("offers", "list")
        assert listed["id"] == made["id"] and acme.json("offers", "show", made["id"][:12])["status"] == "open"
        # queued in the shared outbox by a command with no daemon: the listener delivers it
        [received] = eventually(lambda: alice.json("offers", "list"), "the offer at the person")
        assert received["id"] == made["id"]

        acme("subscriptions", "remove", str(sub["id"]))
        assert [s["text"] for s in acme.json("subscriptions", "list")] == ["?hotel"]
        status = acme.json("fleet", "status")
        assert status["leads"] == {"total": 1, "live": 1} and status["ingest"]["envelopes"] >= 1
        assert status["ingest"]["lag_max_ms"] is not None and status["outbox"]["dead"] == 0
    finally:
        assert person.stop() == 0
        assert listener.stop() == 0
    gone = acme.json("fleet", "status")["listeners"]
    assert [(li["url"], li["alive"]) for li in gone] == [(listener.url, False)]  # marked stopped at once
    assert "listeners alive: 0 of 1" in acme("fleet", "status").stdout


def test_status_needs_a_fleet(homes, db_url):
    acme = homes("acme")
    assert "store.url" in acme("fleet", "status", code=6).stderr  # a home on SQLite
    empty = acme("fleet", "status", "--store", db_url, code=1)  # a database never initialised
    assert "vrm fleet init" in empty.stderr


def test_the_fleet_demo_ends_with_one_lead_and_leaves_nothing_running():
    """`make demo-fleet` (python -m fleet.demo): its own cluster, two listeners, one lead, all stopped."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "fleet.demo"], capture_output=True, text=True, timeout=240,
                          cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "listener 2 answered: duplicate" in done.stdout
    assert "OK: the intent reached both listeners of one vendor and made exactly 1 lead." in done.stdout
    assert "listeners alive: 2 of 2" in done.stdout and "Traceback" not in done.stderr
    pids = [int(p) for p in _listener_pids(done.stdout)]
    assert len(pids) == 2
    for pid in pids:  # stopped, not left behind
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def _listener_pids(text: str) -> set[str]:
    import re

    return set(re.findall(r"listener\": \"[\w.-]+?-(\d+)-[0-9a-f]{6}\"", text))


def test_a_listener_killed_without_a_word_is_shown_gone_once_its_heartbeats_stop(homes, db_url, tmp_path):
    from cli.fleet_cmd import ALIVE_WITHIN_MS, fleet_status
    from node.clock import wall_clock_ms

    homes("acme")("fleet", "init", "--store", db_url)
    Vrm(tmp_path / "l1")("fleet", "join", "--store", db_url)
    listener = start_node(tmp_path / "l1")
    listener.process.kill()  # SIGKILL: no stopped mark, only the heartbeats end
    listener.stop()
    with PgStore(db_url, migrate=False) as pg:
        [row] = pg.query("SELECT beat_at, stopped_at FROM fleet_listeners")
        assert row["stopped_at"] is None
        [now] = fleet_status(pg, row["beat_at"] + ALIVE_WITHIN_MS)["listeners"]
        assert now["alive"] is True  # within the window it may just be slow
        [later] = fleet_status(pg, row["beat_at"] + ALIVE_WITHIN_MS + 1)["listeners"]
        assert later["alive"] is False and later["age_ms"] == ALIVE_WITHIN_MS + 1
        assert fleet_status(pg, wall_clock_ms() + 2 * 86_400_000)["listeners"] == []  # long gone: not listed
