"""The node's settings file, ``<home>/node.toml``: what `vrm serve` runs with unless a flag says otherwise.

Every key has a type, a default and a check; the file holds only what was set (a key back at its
default still counts as set). Reading refuses anything it does not know or cannot use — an unknown
table or key, a value of the wrong type, a port out of range — with ``ValidationError`` naming the
dotted key (``server.port``), so a typo never silently means "the default". Writing goes through
``set_value`` and ``save`` (a temporary file renamed over the old one, so a crash leaves either).

Python reads TOML (``tomllib``) but does not write it; the values here are only text, numbers,
booleans and lists of text, so ``dumps`` is a small writer of exactly those.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.errors import ValidationError

CONFIG_TOML = "node.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


def _url(key: str, value: str) -> None:
    if not value.startswith(("http://", "https://")) or len(value) > 2048 or any(c.isspace() for c in value):
        raise ValidationError(key, f"{value!r} is not an http:// or https:// URL")


def _pg_url(key: str, value: str) -> None:
    if not value.startswith(("postgresql://", "postgres://")) or any(c.isspace() for c in value):
        raise ValidationError(key, f"{value!r} is not a postgresql:// URL")


def _port(key: str, value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValidationError(key, f"{value} is not a port (0..65535)")


def _positive(key: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValidationError(key, f"{value} must be a positive number")


def _nonnegative(key: str, value: float) -> None:
    if value < 0 or not math.isfinite(value):
        raise ValidationError(key, f"{value} must be 0 or more")


def _choice(*choices: str) -> Callable[[str, str], None]:
    def check(key: str, value: str) -> None:
        if value not in choices:
            raise ValidationError(key, f"{value!r} is not one of {', '.join(choices)}")

    return check


def _ip(key: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError(key, f"{value!r} is not an IP address") from None


def _nonempty(key: str, value: str) -> None:
    if not value or "\n" in value:
        raise ValidationError(key, "must be one non-empty line")


@dataclass(frozen=True)
class Setting:
    kind: type  # str, int, float, bool, or list (of str)
    default: Any
    help: str
    check: Callable[[str, Any], None] | None = None  # for a list: applied to each item
    optional: bool = False  # None (unset) is allowed and is the default


SETTINGS: dict[str, Setting] = {
    "server.host": Setting(str, "127.0.0.1", "the interface the federation API listens on", _nonempty),
    "server.port": Setting(int, 8470, "the federation port (0: any free one)", _port),
    "server.admin_port": Setting(int, 0, "the admin API's port on 127.0.0.1 (0: any)", _port),
    "server.public_url": Setting(str, None, "the URL peers reach this node at (behind a proxy)", _url, True),
    "server.tls_cert": Setting(str, None, "PEM certificate chain: serve HTTPS itself", _nonempty, True),
    "server.tls_key": Setting(str, None, "PEM private key of tls_cert", _nonempty, True),
    "server.trusted_proxies": Setting(
        list, [], "addresses of reverse proxies whose X-Forwarded-Host/-Proto are believed", _ip
    ),
    "federation.bootstrap_peers": Setting(list, [], "peer URLs added (once) when the node starts", _url),
    "federation.allow_private_peers": Setting(
        bool, False, "reach peers on private, loopback or link-local addresses (announced URLs, names resolving there)"
    ),
    "federation.exchange_interval": Setting(
        float, 300.0, "seconds between asking peers for their peers (peer exchange; 0: never)", _nonnegative
    ),
    "federation.max_peers": Setting(int, 8, "discovery adds peers while the node has fewer than this", _nonnegative),
    "federation.mdns": Setting(bool, False, "announce the node on the LAN (_vrm._tcp) and add the nodes found there"),
    "federation.pull_interval": Setting(float, 60.0, "seconds between pulls from every peer", _positive),
    "limits.rate": Setting(float, 2000.0, "gossip items per second a peer may push, sustained", _positive),
    "limits.burst": Setting(int, 5000, "gossip items a quiet peer may push at once", _positive),
    "limits.max_body": Setting(int, 8 * 1024 * 1024, "largest request body in bytes", _positive),
    "log.level": Setting(str, "warning", "debug, info, warning or error", _choice(*LOG_LEVELS)),
    "log.format": Setting(str, "text", "text (with times) or json (one object a line)", _choice(*LOG_FORMATS)),
    "store.url": Setting(str, None, "a vendor fleet's postgresql:// database (unset: the home's SQLite)", _pg_url, True),
    "ui.lan": Setting(bool, False, "also serve the page on the LAN (0.0.0.0), behind a pairing code"),
    "ui.lan_port": Setting(int, 8471, "the page's LAN port when ui.lan is on (0: any)", _port),
    "service.memory_max": Setting(str, "256M", "the unit's MemoryMax (systemd size: 256M, 1G)", _nonempty),
    "service.watchdog_sec": Setting(int, 0, "the unit's WatchdogSec (0: no watchdog)", _nonnegative),
}


def config_path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / CONFIG_TOML


def coerce(key: str, value: Any) -> Any:
    """``value`` checked as ``key``'s type; ValidationError naming ``key`` otherwise."""
    setting = SETTINGS.get(key)
    if setting is None:
        raise ValidationError(key, f"unknown setting (known: {', '.join(SETTINGS)})")
    if value is None and setting.optional:
        return None
    kind = setting.kind
    if kind is float and type(value) is int:
        value = float(value)
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError(key, "must be a list of strings")
        for item in value:
            if setting.check:
                setting.check(key, item)
        return list(value)
    if type(value) is not kind:  # exact: a bool is not an int here
        raise ValidationError(key, f"must be {_KIND_NAMES[kind]}, not {_describe(value)}")
    if setting.check:
        setting.check(key, value)
    return value


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _describe(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__
    )


