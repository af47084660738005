"""The `vrm` CLI driven in-process (typer's CliRunner): the personal-node scenario of issue 3, the
JSON outputs, the exit code of each error kind, init, completion and intents. The vault, export / import
and the passphrase are in tests/test_cli_vault.py, which shares this module's fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import clirun
from cli.money import format_money, parse_money
from node.errors import ValidationError

PASSPHRASE = "correct horse battery staple"
EMAIL = "alice@example.org"
ADDRESS = "221B Baker Street, London NW1 6XE"


class Vrm(clirun.Vrm):
    """The runner with this module's passphrase unless told otherwise."""

    def __init__(self, home: Path, passphrase: str | None = PASSPHRASE) -> None:
        super().__init__(home, passphrase)


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    """An encrypted and an unencrypted home, initialised once through the CLI (Argon2id is slow on purpose)."""
    root = tmp_path_factory.mktemp("cli-templates")
    Vrm(root / "encrypted")("init")
    Vrm(root / "plain", passphrase=None)("init", "--no-passphrase")
    return {"encrypted": root / "encrypted", "plain": root / "plain"}


@pytest.fixture
def vrm(templates, tmp_path) -> Vrm:
    shutil.copytree(templates["encrypted"], tmp_path / "home")
    return Vrm(tmp_path / "home")


@pytest.fixture
def plain(templates, tmp_path) -> Vrm:
    shutil.copytree(templates["plain"], tmp_path / "plain")
    return Vrm(tmp_path / "plain", passphrase=None)


def add_vendors(vrm: Vrm) -> None:
    vrm("vendors", "add", "Acme Air", "--website", "https://acme-air.example")
    vrm("vendors", "add", "Blue Bikes", "--engagement", "casual")
    vrm("vendors", "add", "Corner Cafe", "--handle", "cafe")


# -- the scenario of issue 3 ----------------------------------------------------------------------


