"""`vrm service install|uninstall|status`: run the node under systemd, like kubo's and syncthing's units.

The unit is ``Type=notify`` (`vrm serve` sends READY=1 once it listens, STOPPING=1 on the way down,
WATCHDOG=1 pings when ``service.watchdog_sec`` is set), restarts on failure, stops with SIGINT (the
graceful path), runs sandboxed (NoNewPrivileges, ProtectSystem=strict with only the home writable,
PrivateTmp, a StateDirectory, MemoryMax) and logs to the journal in the configured format.

``--user`` (the default) installs into the user's systemd instance (``~/.config/systemd/user``);
``--system`` into ``/etc/systemd/system`` with ``User=`` the account the node runs as. An encrypted
home needs its passphrase: put ``VRM_PASSPHRASE=…`` in ``<home>/service.env`` (mode 0600), which the
unit reads if it exists.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.context import node

service = typer.Typer(help="Run this node as a systemd service: install, uninstall, status.", no_args_is_help=True)

UNIT_NAME = "vrm-node"
ENV_FILE = "service.env"

SystemOpt = Annotated[
    bool, typer.Option("--system/--user", help="The system's systemd (root) or your user's (default).")
]
NameOpt = Annotated[str, typer.Option("--name", help="The unit's name (one per node home).")]
UnitDirOpt = Annotated[
    Path | None,
    typer.Option("--unit-dir", metavar="DIR", help="Write the unit here instead of systemd's directory."),
]


def unit_dir(system: bool) -> Path:
    if system:
        return Path("/etc/systemd/system")
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user"


def quote(arg: str) -> str:
    """One ExecStart argument, quoted the way systemd.syntax(7) splits command lines."""
    if arg and not any(c in arg for c in ' \t"\'\\;$%'):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
    return f'"{escaped}"'


def render_unit(
    *,
    home: str,
    description: str,
    system: bool,
    run_as: str | None,
    memory_max: str,
    watchdog_sec: int,
    python: str = sys.executable,
) -> str:
    """The unit file's text (pure: tests verify what it produces with systemd-analyze)."""
    exec_start = " ".join(quote(a) for a in (python, "-m", "cli", "--home", home, "serve"))
    lines = [
        "[Unit]",
        f"Description={description}",
        "Documentation=man:systemd.service(5)",
        "After=network-online.target",
        "Wants=network-online.target",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={exec_start}",
        f"Environment={quote('VRM_HOME=' + home)}",
        f"EnvironmentFile=-{quote(str(Path(home) / ENV_FILE))}",
        "Restart=on-failure",
        "RestartSec=5s",
        # SIGINT is the graceful stop: requests in flight finish, the store is closed cleanly.
        "KillSignal=SIGINT",
        "TimeoutStopSec=30s",
    ]
    if watchdog_sec > 0:
        lines.append(f"WatchdogSec={watchdog_sec}s")
    if system and run_as:
        lines += [f"User={run_as}"]
    lines += [
        "StateDirectory=vrm-node",
        "StateDirectoryMode=0700",
        # Hardening: the whole file system is read-only but the node's home.
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        f"ReadWritePaths={quote(home)}",
        "PrivateTmp=yes",
        "ProtectControlGroups=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelTunables=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "UMask=0077",
        f"MemoryMax={memory_max}",
        # Logs go to the journal (`journalctl -u vrm-node`) in node.toml's log.format.
        "StandardOutput=journal",
        "StandardError=journal",
        f"SyslogIdentifier={UNIT_NAME}",
        "",
        "[Install]",
        f"WantedBy={'multi-user.target' if system else 'default.target'}",
        "",
    ]
    return "\n".join(lines)


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _systemctl(system: bool, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["systemctl", *([] if system else ["--user"]), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@service.command("install")
def install(
    ctx: typer.Context,
    system: SystemOpt = False,
    name: NameOpt = UNIT_NAME,
    run_as: Annotated[
        str | None, typer.Option("--run-as", metavar="USER", help="--system: the account (default: the home's owner).")
    ] = None,
    start: Annotated[bool, typer.Option("--start/--no-start", help="Enable and start it now.")] = True,
    directory: UnitDirOpt = None,
) -> None:
    """Write the unit for this node's home, then (with systemd running) enable and start it."""
    from node.config import load

    state = node(ctx)
    home = state.home()
    settings = load(home.path)
    if system and run_as is None:
        run_as = pwd.getpwuid(os.stat(home.path).st_uid).pw_name
    text = render_unit(
        home=home.path,
        description=f"vrm-node {home.role} node {home.node_id}",
        system=system,
        run_as=run_as,
        memory_max=settings.get("service.memory_max"),
        watchdog_sec=settings.get("service.watchdog_sec"),
    )
    target_dir = directory if directory is not None else unit_dir(system)
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{name}.service"
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, "utf-8")
    os.replace(temp, path)
    typer.echo(f"wrote {path}")
    scope = "" if system else " --user"
    if directory is None and start and _systemd_running():
        for args in (("daemon-reload",), ("enable", "--now", f"{name}.service")):
            done = _systemctl(system, *args)
            if done.returncode != 0:
                typer.echo(f"error: systemctl{scope} {' '.join(args)}: {done.stderr.strip()}", err=True)
                raise typer.Exit(1)
        typer.echo(f"started: systemctl{scope} status {name}; logs: journalctl{scope} -u {name}")
    else:
        typer.echo(f"to start it: systemctl{scope} daemon-reload && systemctl{scope} enable --now {name}")
    if home.encrypted:
        typer.echo(f"note: the key is encrypted: put VRM_PASSPHRASE=… in {Path(home.path) / ENV_FILE} (mode 0600)")


@service.command("uninstall")
def uninstall(system: SystemOpt = False, name: NameOpt = UNIT_NAME, directory: UnitDirOpt = None) -> None:
    """Stop and disable the unit, then remove its file (the node's home is kept)."""
    path = (directory if directory is not None else unit_dir(system)) / f"{name}.service"
    if directory is None and _systemd_running():
        _systemctl(system, "disable", "--now", f"{name}.service")
    if not path.exists():
        typer.echo(f"error: no unit at {path}", err=True)
        raise typer.Exit(3)
    path.unlink()
    if directory is None and _systemd_running():
        _systemctl(system, "daemon-reload")
    typer.echo(f"removed {path}")


@service.command("status")
def status(system: SystemOpt = False, name: NameOpt = UNIT_NAME, directory: UnitDirOpt = None) -> None:
    """Whether the unit is installed, and systemd's view of it (active, enabled) when systemd runs."""
    path = (directory if directory is not None else unit_dir(system)) / f"{name}.service"
    typer.echo(f"unit {path}: {'installed' if path.exists() else 'not installed'}")
    if not _systemd_running():
        typer.echo("systemd is not running here")
        raise typer.Exit(0 if path.exists() else 3)
    active = _systemctl(system, "is-active", f"{name}.service").stdout.strip()
    enabled = _systemctl(system, "is-enabled", f"{name}.service").stdout.strip()
    typer.echo(f"active: {active or 'unknown'}; enabled: {enabled or 'unknown'}")
    raise typer.Exit(0 if active == "active" else 3)


def register(app: typer.Typer) -> None:
    app.add_typer(service, name="service")