def parse_text(key: str, text: str) -> Any:
    """A value typed on the command line (`vrm config set KEY VALUE`) as ``key``'s type: a TOML value
    (``8470``, ``true``, ``["http://a"]``) or, for a text setting, the bare text."""
    setting = SETTINGS.get(key)
    if setting is None:
        coerce(key, None)  # raises, naming the key
    if setting.optional and text in ("", "none"):
        return None
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if setting.kind is str:
            value = text
        elif setting.kind is list:  # `a,b` for ["a", "b"]
            value = [v.strip() for v in text.split(",") if v.strip()]
        else:
            raise ValidationError(key, f"{text!r} is not {_KIND_NAMES[setting.kind]}") from None
    if setting.kind is str and not isinstance(value, str):
        value = text  # `vrm config set server.host 10.0.0.1` is text even though it looks like a number
    if setting.kind is list and isinstance(value, str):
        value = [value]
    return coerce(key, value)


class Config:
    """The settings of one home: ``values`` holds what the file sets, ``get`` falls back to defaults."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = {}
        for key, value in (values or {}).items():
            self.values[key] = coerce(key, value)

    def get(self, key: str) -> Any:
        if key not in SETTINGS:
            coerce(key, None)  # raises, naming the key
        return self.values.get(key, SETTINGS[key].default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = coerce(key, value)

    def unset(self, key: str) -> None:
        if key not in SETTINGS:
            coerce(key, None)  # raises, naming the key
        self.values.pop(key, None)

    def effective(self) -> dict[str, Any]:
        """Every setting with its value (set or default), in the schema's order."""
        return {key: self.get(key) for key in SETTINGS}


def loads(text: str, *, source: str = CONFIG_TOML) -> Config:
    try:
        return Config(_flatten(text, source))
    except ValidationError as exc:
        exc.add_note(f"in {source}")
        raise


def _flatten(text: str, source: str) -> dict[str, Any]:
    """``{"server": {"port": 1}}`` as ``{"server.port": 1}``; anything outside a table is refused."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(source, f"not valid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    for table, body in data.items():
        if not isinstance(body, dict):
            raise ValidationError(table, "unknown setting: settings live in tables ([server], [log] …)")
        for name, value in body.items():
            key = f"{table}.{name}"
            if isinstance(value, dict):
                raise ValidationError(key, "unknown table")
            flat[key] = value
    return flat


def load(home: str | os.PathLike[str]) -> Config:
    """The home's settings; all defaults when it has no node.toml."""
    path = config_path(home)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return Config()
    return loads(text, source=str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dumps(config: Config) -> str:
    """The settings that are set, as TOML tables in the schema's order (None values are left out)."""
    lines = ["# vrm-node settings: `vrm config show` lists every key; flags of `vrm serve` override these."]
    current = None
    for key in SETTINGS:
        if key not in config.values or config.values[key] is None:
            continue
        table, name = key.split(".", 1)
        if table != current:
            lines += ["", f"[{table}]"]
            current = table
        lines.append(f"{name} = {_toml_value(config.values[key])}")
    return "\n".join(lines) + "\n"


def save(home: str | os.PathLike[str], config: Config) -> Path:
    path = config_path(home)
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "w", encoding="utf-8") as f:
        f.write(dumps(config))
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    return path
