"""The `vrm` command: the root app, its global options, and the command groups it registers.

Start-up stays light: command modules import only typer and node.errors at the top; the store
(sqlite-utils), cryptography, the native core and rich are imported inside the commands that use them.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli import (
    access_cmd,
    agreements_cmd,
    backup_cmd,
    config_cmd,
    exchange_cmd,
    grants_cmd,
    intents_cmd,
    issues_cmd,
    market_cmd,
    node_cmd,
    passphrase_cmd,
    peers_cmd,
    records_cmd,
    serve_cmd,
    ui_cmd,
    service_cmd,
    vault_cmd,
    vendors_cmd,
)
from cli.complete import shell_named, shells
from cli.context import EXIT_CODES_HELP, NodeContext, VrmGroup

app = typer.Typer(
    name="vrm",
    cls=VrmGroup,
    help="vrm-node: your side of customer relationships.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,  # `vrm completion SHELL` prints the script instead
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    """``vrm --version``: runs while the options are parsed, so no subcommand is needed."""
    if value:
        version()
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            envvar="VRM_HOME",
            metavar="PATH",
            help="The node's home directory (default: the platform data directory).",
        ),
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=lambda value: _print_version(value),
            help="Print the vrm-node and protocol versions and exit.",
        ),
    ] = False,
) -> None:
    """Put the per-invocation NodeContext on the context; it opens the home only when a command asks."""
    state = NodeContext(home)
    ctx.obj = state
    ctx.call_on_close(state.close)


@app.command()
def version() -> None:
    """Print the vrm-node version and the protocol version."""
    import node
    from node import _native

    typer.echo(f"vrm-node {node.__version__} (protocol v{_native.PROTOCOL_VERSION})")


@app.command()
def demo(
    envelopes: bool = typer.Option(
        False, "--envelopes", help="Instead: one envelope through encode, decode and verify, then a batch."
    ),
    batch: int = typer.Option(256, min=1, max=4096, help="Envelopes in the --envelopes verification batch."),
) -> None:
    """Watch three nodes on loopback: an intent, the matching vendor's lead, its offer, the acceptance."""
    from cli.demo import run_demo, run_envelope_demo

    raise typer.Exit(run_envelope_demo(batch_size=batch) if envelopes else run_demo())


@app.command()
def completion(
    ctx: typer.Context,
    shell: Annotated[
        str | None,
        typer.Argument(
            metavar="SHELL", help="bash, zsh, fish, powershell or pwsh (default: from $SHELL).", autocompletion=shells
        ),
    ] = None,
) -> None:
    """Print the shell completion script, e.g. `source <(vrm completion bash)`.

    zsh: `vrm completion zsh > "${fpath[1]}/_vrm"`;
    fish: `vrm completion fish > ~/.config/fish/completions/vrm.fish`;
    PowerShell: `vrm completion powershell | Out-String | Invoke-Expression` (add it to $PROFILE).
    Any other shell is refused with exit code 2.
    """
    from typer._click.shell_completion import get_completion_class
    from typer._completion_classes import completion_init

    shell = shell_named(shell, os.environ.get("SHELL", ""))
    completion_init()  # typer's completion classes, the ones VrmGroup answers completion requests with
    root = ctx.find_root()
    script_cls = get_completion_class(shell)
    assert script_cls is not None
    typer.echo(script_cls(root.command, {}, "vrm", "_VRM_COMPLETE").source())


node_cmd.register(app)
vendors_cmd.register(app)
records_cmd.register(app)
issues_cmd.register(app)
vault_cmd.register(app)
intents_cmd.register(app)
exchange_cmd.register(app)
serve_cmd.register(app)
peers_cmd.register(app)
market_cmd.register(app)
agreements_cmd.register(app)
access_cmd.register(app)
grants_cmd.register(app)
ui_cmd.register(app)
config_cmd.register(app)
service_cmd.register(app)
backup_cmd.register(app)
passphrase_cmd.register(app)


def main() -> None:
    # prog_name fixed so `python -m cli` prints the same usage lines and completion variable as `vrm`.
    app(prog_name="vrm")
