"""The federation's `vrm` commands: init with a name and handle, the vendor-only commands, wrong
arguments and their exit codes, and the whole story (subscribe, peers add, intent, lead, offer, accept)
driven through two real `vrm serve` daemons and their admin APIs, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import Vrm
from node.identity import Identity
from node.nodeid import encode_node_id

ROOT = Path(__file__).resolve().parent.parent
VRM = Path(sys.executable).with_name("vrm")
STARTUP_S = 30.0  # generous: two cores shared with the rest of the suite
WAIT_S = 20.0


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fed-templates")
    Vrm(root / "alice")("init", "--no-passphrase", "--name", "Alice")
    Vrm(root / "acme")("init", "--vendor", "--no-passphrase", "--name", "Acme Air")
    return {"alice": root / "alice", "acme": root / "acme"}


@pytest.fixture
def alice(templates, tmp_path) -> Vrm:
    shutil.copytree(templates["alice"], tmp_path / "alice")
    return Vrm(tmp_path / "alice")


@pytest.fixture
def acme(templates, tmp_path) -> Vrm:
    shutil.copytree(templates["acme"], tmp_path / "acme")
    return Vrm(tmp_path / "acme")


def some_node_id() -> str:
    return encode_node_id(Identity.generate().public_key)


# -- init, id, profile ------------------------------------------------------------------------------


def test_a_vendor_is_initialised_with_a_name_and_a_derived_handle(tmp_path):
    shop = Vrm(tmp_path / "shop")
    out = shop("init", "--vendor", "--no-passphrase", "--name", "Blue Bikes").stdout
    assert "shown to peers as: Blue Bikes @blue-bikes" in out
    ident = shop.json("id")
    assert (ident["role"], ident["name"], ident["handle"]) == ("vendor", "Blue Bikes", "blue-bikes")
    assert "@blue-bikes" in shop("id").stdout

    other = Vrm(tmp_path / "other")
    other("init", "--role", "vendor", "--no-passphrase", "--name", "Corner Cafe", "--handle", "@Cafe")
    assert (other.json("id")["role"], other.json("id")["handle"]) == ("vendor", "cafe")


def test_init_refuses_contradictions_and_bad_values_and_creates_nothing(tmp_path):
    home = Vrm(tmp_path / "x")
    home("init", "--role", "admin", "--no-passphrase", code=2)
    home("init", "--vendor", "--role", "person", "--no-passphrase", code=2)
    assert "handle" in home("init", "--vendor", "--no-passphrase", "--handle", "no spaces", code=6).stderr
    home("init", "--vendor", "--no-passphrase", "--name", "x" * 201, code=6)
    assert not (tmp_path / "x").exists()


def test_a_vendor_without_a_handle_is_told_how_to_set_one(tmp_path):
    shop = Vrm(tmp_path / "shop")
    assert "vrm profile" in shop("init", "--vendor", "--no-passphrase").stderr
    shop("profile", code=2)
    assert "Acme Air @acme" in shop("profile", "--name", "Acme Air", "--handle", "acme").stdout
    assert (shop.json("id")["name"], shop.json("id")["handle"]) == ("Acme Air", "acme")
    shop("profile", "--handle", "bad handle", code=6)
    assert shop.json("id")["handle"] == "acme"


# -- without a daemon: the ops run against the store --------------------------------------------------


def test_subscriptions_without_a_daemon(acme):
    assert "subscription 1" in acme("subscribe", "?flight from:SFO").stdout
    sub = acme.json("subscribe", "?bike near:9q8")
    assert sub["id"] == 2 and sub["text"] == "?bike near:9q8"
    assert [s["id"] for s in acme.json("subscriptions", "list")] == [1, 2]
    assert "?flight from:SFO" in acme("subscriptions", "list").stdout
    assert "removed subscription 1" in acme("subscriptions", "remove", "1").stdout
    assert [s["id"] for s in acme.json("subscriptions", "list")] == [2]
    acme("subscriptions", "remove", "1", code=3)
    acme("subscriptions", "remove", "one", code=2)
    acme("subscribe", "just words, no token", code=6)
    assert [s["id"] for s in acme.json("subscriptions", "list")] == [2]


def test_vendor_commands_refuse_a_person_node_and_person_commands_a_vendor(alice, acme):
    for args in (
        ("subscribe", "?flight"),
        ("subscriptions", "list"),
        ("subscriptions", "remove", "1"),
        ("leads", "list"),
        ("leads", "show", "1"),
        ("offer", "1", "--price", "349USD", "--text", "a seat"),
    ):
        result = alice(*args, code=6)
        assert "vendor nodes" in result.stderr and "person node" in result.stderr, args
    assert "person nodes" in acme("offers", "accept", "abcdef", code=6).stderr
    assert "person nodes" in acme("offers", "decline", "abcdef", code=6).stderr


def test_wrong_arguments_get_a_clear_error_and_exit_code(alice, acme):
    acme("subscribe", "?flight")
    assert "price" in acme("offer", "1", "--price", "349", "--text", "seat", code=6).stderr
    assert "expires" in acme("offer", "1", "--price", "349USD", "--text", "seat", "--expires", "soon", code=6).stderr
    acme("offer", "1", "--text", "seat", code=2)  # --price is required
    acme("offer", "1", "--price", "349USD", "--text", "seat", code=3)  # no such lead
    acme("leads", "show", "7", code=3)
    assert acme.json("leads", "list") == [] and acme.json("leads", "list", "--all") == []
    assert acme.json("offers", "list") == [] and acme.json("offers", "list", "--all") == []
    alice("offers", "show", "abcdef", code=3)
    alice("offers", "accept", "abcdef", code=3)
    alice("peers", "add", "ftp://example.org", code=2)
    alice("peers", "show", some_node_id(), code=3)
    alice("peers", "remove", some_node_id(), code=3)
    assert "window" in alice("trends", "--window", "a while", code=6).stderr
    alice("block", "not-a-node-id", code=6)
    alice("serve", "--port", "70000", code=2)
    alice("serve", "--public-url", "node.example", code=2)


def test_block_and_unblock(alice):
    vendor = some_node_id()
    assert f"blocked {vendor}" in alice("block", vendor, "--note", "spam").stdout
    alice("block", vendor, code=4)
    [entry] = alice.json("blocked")
    assert (entry["node_id"], entry["note"]) == (vendor, "spam")
    assert "spam" in alice("blocked").stdout
    assert f"unblocked {vendor}" in alice("unblock", vendor).stdout
    alice("unblock", vendor, code=3)
    assert alice.json("blocked") == []


def test_lists_on_a_fresh_node(alice):
    assert alice.json("peers", "list") == []
    assert "vrm peers add" in alice("peers", "list").stderr
    assert alice.json("trends") == []
    assert alice.json("offers", "list") == []
    assert alice.json("sync") == {"peers": 0, "reached": 0, "received": 0, "fetched": 0}


def test_sync_fails_when_no_peer_could_be_reached(alice):
    from node.identity import Identity
    from node.peers import Peers
    from node.store import Store

    with Store(next(alice.home.glob("*.db"))) as store:
        Peers(store).add(public_key=Identity.generate().public_key, url="http://127.0.0.1:9", role="vendor", name="")
    result = alice("sync", code=1)
    assert "no peer could be reached" in result.stderr
    assert json.loads(alice("sync", "--json", code=1).stdout)["reached"] == 0


# -- real daemons -------------------------------------------------------------------------------------


@dataclass
class Daemon:
    process: subprocess.Popen[str]
    home: Path
    url: str
    admin_url: str
    node_id: str


def start_daemon(home: Path, passphrase: str | None = None) -> Daemon:
    """`vrm serve --port 0` in a process (given the passphrase of an encrypted home); returns once it
    printed where it listens."""
    env = {**os.environ, "VRM_HOME": str(home)}
    env.pop("VRM_PASSPHRASE", None)
    if passphrase is not None:
        env["VRM_PASSPHRASE"] = passphrase
    process = subprocess.Popen(
        [str(VRM), "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    lines: dict[str, str] = {}
    deadline = time.monotonic() + STARTUP_S
    assert process.stdout is not None
    while "admin" not in lines:
        line = process.stdout.readline()
        if not line:
            process.kill()
            raise AssertionError(f"vrm serve ended before listening: {process.communicate()[1]}")
        word, _, rest = line.strip().partition(" ")
        lines[word] = rest
        assert time.monotonic() < deadline, "vrm serve did not start in time"
    node_id = lines.get("person", lines.get("vendor", "")).removeprefix("node ")
    return Daemon(process, home, lines["federation"], lines["admin"], node_id)


def stop_daemon(daemon: Daemon) -> tuple[int, str]:
    if daemon.process.poll() is None:
        daemon.process.send_signal(signal.SIGTERM)
    try:
        _, err = daemon.process.communicate(timeout=STARTUP_S)
    except subprocess.TimeoutExpired:
        daemon.process.kill()
        _, err = daemon.process.communicate()
        raise AssertionError(f"vrm serve ignored SIGTERM: {err}") from None
    return daemon.process.returncode, err


@pytest.fixture
def daemons(alice, acme) -> Iterator[Callable[[Vrm], Daemon]]:
    started: list[Daemon] = []

    def start(vrm: Vrm) -> Daemon:
        started.append(start_daemon(vrm.home))
        return started[-1]

    yield start
    for daemon in started:
        stop_daemon(daemon)


def eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_serve_answers_the_cli_and_stops_cleanly_on_sigterm(alice, acme, daemons):
    vendor = daemons(acme)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", vendor.url) and vendor.url.split(":")[-1] != "0"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", vendor.admin_url)
    assert vendor.node_id == acme.json("id")["node_id"]
    admin = json.loads((acme.home / "admin.json").read_text())
    assert admin["url"] == vendor.admin_url and admin["pid"] == vendor.process.pid

    # Through the admin API: the daemon runs the op (no passphrase here, none needed).
    acme("subscribe", "?flight")
    person = daemons(alice)
    added = alice.json("peers", "add", vendor.url, "--id", vendor.node_id)
    assert (added["node_id"], added["role"], added["name"], added["url"]) == (
        vendor.node_id, "vendor", "Acme Air", vendor.url,
    )  # fmt: skip
    alice("peers", "add", vendor.url, code=4)  # already a peer
    [peer] = alice.json("peers", "list")
    assert peer["last_contact_at"] is not None and peer["failures"] == 0
    assert alice.json("peers", "show", vendor.node_id)["role"] == "vendor"

    # The vendor learnt the person's URL from the hello that peers add sent.
    [announced] = eventually(lambda: acme.json("peers", "list"), "the person's hello")
    assert (announced["node_id"], announced["url"], announced["source"]) == (person.node_id, person.url, "announced")

    intent = alice.json("intent", "?flight SFO->JFK max:400USD", "--expires", "1d")
    [lead] = eventually(lambda: acme.json("leads", "list"), "the lead at the vendor")
    assert lead["intent_id"] == intent["id"] and lead["subscription_ids"] == [1]
    assert "?flight" in acme("leads", "show", str(lead["id"])).stdout
    assert {r["token"] for r in acme.json("trends")} == {"flight"}

    made = acme.json("offer", str(lead["id"]), "--price", "349USD", "--text", "SFO->JFK Dec 18, seat 12A")
    assert (made["price_minor"], made["currency"], made["direction"]) == (34900, "USD", "sent")
    [offer] = eventually(lambda: alice.json("offers", "list"), "the offer at the person")
    assert (offer["id"], offer["vendor_handle"], offer["status"]) == (made["id"], "acme-air", "open")
    assert "349.00 USD" in alice("offers", "list").stdout

    out = alice("offers", "accept", offer["id"][:8]).stdout
    assert "accepted offer" in out and "@acme-air" in out and "closed (fulfilled)" in out
    assert alice.json("offers", "show", offer["id"])["status"] == "accepted"
    alice("offers", "accept", offer["id"], code=4)  # decided already
    shown = alice.json("vendors", "show", "acme-air")
    assert shown["vendor"]["node_id"] == vendor.node_id
    assert "purchase" in [e["kind"] for e in shown["timeline"]]
    eventually(
        lambda: acme.json("offers", "list", "--all")[0]["status"] == "accepted", "the acceptance at the vendor"
    )

    # accepting closed the intent: the signed withdrawal (fulfilled) reached the vendor, whose lead is closed
    eventually(lambda: acme.json("leads", "list") == [], "the withdrawal at the vendor")
    assert [lead["status"] for lead in acme.json("leads", "list", "--all")] == ["closed"]
    alice("intents", "withdraw", intent["id"], code=4)  # already withdrawn, by the acceptance
    [agreement] = alice.json("agreements", "list")
    assert eventually(lambda: acme.json("agreements", "list"), "the agreement at the vendor") == [agreement]

    for daemon, vrm in ((person, alice), (vendor, acme)):
        code, err = stop_daemon(daemon)
        assert code == 0, err
        assert "Traceback" not in err
        assert not (vrm.home / "admin.json").exists()
    # With the daemon gone the CLI works on the store again.
    assert alice.json("peers", "list")[0]["node_id"] == vendor.node_id


def test_peers_add_without_a_daemon_reaches_a_running_node(alice, acme, daemons):
    vendor = daemons(acme)
    alice("peers", "add", vendor.url, "--id", some_node_id(), code=4)  # not the node we expected
    assert alice.json("peers", "list") == []
    peer = alice.json("peers", "add", vendor.url)
    assert peer["node_id"] == vendor.node_id
    assert "removed peer" in alice("peers", "remove", vendor.node_id).stdout
    assert alice.json("peers", "list") == []

    # A node serving on every interface faces the internet: a name resolving to loopback is not dialled
    # (it could have been public a moment ago), unless private peers are allowed; a literal address is
    # the operator's own choice.
    alice("config", "set", "server.host", "0.0.0.0")
    by_name = vendor.url.replace("127.0.0.1", "localhost")
    refused = alice("peers", "add", by_name, code=4)
    assert "refused to connect to localhost" in refused.stderr and "allow_private_peers" in refused.stderr
    assert alice.json("peers", "list") == []
    assert alice.json("peers", "add", vendor.url)["node_id"] == vendor.node_id


# -- the README's federation walkthrough -------------------------------------------------------------


def walkthrough(title: str) -> list[tuple[str, int]]:
    """The commands of a README section, in order, each with the exit code its comment announces
    ("(exit 7)"), else 0."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split(f"## Walkthrough: {title}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            if line.startswith("vrm ") or "| vrm " in line:
                command, _, comment = line.partition(" #")
                code = re.search(r"\(exit (\d)\)", comment)
                commands.append((command.strip(), int(code[1]) if code else 0))
    return commands