def test_personal_node_scenario(tmp_path):
    vrm = Vrm(tmp_path / "alice")
    result = vrm("init")
    assert "node id: vrm1" in result.stdout
    ident = vrm.json("id")
    assert ident["encrypted"] is True and ident["path"] == str(tmp_path / "alice")
    assert ident["node_id"].startswith("vrm1") and len(ident["public_key"]) == 64

    add_vendors(vrm)
    vendors = vrm.json("vendors", "list")
    assert [(v["handle"], v["name"], v["engagement"]) for v in vendors] == [
        ("@acme-air", "Acme Air", "none"),
        ("@blue-bikes", "Blue Bikes", "casual"),
        ("@cafe", "Corner Cafe", "none"),
    ]

    assert (
        "349.00 USD" in vrm("purchases", "add", "acme-air", "SFO->JFK economy", "--price", "349.00USD").stdout
    )
    vrm("notes", "add", "acme-air", "Friendly crew, cramped seats", "--tag", "seats", "--tag", "#crew")
    vrm("rate", "acme-air", "4", "--comment", "good value")
    vrm("recommend", "blue-bikes", "--text", "sturdy")
    vrm("recommend", "cafe", "--no")
    assert "opened issue #1" in vrm("issues", "open", "acme-air", "Bag arrived two days late").stdout
    assert (
        "now open" in vrm("issues", "reply", "1", "Sorry! A voucher is on its way", "--from", "vendor").stdout
    )
    vrm("issues", "resolve", "1")
    vrm("engagement", "set", "acme-air", "engaged")

    [purchase] = vrm.json("purchases", "list", "@acme-air")
    assert (purchase["product"], purchase["price_minor"], purchase["currency"]) == (
        "SFO->JFK economy",
        34900,
        "USD",
    )
    [note] = vrm.json("notes", "list", "--tag", "crew")
    assert note["tags"] == ["seats", "crew"]
    [issue] = vrm.json("issues", "list", "--vendor", "acme-air")
    assert issue["state"] == "resolved" and issue["resolved_at"] is not None
    assert [(r["author"], r["text"]) for r in issue["replies"]] == [
        ("vendor", "Sorry! A voucher is on its way")
    ]
    assert vrm.json("issues", "show", "1") == issue
    assert vrm.json("issues", "list", "--open") == []

    # Literal by default, so a handle with a hyphen is a search, not FTS5 syntax.
    hits = vrm.json("search", "acme-air")
    assert {(h["kind"], h["vendor_handle"]) for h in hits} == {("vendor", "@acme-air")}
    hits = vrm.json("search", "voucher")
    assert [(h["kind"], h["ref_id"]) for h in hits] == [("reply", 1)]
    assert {h["kind"] for h in vrm.json("search", "crew OR sturdy", "--fts")} == {"note", "recommendation"}

    card = vrm.json("scorecard", "acme-air")
    assert (card["issues_opened"], card["issues_resolved"], card["resolved_at_first_contact"]) == (1, 1, 1)
    assert card["first_contact_resolution"] == 1.0 and card["average_rating"] == 4.0
    assert card["median_first_reply_ms"] is not None
    cards = {c["vendor_handle"]: c for c in vrm.json("scorecard")}
    assert cards["@blue-bikes"]["would_recommend"] is True and cards["@cafe"]["would_recommend"] is False

    shown = vrm.json("vendors", "show", "acme-air")
    assert shown["vendor"]["engagement"] == "engaged" and shown["scorecard"] == card
    kinds = [e["kind"] for e in shown["timeline"]]
    for kind in (
        "started",
        "purchase",
        "note",
        "rating",
        "issue_opened",
        "reply",
        "issue_resolved",
        "engagement",
    ):
        assert kind in kinds
    people = vrm("vendors", "show", "acme-air").stdout
    assert "Acme Air" in people and "Timeline" in people and "bought SFO->JFK economy" in people
    assert "Notes" in people and "Friendly crew, cramped seats" in people and "#crew" in people
    assert [n["text"] for n in shown["notes"]] == ["Friendly crew, cramped seats"]

    vrm("vault", "set", "email", EMAIL)
    vrm("vault", "set", "shipping_address", "-", input=ADDRESS + "\n")
    assert vrm("vault", "get", "shipping_address").stdout == ADDRESS + "\n"
    assert [e["name"] for e in vrm.json("vault", "list")] == ["email", "shipping_address"]

    vrm("vendors", "end", "cafe", "--reason", "moved away")
    assert [v["handle"] for v in vrm.json("vendors", "list", "--ended")] == ["@cafe"]
    assert len(vrm.json("vendors", "list", "--all")) == 3
    assert "@cafe" not in {v["handle"] for v in vrm.json("vendors", "list")}


def test_people_get_tables(vrm):
    add_vendors(vrm)
    out = vrm("vendors", "list").stdout
    assert "@acme-air" in out and "Blue Bikes" in out and "────" in out
    assert "@blue-bikes" in vrm("scorecard").stdout


# -- exit codes -----------------------------------------------------------------------------------


def test_exit_codes_for_each_error_kind(vrm):
    add_vendors(vrm)
    result = vrm("notes", "add", "nobody", "hello", code=3)
    assert result.stderr.strip() == "error: no vendor 'nobody'" and result.stdout == ""
    vrm("issues", "resolve", "42", code=3)
    assert "is taken" in vrm("vendors", "add", "Acme Again", "--handle", "acme-air", code=4).stderr
    assert "stars" in vrm("rate", "acme-air", "6", code=6).stderr
    vrm("rate", "acme-air", "five", code=2)  # not a number at all: the command line is wrong
    vrm("vendors", "list", "--ended", "--all", code=2)
    vrm("vendors", "list", "--no-such-flag", code=2)
    vrm("engagement", "set", "acme-air", "obsessed", code=6)
    vrm("search", "acme-air", "--fts", code=6)  # FTS5 reads '-air' as a column filter
    vrm("issues", "open", "acme-air", "Late")
    vrm("issues", "resolve", "1")
    vrm("issues", "resolve", "1", code=4)
    vrm("vendors", "end", "cafe")
    vrm("vendors", "end", "cafe", code=4)
    assert "no identity.json" in Vrm(vrm.home.parent / "elsewhere")("vendors", "list", code=1).stderr


