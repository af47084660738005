"""The `vrm` command. Heavy modules are imported inside commands so that start-up stays light."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="vrm",
    help="vrm-node: your side of customer relationships.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the vrm-node version and the protocol version."""
    import node
    from node import _native

    typer.echo(f"vrm-node {node.__version__} (protocol v{_native.PROTOCOL_VERSION})")


@app.command()
def demo(
    batch: int = typer.Option(256, min=1, max=4096, help="Envelopes in the verification batch."),
) -> None:
    """Watch an identity sign an envelope that travels through encode, decode and verify."""
    from cli.demo import run_demo

    raise typer.Exit(run_demo(batch_size=batch))


def main() -> None:
    app()
