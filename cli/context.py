"""What every command shares: the home, its store, the passphrase, and how errors become exit codes.

Nothing here opens a file or derives a key until a command asks for it, so ``vrm --help`` and
``vrm vendors list`` never derive a key and never prompt. Library modules (node.home, node.store …) are
imported inside the methods: importing this module stays as cheap as importing typer.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from node.errors import (
    AccessRefused,
    ConflictError,
    NotFoundError,
    PassphraseError,
    ValidationError,
    VrmError,
)

if TYPE_CHECKING:
    from node.home import HomeInfo
    from node.identity import Identity
    from node.intents import Intents
    from node.records import Records
    from node.store import Store
    from node.vault import Vault

PASSPHRASE_ENV = "VRM_PASSPHRASE"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # click's own code for a bad command line
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_PASSPHRASE = 5
EXIT_INVALID = 6
EXIT_REFUSED = 7  # a person's node refused a data access; the reason is named

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 error, 2 bad command line, 3 not found, 4 conflict or already exists, "
    "5 passphrase wrong or missing, 6 invalid value, 7 access refused by the person's node.\n\n"
    "Home: --home PATH, else $VRM_HOME, else the platform data directory. "
    "Passphrase: $VRM_PASSPHRASE, else a hidden prompt on a terminal."
)

# Most specific first: IntentSyntaxError and SearchQueryError are ValidationErrors.
_EXIT_CODES: tuple[tuple[type[VrmError], int], ...] = (
    (NotFoundError, EXIT_NOT_FOUND),
    (ConflictError, EXIT_CONFLICT),
    (PassphraseError, EXIT_PASSPHRASE),
    (ValidationError, EXIT_INVALID),
    (AccessRefused, EXIT_REFUSED),
)


def exit_code_for(exc: BaseException) -> int:
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_ERROR


_REASONS = {3: "not_found", 4: "conflict", 1: "error"}


def report_json(exc: BaseException, code: int) -> None:
    """Under ``--json`` an error is one JSON object on stdout (``error``, ``code``: the exit code,
    ``reason``: the refusal's reason code when there is one, else the kind of error)."""
    import json

    reason = getattr(exc, "reason", None)
    reason = getattr(reason, "name", reason)
    reason = str(reason).lower() if reason else _REASONS.get(code, type(exc).__name__)
    typer.echo(json.dumps({"error": str(exc), "code": code, "reason": reason}))


def report(exc: BaseException) -> None:
    """One line on stderr, plus any notes a command attached (PEP 678), such as the caret under a word."""
    typer.echo(f"error: {exc}", err=True)
    for line in getattr(exc, "__notes__", ()):
        typer.echo(line, err=True)


class VrmGroup(TyperGroup):
    """The root command: the one place where a VrmError becomes a message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        # read before the group consumes them: does the command line ask for --json?
        as_json = "--json" in (*getattr(ctx, "protected_args", ()), *ctx.args)
        try:
            return super().invoke(ctx)
        except VrmError as exc:
            code = exit_code_for(exc)
            if as_json:
                report_json(exc, code)
            else:
                report(exc)
            raise typer.Exit(code) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # `vrm … | head`: the reader left, let typer quiet it
                raise
            report(exc)  # a missing directory, a full disk: a message, not a traceback
            raise typer.Exit(EXIT_ERROR) from None

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: str | None = None) -> None:
        # Typer registers its own completion classes (the ones `vrm completion` prints scripts for)
        # only when it adds --install-completion, which vrm does not; register them before answering.
        var = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
        if os.environ.get(var):
            from typer._completion_classes import completion_init

            completion_init()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)


def stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def passphrase_from_env() -> str | None:
    return os.environ.get(PASSPHRASE_ENV) or None


def new_passphrase(no_passphrase: bool) -> str | None:
    """The passphrase for a new home (init, import): None means the key is stored unencrypted."""
    if no_passphrase:
        if passphrase_from_env():
            typer.echo(f"note: --no-passphrase given, ${PASSPHRASE_ENV} ignored", err=True)
        return None
    if passphrase_from_env():
        return passphrase_from_env()
    if stdin_is_tty():
        return typer.prompt(
            "Passphrase for the new node", hide_input=True, confirmation_prompt=True, err=True
        )
    raise PassphraseError(
        f"no passphrase: set ${PASSPHRASE_ENV}, run on a terminal to be asked, "
        "or pass --no-passphrase to store the key unencrypted"
    )


class NodeContext:
    """Per-invocation state (typer's ``ctx.obj``): the home is resolved and opened on first use."""

    def __init__(self, home: str | None) -> None:
        self._home_option = home
        self._info: HomeInfo | None = None
        self._store: Store | None = None
        self._passphrase: str | None = None

    def home_path(self) -> Path:
        from node.home import resolve_home

        # --home and $VRM_HOME both arrive in _home_option (typer reads the variable); an empty
        # environment keeps resolve_home from reading VRM_HOME a second time.
        return resolve_home(self._home_option, environ={})

    def home(self) -> HomeInfo:
        if self._info is None:
            from node.home import load_home

            self._info = load_home(self.home_path())
        return self._info

    def store(self) -> Store:
        """The home's SQLite store, or a vendor fleet's PostgreSQL database when node.toml's
        ``store.url`` names one (the same Store interface: every read command works on either)."""
        if self._store is None:
            home = self.home()
            url = None
            if home.role == "vendor":
                from fleet.home import store_url

                url = store_url(home)
            if url is not None:
                from fleet.home import open_fleet_store

                self._store = open_fleet_store(url)
            else:
                from node.home import open_store

                self._store = open_store(home)
        return self._store

    def records(self) -> Records:
        from node.records import Records

        return Records(self.store())

    def intents(self) -> Intents:
        from node.intents import Intents

        return Intents(self.store())

    def passphrase(self) -> str | None:
        """None for an unencrypted home; else $VRM_PASSPHRASE or a hidden prompt (asked once)."""
        if not self.home().encrypted:
            return None
        if self._passphrase is None:
            self._passphrase = passphrase_from_env()
        if self._passphrase is None:
            if not stdin_is_tty():
                raise PassphraseError(
                    f"this node is encrypted: set ${PASSPHRASE_ENV} or run on a terminal to be asked"
                )
            self._passphrase = typer.prompt("Passphrase", hide_input=True, err=True)
        return self._passphrase

    def identity(self) -> Identity:
        from node.keystore import load_identity

        return load_identity(self.home().key_path, self.passphrase())

    def vault(self, *, unlock: bool) -> Vault:
        """The vault; ``unlock=False`` (list, delete) needs no passphrase because it reads no value."""
        from node.home import open_vault
        from node.vault import Vault

        if not unlock:
            return Vault(self.store(), None)
        return open_vault(self.home(), self.store(), self.passphrase())

    def run_op_on_daemon(self, name: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """Run an op through the daemon's admin API when `vrm serve` runs for this home; None (nothing
        done) when it does not, for commands that work on the store directly then."""
        import trio

        from federation.admin import AdminClient

        async def attempt() -> dict[str, Any] | None:
            client = await AdminClient.from_home(self.home())
            return None if client is None else await client.run_op(name, args)

        return trio.run(attempt)

    def run_op(self, name: str, args: dict[str, Any], *, vault: bool = False) -> dict[str, Any]:
        """Run a write operation of ``app.ops`` and return its JSON result.

        When `vrm serve` runs for this home its admin API does it (so the daemon's deliverer and matcher
        see the change at once, and no passphrase is needed); otherwise it runs here, against the store,
        signed with this node's identity. ``vault``: the op reads the vault (a push grant seals its
        fields), so without a daemon the vault key is derived too. Errors are the same classes either
        way, hence the same exit codes.
        """
        import trio

        return trio.run(self._run_op, name, args, vault)

    async def _run_op(self, name: str, args: dict[str, Any], vault: bool) -> dict[str, Any]:
        from federation.admin import AdminClient

        home = self.home()
        client = await AdminClient.from_home(home)
        if client is not None:
            return await client.run_op(name, args)
        from app.ops import run_op
        from app.root import direct_services

        identity = self.identity()
        vault_key = self.vault_key() if vault else None
        async with direct_services(home, identity, vault_key=vault_key) as services:
            return await run_op(services, name, args)

    def vault_key(self) -> bytes | None:
        """The vault's key from the passphrase (None for a home without one: its vault is plain)."""
        from node.keystore import derive_vault_key

        return derive_vault_key(self.home().key_path, self.passphrase())

    def require_role(self, role: str, what: str) -> None:
        """Refuse a command meant for the other kind of node, before asking for anything."""
        info = self.home()
        if info.role != role:
            hint = "vrm init --vendor" if role == "vendor" else "vrm init"
            raise ValidationError(
                "role", f"{what} are for {role} nodes; this is a {info.role} node (a {role} node: {hint})"
            )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def node(ctx: typer.Context) -> NodeContext:
    """The NodeContext the root callback put on the context."""
    obj = ctx.find_object(NodeContext)
    assert obj is not None, "the root callback creates the NodeContext"
    return obj