def test_wrong_or_missing_passphrase(vrm):
    vrm("vault", "set", "email", EMAIL)
    assert (
        vrm("vault", "get", "email", passphrase="not it", code=5).stderr.strip() == "error: wrong passphrase"
    )
    assert "VRM_PASSPHRASE" in vrm("vault", "get", "email", passphrase=None, code=5).stderr
    vrm("vault", "set", "email", "x", passphrase="not it", code=5)
    assert vrm("vault", "get", "email").stdout == EMAIL + "\n"  # unchanged
    # Reading names needs no passphrase; neither does the node id.
    assert [e["name"] for e in Vrm(vrm.home, passphrase=None).json("vault", "list")] == ["email"]
    assert Vrm(vrm.home, passphrase=None).json("id")["encrypted"] is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("349.00USD", (34900, "USD")),
        ("349usd", (34900, "USD")),
        ("EUR 12.5", (1250, "EUR")),
        ("1200JPY", (1200, "JPY")),
        ("1.250KWD", (1250, "KWD")),
        ("0.10 GBP", (10, "GBP")),
    ],
)
def test_money_is_parsed_into_minor_units(text, expected):
    assert parse_money(text) == expected
    assert parse_money(format_money(*expected).replace(" ", "")) == expected


@pytest.mark.parametrize(
    "text", ["349", "USD", "3.499USD", "1.5JPY", "12,50EUR", "USD12EUR", "-5USD", "12 dollars"]
)
def test_bad_money_is_refused(text):
    with pytest.raises(ValidationError):
        parse_money(text)


def test_bad_price_exits_6_and_records_nothing(vrm):
    add_vendors(vrm)
    assert "349.00USD" in vrm("purchases", "add", "acme-air", "x", "--price", "349", code=6).stderr
    assert vrm.json("purchases", "list", "acme-air") == []


# -- init -----------------------------------------------------------------------------------------


def test_init_twice_is_refused_and_keeps_the_key(vrm):
    key = (vrm.home / "identity.json").read_bytes()
    result = vrm("init", code=4)
    assert "never overwrites" in result.stderr
    vrm("init", "--no-passphrase", code=4)
    assert (vrm.home / "identity.json").read_bytes() == key


def test_init_without_a_passphrase_needs_saying_so(tmp_path):
    vrm = Vrm(tmp_path / "home", passphrase=None)
    result = vrm("init", code=5)  # no terminal to ask on, no $VRM_PASSPHRASE, no --no-passphrase
    assert "--no-passphrase" in result.stderr and not (tmp_path / "home").exists()
    result = vrm("init", "--no-passphrase")
    assert "UNENCRYPTED" in result.stderr
    assert vrm.json("id")["encrypted"] is False
    assert json.loads((tmp_path / "home" / "identity.json").read_text())["encryption"] is None


def test_init_vendor_role(tmp_path):
    vrm = Vrm(tmp_path / "shop", passphrase=None)
    vrm("init", "--vendor", "--no-passphrase")
    assert vrm.json("id")["role"] == "vendor"


def test_home_option_beats_the_environment(vrm, tmp_path):
    other = tmp_path / "other"
    vrm("--home", str(other), "init", "--no-passphrase")
    assert vrm.json("--home", str(other), "id")["path"] == str(other)
    assert vrm.json("id")["path"] == str(vrm.home)


# -- completion -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o default -F"), ("zsh", "#compdef vrm"), ("fish", "complete --command vrm")],
)
def test_completion_scripts(vrm, shell, marker):
    script = vrm("completion", shell).stdout
    assert marker in script and "_VRM_COMPLETE=complete_" in script


def test_completion_needs_a_known_shell(vrm):
    vrm("completion", "tcsh", code=2)


def test_help_lists_exit_codes(vrm):
    out = vrm("--help").stdout
    assert "3 not found" in out and "5 passphrase" in out and "6 invalid value" in out


# -- intents --------------------------------------------------------------------------------------

INTENT = "?flight SFO->JFK before:2026-12-20 max:400USD #work @acme-air window seat"


