"""node.toml and `vrm config`: values round-trip through the file with their types; an unknown or
ill-typed key — set on the command line or written in the file by hand — is refused with the key
named, and the file is left as it was."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from node.config import config_path, load
from node.home import init_home


@pytest.fixture
def home(tmp_path):
    return init_home(tmp_path / "node", None).path


def vrm(home: str, *args: str, code: int = 0):
    result = CliRunner().invoke(app, ["--home", home, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return result


def test_set_get_show_round_trip_typed_values(home):
    vrm(home, "config", "set", "server.port", "9000")
    vrm(home, "config", "set", "server.host", "10.0.0.7")  # looks like a number: still text
    vrm(home, "config", "set", "federation.bootstrap_peers", "https://a.example,https://b.example:8470")
    vrm(home, "config", "set", "federation.pull_interval", "30")
    vrm(home, "config", "set", "server.public_url", 'https://node.example/"x"')  # quotes survive the writer
    settings = load(home)
    assert settings.get("server.port") == 9000 and settings.get("server.host") == "10.0.0.7"
    assert settings.get("federation.bootstrap_peers") == ["https://a.example", "https://b.example:8470"]
    assert settings.get("federation.pull_interval") == 30.0
    assert settings.get("server.public_url") == 'https://node.example/"x"'
    assert vrm(home, "config", "get", "server.port").stdout == "9000\n"
    shown = json.loads(vrm(home, "config", "show", "--json").stdout)
    assert shown["server.port"] == 9000 and shown["log.level"] == "warning"  # a default
    vrm(home, "config", "unset", "server.port")
    assert vrm(home, "config", "get", "server.port").stdout == "8470\n"


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("server.prot", "80", "server.prot: unknown setting"),
        ("server.port", "eighty", "server.port: 'eighty' is not an integer"),
        ("server.port", "70000", "server.port: 70000 is not a port"),
        ("server.port", "true", "server.port: must be an integer, not a boolean"),
        ("log.format", "xml", "log.format: 'xml' is not one of text, json"),
        ("server.trusted_proxies", "127.0.0.1,proxy", "server.trusted_proxies: 'proxy' is not an IP address"),
        ("federation.bootstrap_peers", "ftp://x", "federation.bootstrap_peers: 'ftp://x' is not an http"),
    ],
)
def test_set_refuses_naming_the_key_and_keeps_the_file(home, key, value, named):
    vrm(home, "config", "set", "log.level", "info")
    before = config_path(home).read_text()
    assert named in vrm(home, "config", "set", key, value, code=6).stderr
    assert config_path(home).read_text() == before


@pytest.mark.parametrize(
    "text, named",
    [
        ('[server]\nport = "8470"\n', "server.port: must be an integer, not a string"),
        ("[server]\nhots = '0.0.0.0'\n", "server.hots: unknown setting"),
        ("[sever]\nport = 1\n", "sever.port: unknown setting"),
        ("port = 1\n", "port: unknown setting"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_a_hand_edited_file_is_refused_naming_the_key(home, text, named):
    config_path(home).write_text(text)
    for args in (("config", "show"), ("serve", "--port", "0")):  # serve refuses before listening
        result = vrm(home, *args, code=6)
        assert named in result.stderr and str(config_path(home)) in result.stderr


def test_the_page_on_the_lan_is_a_setting_and_a_flag_overrides_it(home):
    from cli.serve_cmd import run_options

    assert run_options(load(home))["ui_lan"] is False  # off unless asked: the page stays on loopback
    runner = CliRunner()
    for args in (["config", "set", "ui.lan", "true"], ["config", "set", "ui.lan_port", "9100"]):
        assert runner.invoke(app, ["--home", str(home), *args]).exit_code == 0
    options = run_options(load(home))
    assert (options["ui_lan"], options["ui_lan_port"]) == (True, 9100)
    refused = runner.invoke(app, ["--home", str(home), "config", "set", "ui.lan", "perhaps"])
    assert refused.exit_code == 6 and "ui.lan" in refused.output


def test_a_fleet_store_url_is_a_setting(home):
    runner = CliRunner()
    url = "postgresql://vrm@db.example/vrm"
    assert runner.invoke(app, ["--home", str(home), "config", "set", "store.url", url]).exit_code == 0
    assert load(home).get("store.url") == url  # what `vrm serve` runs with unless --store says otherwise
    refused = runner.invoke(app, ["--home", str(home), "config", "set", "store.url", "mysql://db/vrm"])
    assert refused.exit_code == 6 and "store.url" in refused.output


@pytest.mark.parametrize("how", ["flag", "file", "neither"])
def test_allow_private_peers_reaches_the_runtime(home, monkeypatch, how):
    """`vrm serve --allow-private-peers` or federation.allow_private_peers = true in node.toml sets
    NodeRuntime's allow_private_peers (announced peers on private addresses are then accepted)."""
    import app.runtime

    seen: dict = {}

    async def serve_forever(home, identity, **options):  # records what `vrm serve` would run with
        seen.update(options)

    monkeypatch.setattr(app.runtime, "serve_forever", serve_forever)
    if how == "file":
        vrm(home, "config", "set", "federation.allow_private_peers", "true")
    args = ["serve", "--port", "0"] + (["--allow-private-peers"] if how == "flag" else [])
    vrm(home, *args)
    assert seen["allow_private_peers"] is (how != "neither")
