"""`vrm access …` (vendor) and `vrm grants …` (person): role checks, wrong arguments and their exit
codes, the daemon-less paths on the store, and the whole consented-access story driven through two real
`vrm serve` daemons: request, narrower approval, fetch, refusal, revocation, the vendor's deletion
statement, the receipt log verified and exported, and a push grant following `vrm vault set`."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from cli.main import app
from node.home import init_home
from tests.test_cli_federation import Vrm, eventually, some_node_id, start_daemon, stop_daemon

ADDRESS = "SECRET 221B Baker Street, London"
EMAIL = "SECRET alice@example.org"
EXIT_REFUSED = 7
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    root = tmp_path_factory.mktemp("grants-templates")
    Vrm(root / "alice")("init", "--no-passphrase", "--name", "Alice")
    Vrm(root / "acme")("init", "--vendor", "--no-passphrase", "--name", "Acme Air")
    init_home(root / "locked", PASSPHRASE, role="person", name="Alice")
    return {"alice": root / "alice", "acme": root / "acme", "locked": root / "locked"}


@pytest.fixture
def alice(templates, tmp_path) -> Vrm:
    shutil.copytree(templates["alice"], tmp_path / "alice")
    return Vrm(tmp_path / "alice")


@pytest.fixture
def locked_alice(templates, tmp_path) -> Vrm:
    """Alice with a passphrase: her vault is encrypted; only her daemon is given the passphrase."""
    shutil.copytree(templates["locked"], tmp_path / "locked")
    return Vrm(tmp_path / "locked")


@pytest.fixture
def acme(templates, tmp_path) -> Vrm:
    shutil.copytree(templates["acme"], tmp_path / "acme")
    return Vrm(tmp_path / "acme")


# -- roles and arguments ---------------------------------------------------------------------------------


def test_vendor_commands_refuse_a_person_node_and_person_commands_a_vendor(alice, acme):
    for args in (
        ("access", "request", some_node_id(), "--fields", "email", "--purpose", "x"),
        ("access", "list"),
        ("access", "show", "abcdef"),
        ("access", "fetch", "abcdef"),
    ):
        err = alice(*args, code=6).stderr
        assert "vendor nodes" in err and "person node" in err, args
    for args in (
        ("grants", "pending"),
        ("grants", "approve", "abcdef"),
        ("grants", "deny", "abcdef"),
        ("grants", "create", some_node_id(), "--fields", "email", "--purpose", "x", "--for", "7d"),
        ("grants", "list"),
        ("grants", "show", "abcdef"),
        ("grants", "revoke", "abcdef"),
        ("grants", "log"),
        ("grants", "verify-log"),
        ("grants", "export-receipts"),
    ):
        err = acme(*args, code=6).stderr
        assert "person nodes" in err and "vendor node" in err, args


def test_wrong_arguments_get_a_clear_error_and_exit_code(alice, acme):
    person = alice.json("id")["node_id"]
    ask = ("access", "request", person, "--purpose", "ship order 123")
    acme(*ask, code=2)  # --fields is required
    acme("access", "request", person, "--fields", "email", code=2)  # --purpose is required
    assert "peer" in acme("access", "request", "alice", "--fields", "email", "--purpose", "x", code=6).stderr
    acme("access", "request", "7", "--fields", "email", "--purpose", "x", code=3)  # no peer 7
    assert "--fields" in acme(*ask, "--fields", " , ", code=2).stderr
    assert "for" in acme(*ask, "--fields", "email", "--for", "soon", code=6).stderr
    acme(*ask, "--fields", "email", "--for", "400d", code=6)
    assert "not both" in acme(*ask, "--fields", "email", "--intent", "a" * 64, "--offer", "b" * 64, code=2).stderr
    acme(*ask, "--fields", "Not A Field", code=6)
    acme(*ask, "--fields", "email", "--purpose", "", code=6)
    acme("access", "show", "abcdef", code=3)
    acme("access", "fetch", "abcdef", code=3)
    assert acme.json("access", "list") == [] and acme.json("access", "list", "--all") == []

    vendor = acme.json("id")["node_id"]
    give = ("grants", "create", vendor, "--fields", "email", "--purpose", "receipts")
    alice(*give, code=2)  # --for is required: a grant's length is always the person's choice
    alice(*give, "--for", "7d", "--uses", "0", code=2)
    alice(*give, "--for", "a while", code=6)
    alice("grants", "create", "no-such-vendor", "--fields", "email", "--purpose", "x", "--for", "7d", code=3)
    alice("vendors", "add", "Corner Cafe", "--handle", "cafe")
    no_node = alice("grants", "create", "cafe", "--fields", "email", "--purpose", "x", "--for", "7d", code=6)
    assert "node id" in no_node.stderr
    for command in ("approve", "deny"):
        alice("grants", command, "abcdef", code=3)
    alice("grants", "approve", "abcdef", "--for", "soon", code=6)
    alice("grants", "show", "abcdef", code=3)
    alice("grants", "revoke", "abcdef", code=3)
    alice("grants", "log", "--vendor", "nobody", code=3)
    assert alice.json("grants", "pending") == [] and alice.json("grants", "list", "--all") == []


# -- without a daemon: ops on the store -------------------------------------------------------------------


def test_a_grant_without_a_daemon_is_listed_shown_and_revoked(alice, acme):
    vendor = acme.json("id")["node_id"]
    out = alice("grants", "create", vendor, "--fields", "email,shipping_address", "--purpose", "deliveries",
                "--for", "7d", "--uses", "2", "--terms", "no-resale").stdout  # fmt: skip
    assert "granted" in out and "2 use(s)" in out
    [grant] = alice.json("grants", "list")
    assert (grant["fields"], grant["uses_allowed"], grant["uses_spent"], grant["status"]) == (
        ["email", "shipping_address"], 2, 0, "live",
    )  # fmt: skip
    assert grant["terms"] == ["no-resale"] and grant["direction"] == "given"
    shown = alice("grants", "show", grant["id"][:8]).stdout
    assert "0 of 2" in shown and "deliveries" in shown and "no-resale" in shown
    assert alice.json("grants", "show", grant["id"])["receipts"] == []

    assert "revoked" in alice("grants", "revoke", grant["id"][:8]).stdout
    alice("grants", "revoke", grant["id"], code=4)  # ended already
    assert alice.json("grants", "list") == []
    [ended] = alice.json("grants", "list", "--all")
    assert (ended["status"], ended["end_reason"]) == ("ended", "revoked")
    assert "not confirmed yet" in alice("grants", "show", grant["id"]).stdout

    assert "0 receipt" in alice("grants", "verify-log").stdout
    assert alice.json("grants", "log") == []


def test_a_request_without_a_daemon_waits_for_the_person(alice, acme):
    person = alice.json("id")["node_id"]
    made = acme.json("access", "request", person, "--fields", "shipping_address", "--purpose", "ship order 123")
    assert (made["fields"], made["status"], made["direction"]) == (["shipping_address"], "pending", "sent")
    assert made["duration_ms"] == 30 * 86_400_000
    assert "awaiting" in acme("access", "list").stderr


def test_export_receipts_writes_json_and_never_overwrites(alice, tmp_path):
    document = json.loads(alice("grants", "export-receipts").stdout)
    assert (document["format"], document["receipts"], document["person"]) == ("vrm-receipts", [], None)
    target = tmp_path / "receipts.json"
    assert "0 receipt(s)" in alice("grants", "export-receipts", "--out", str(target)).stdout
    written = json.loads(target.read_text())
    assert written.pop("exported_at") >= document.pop("exported_at") and written == document
    alice("grants", "export-receipts", "--out", str(target), code=4)
    alice("grants", "export-receipts", "--out", str(tmp_path / "missing" / "r.json"), code=3)


# -- two real daemons ---------------------------------------------------------------------------------------


@pytest.fixture
def daemons():
    started = []

    def start(vrm: Vrm, passphrase: str | None = None):
        started.append(start_daemon(vrm.home, passphrase))
        return started[-1]

    yield start
    for daemon in started:
        stop_daemon(daemon)


def test_the_consented_access_story_through_two_daemons(locked_alice, acme, daemons, tmp_path):
    """Alice's vault is encrypted: `vrm serve` derives the vault key from her passphrase to answer
    fetches and seal pushes; her commands go through the daemon and need no passphrase."""
    alice = locked_alice
    vendor, person = daemons(acme), daemons(alice, PASSPHRASE)
    alice("peers", "add", vendor.url)
    eventually(lambda: acme.json("peers", "list"), "the person's hello at the vendor")
    assert "(encrypted)" in alice("vault", "set", "shipping_address", ADDRESS).stdout  # via the daemon
    alice("vault", "set", "email", EMAIL)

    made = acme.json("access", "request", person.node_id, "--fields", "shipping_address,email",
                     "--purpose", "ship order 123", "--for", "30d")  # fmt: skip
    [pending] = eventually(lambda: alice.json("grants", "pending"), "the request at the person")
    assert (pending["id"], pending["fields"]) == (made["id"], ["email", "shipping_address"])
    assert "Acme Air" in alice("grants", "pending").stdout  # the vendor by its name, as a peer
    alice("grants", "approve", made["id"][:8], "--fields", "shipping_address,phone", code=6)  # wider: refused
    given = alice.json("grants", "approve", made["id"][:8], "--fields", "shipping_address", "--for", "7d",
                       "--uses", "2")  # fmt: skip
    assert (given["fields"], given["uses_allowed"]) == (["shipping_address"], 2)
    assert alice.json("grants", "pending") == []
    grant_id = given["id"]

    [held] = eventually(lambda: acme.json("access", "list"), "the grant at the vendor")
    assert (held["id"], held["fields"], held["direction"]) == (grant_id, ["shipping_address"], "received")
    fetched = acme("access", "fetch", grant_id[:8])
    assert "fetched shipping_address" in fetched.stdout and ADDRESS not in fetched.stdout
    shown = acme.json("access", "show", grant_id)
    assert shown["held"] == ["shipping_address"] and "values" not in shown
    assert ADDRESS not in acme("access", "show", grant_id).stdout
    assert ADDRESS in acme("access", "show", grant_id, "--show-values").stdout
    assert acme.json("access", "show", grant_id, "--show-values")["values"] == {"shipping_address": ADDRESS}
    again = acme.json("access", "fetch", grant_id, "--fields", "shipping_address", "--show-values")
    assert again == {"grant": grant_id, "fields": ["shipping_address"], "values": {"shipping_address": ADDRESS}}
    assert "budget_spent" in acme("access", "fetch", grant_id, code=EXIT_REFUSED).stderr

    # The spent budget ends the grant like a revocation: the vendor deletes and confirms, signed.
    ended = eventually(
        lambda: (g := alice.json("grants", "show", grant_id))["deletion_confirmed_at"] and g, "the deletion statement"
    )
    assert (ended["status"], ended["end_reason"]) == ("ended", "budget_spent")
    assert "confirmed" in alice("grants", "show", grant_id).stdout
    assert acme.json("access", "show", grant_id)["held"] == []
    assert acme.json("access", "list") == [] and len(acme.json("access", "list", "--all")) == 1
    alice("grants", "revoke", grant_id, code=4)  # ended already

    # A push grant: the person's node sends the field, and the change `vrm vault set` makes, itself.
    pushed = alice.json("grants", "create", vendor.node_id, "--fields", "email",
                        "--purpose", "order mail", "--for", "7d", "--push")  # fmt: skip
    values = lambda: acme.json("access", "show", pushed["id"], "--show-values").get("values")  # noqa: E731
    eventually(lambda: values() == {"email": EMAIL}, "the pushed email at the vendor")
    alice("vault", "set", "email", "SECRET new@example.org")
    eventually(lambda: values() == {"email": "SECRET new@example.org"}, "the pushed change at the vendor")

    # Revoked: every access is refused from then on; the vendor deletes and confirms.
    assert "revoked" in alice("grants", "revoke", pushed["id"][:8]).stdout
    assert "revoked" in acme("access", "fetch", pushed["id"], code=EXIT_REFUSED).stderr
    eventually(lambda: alice.json("grants", "show", pushed["id"])["deletion_confirmed_at"], "the second deletion")
    assert acme.json("access", "show", pushed["id"])["held"] == []

    assert "deleted email" in alice("vault", "delete", "email").stdout  # through the daemon too
    alice("vault", "delete", "email", code=3)
    assert [e["name"] for e in alice.json("vault", "list")] == ["shipping_address"]

    outcomes = ["ok", "ok", "budget_spent", "pushed", "pushed", "revoked"]
    log = alice.json("grants", "log")
    assert [r["outcome"] for r in log] == outcomes
    assert [r["seq"] for r in log] == [1, 2, 3, 4, 5, 6]
    assert alice.json("grants", "log", "--vendor", vendor.node_id) == log
    assert alice.json("grants", "log", "--vendor", some_node_id()) == []
    assert "budget_spent" in alice("grants", "log").stdout
    assert "verified: 6 receipt(s)" in alice("grants", "verify-log").stdout
    assert alice.json("grants", "verify-log")["ok"] is True
    target = tmp_path / "receipts.json"
    alice("grants", "export-receipts", "--out", str(target))
    assert [r["outcome"] for r in json.loads(target.read_text())["receipts"]] == outcomes

    for daemon in (person, vendor):
        code, err = stop_daemon(daemon)
        assert code == 0, err
        assert "SECRET" not in err and "Traceback" not in err
    # With the daemons gone, the reads work on the stores.
    assert alice.json("grants", "show", grant_id)["status"] == "ended"
    assert "verified" in alice("grants", "verify-log").stdout

    # An edited receipt is found and named; verify-log exits 1.
    with sqlite3.connect(alice.home / "node.db") as db:
        db.execute("UPDATE receipts SET purpose = 'nothing to see' WHERE seq = 2")
    broken = alice("grants", "verify-log", code=1).stdout
    assert "BROKEN at #2" in broken and "edited" in broken
    report = json.loads(alice("grants", "verify-log", "--json", code=1).stdout)
    assert (report["ok"], report["seq"], report["what"]) == (False, 2, "edited")


def test_a_push_grant_without_a_daemon_opens_an_encrypted_vault_with_the_passphrase(locked_alice, acme):
    vendor = acme.json("id")["node_id"]
    give = ("grants", "create", vendor, "--fields", "email", "--purpose", "order mail", "--for", "7d", "--push")
    locked_alice(*give, code=5)  # no passphrase, no daemon: nothing signed
    assert locked_alice.json("grants", "list") == []
    env = {"VRM_HOME": str(locked_alice.home), "VRM_PASSPHRASE": PASSPHRASE}
    assert locked_alice.runner.invoke(app, ["vault", "set", "email", EMAIL], env=env).exit_code == 0
    result = locked_alice.runner.invoke(app, [*give, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    made = json.loads(result.stdout)
    assert made["push"] is True and EMAIL not in result.stdout
    [listed] = locked_alice.json("grants", "list")  # reads need no passphrase
    assert listed["id"] == made["id"]