def test_intent_cast_list_show_withdraw(vrm):
    out = vrm("intent", INTENT, "--expires", "7d", "--terms", "no-resale").stdout
    for understood in (
        "?flight",
        "#work",
        "@acme-air",
        "from:SFO",
        "to:JFK",
        "before:2026-12-20",
        "max:400.00 USD",
        "window seat",
        "no-resale",
    ):
        assert understood in out, understood
    intent_id = out.strip().splitlines()[-1].removeprefix("intent ")
    [listed] = vrm.json("intents", "list")
    assert listed["id"] == intent_id and listed["status"] == "live"
    assert listed["tokens"] == ["flight"] and listed["terms"] == ["no-resale"]
    assert listed["constraints"]["max"] == {"money": 40000, "cur": "USD"}
    assert listed["expires_at"] - listed["created_at"] == 7 * 24 * 3600 * 1000  # times are *_at in --json
    assert vrm.json("intents", "show", intent_id[:8]) == listed
    assert intent_id[:12] in vrm("intents", "list").stdout

    assert "withdrew" in vrm("intents", "withdraw", intent_id[:8]).stdout
    assert vrm.json("intents", "list") == []
    [withdrawn] = vrm.json("intents", "list", "--withdrawn")
    assert withdrawn["id"] == intent_id and withdrawn["status"] == "withdrawn" and withdrawn["withdrawal_id"]
    assert [i["id"] for i in vrm.json("intents", "list", "--all")] == [intent_id]
    vrm("intents", "withdraw", intent_id, code=4)
    vrm("intents", "show", "ffffffffff", code=3)
    vrm("intents", "list", "--all", "--expired", code=2)


def test_intent_json_output(vrm):
    record = vrm.json("intent", "?rentalcar near:9q8yy qty:1..2", "--expires", "2d")
    assert record["tokens"] == ["rentalcar"] and record["constraints"]["near"] == {"geohash": "9q8yy"}
    assert record["constraints"]["qty"] == {"range": [1, 2]}
    assert vrm.json("intents", "show", record["id"])["id"] == record["id"]


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("?flight from:SFO max:lots window", "max:lots"),
        ("I want ?flight before:2026-02-30", "before:2026-02-30"),
        ("?taxi #bad!tag now", "#bad!tag"),
    ],
)
def test_malformed_intent_points_at_the_word(vrm, text, word):
    result = vrm("intent", text, code=6, passphrase=None)  # refused before any passphrase is needed
    error, shown, caret = result.stderr.splitlines()
    assert error.startswith("error: ") and repr(word) in error
    assert shown == "  " + text
    assert caret.index("^") == 2 + text.index(word) and caret.strip() == "^" * len(word)
    assert result.stdout == ""
    assert vrm.json("intents", "list", "--all") == []


def test_intent_errors_without_a_word_and_bad_options(vrm):
    result = vrm("intent", "just some words", code=6)
    assert "?token" in result.stderr and "^" not in result.stderr
    vrm("intent", "?flight", "--expires", "soon", code=6)
    vrm("intent", "?flight", "--terms", "sell-my-data", code=6)
    vrm("intent", "?flight", passphrase="wrong", code=5)
    assert vrm.json("intents", "list", "--all") == []


def test_version_flag_prints_the_versions_without_a_command():
    from typer.testing import CliRunner

    from cli.main import app as vrm_app

    result = CliRunner().invoke(vrm_app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("vrm-node ") and "protocol v" in result.output


def test_an_error_under_json_is_a_json_object_with_the_same_exit_code(tmp_path):
    import json as _json

    from typer.testing import CliRunner

    from cli.main import app as vrm_app

    env = {"VRM_HOME": str(tmp_path / "h"), "VRM_PASSPHRASE": None}
    runner = CliRunner()
    assert runner.invoke(vrm_app, ["init", "--no-passphrase", "--name", "A"], env=env).exit_code == 0
    plain = runner.invoke(vrm_app, ["intents", "show", "ffffffffff"], env=env)
    result = runner.invoke(vrm_app, ["intents", "show", "ffffffffff", "--json"], env=env)
    assert result.exit_code == plain.exit_code == 3
    error = _json.loads(result.stdout)
    assert error["code"] == 3 and error["reason"] == "not_found" and "ffffffffff" in error["error"]