def test_readme_federation_and_consented_access_walkthroughs_run_with_two_daemons(tmp_path):
    """Every command of both sections, in order, as installed; the daemons on free ports instead of
    8470/8471, and real ids for the README's stand-ins (an offer, a request, two grants)."""
    env = {
        **os.environ,
        "PATH": f"{VRM.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "VRM_HOME": str(tmp_path / "alice-node"),
    }
    env.pop("VRM_PASSPHRASE", None)
    Vrm(tmp_path / "alice-node")("init", "--no-passphrase")  # the first walkthrough's node
    federation, access = walkthrough("the federation"), walkthrough("consented access")
    assert len(federation) >= 12 and sum(" serve " in c for c, _ in federation) == 2
    assert len(access) >= 15 and any(code == 7 for _, code in access)
    urls: dict[str, str] = {}
    daemons: list[Daemon] = []
    out: dict[str, str] = {}

    def run(line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=60)

    def listed(command: str) -> Any:
        return json.loads(run(command).stdout or "[]")

    def grant(fields: list[str]) -> str:
        found = eventually(
            lambda: [g for g in listed("vrm grants list --all --json") if g["fields"] == fields], f"a grant of {fields}"
        )
        return found[0]["id"][:8]

    # The README's stand-ins for ids, and how to find the real one.
    stand_ins: dict[str, Callable[[], str]] = {
        # the one offer, accepted or not yet (the access walkthrough names it after Alice accepted it)
        "5f1c2a": lambda: eventually(lambda: listed("vrm offers list --all --json"), "the offer")[0]["id"][:8],
        # the first request (a later one serves the offer)
        "7d3e9b": lambda: eventually(
            lambda: [r for r in listed("vrm grants pending --json") if r["purpose"] == "ship order 123"], "the request"
        )[0]["id"][:8],
        "c41a08": lambda: grant(["shipping_address"]),
        "e9b207": lambda: grant(["email"]),
    }
    try:
        for line, code in federation + access:
            line = line.replace("/tmp/", f"{tmp_path}/")
            for readme_url, real in urls.items():
                line = line.replace(readme_url, real)
            if " serve " in line:
                port = re.search(r"--port (\d+)", line)[1]
                home = re.search(r"--home (\S+)", line)
                daemon = start_daemon(Path(home[1] if home else env["VRM_HOME"]))
                daemons.append(daemon)
                urls[f"http://127.0.0.1:{port}"] = daemon.url
                continue
            for stand_in, real_id in stand_ins.items():
                if stand_in in line:
                    line = line.replace(stand_in, real_id())
            # Gossip travels in the background: a command about what has not arrived yet is retried.
            result = eventually(lambda: (r := run(line)).returncode == code and r, line)
            out[line] = result.stdout + result.stderr
        shown = next(v for k, v in out.items() if k.startswith("vrm vendors show bay-air"))
        assert "Bay Air" in shown and "bought ?flight SFO->JFK" in shown
        vendor_offers = next(v for k, v in out.items() if k.endswith("offers list --all"))
        assert "accepted" in vendor_offers
        assert "221B Baker Street" in next(v for k, v in out.items() if "access fetch" in k and "show-values" in k)
        assert "budget_spent" in next(v for k, v in out.items() if "access fetch" in k and "budget_spent" in v)
        assert "verified" in next(v for k, v in out.items() if k.startswith("vrm grants verify-log"))
        spent = stand_ins["c41a08"]()
        eventually(lambda: "confirmed" in run(f"vrm grants show {spent}").stdout, "the deletion statement")
        offer_id = listed("vrm offers list --all --json")[0]["id"]
        served = eventually(  # the request that names the offer reached Alice, saying what it serves
            lambda: [r for r in listed("vrm grants pending --json") if r["purpose"] == "ship the SFO->JFK ticket"],
            "the request serving the offer",
        )
        assert [r["for"] for r in served] == [offer_id]
        receipts = json.loads((tmp_path / "alice-receipts.json").read_text())["receipts"]
        assert [r["outcome"] for r in receipts][:2] == ["ok", "budget_spent"]
    finally:
        for daemon in daemons:
            code, err = stop_daemon(daemon)
            assert code == 0, err


def test_serve_on_a_port_in_use_names_the_port(alice):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = alice("serve", "--port", str(port), code=1)
    assert f"address already in use: port {port} on 127.0.0.1" in result.stderr
