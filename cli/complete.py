"""Shell-completion helpers for argument values (vendor handles, engagement levels, intent terms)."""

from __future__ import annotations

import typer

from node.errors import VrmError


def _match(candidates: list[str], incomplete: str) -> list[str]:
    return [c for c in candidates if c.startswith(incomplete)]


def vendor_refs(ctx: typer.Context, incomplete: str) -> list[str]:
    """Handles of the vendors in the home being completed for (nothing when it cannot be opened)."""
    from node.home import load_home, open_store, resolve_home
    from node.records import Records

    try:
        # Completion runs no callbacks, so read --home from the parsed root parameters.
        info = load_home(resolve_home(ctx.find_root().params.get("home"), environ={}))
        with open_store(info) as store:
            handles = [v.handle for v in Records(store).list_vendors(status="all")]
    except VrmError:
        return []
    if incomplete.startswith("@"):
        return _match(handles, incomplete)
    return _match([h[1:] for h in handles], incomplete)


def engagement_levels(incomplete: str) -> list[str]:
    from node.store import ENGAGEMENT_LEVELS

    return _match(list(ENGAGEMENT_LEVELS), incomplete)


def reply_authors(incomplete: str) -> list[str]:
    from node.records import REPLY_AUTHORS

    return _match(list(REPLY_AUTHORS), incomplete)


def intent_terms(incomplete: str) -> list[str]:
    from node.intents import KNOWN_TERMS

    # --terms takes a comma-separated list: complete the last item.
    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [prefix + t for t in sorted(KNOWN_TERMS) if t.startswith(last)]


# The shells `vrm completion` writes a script for (typer's completion classes; pwsh = powershell).
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def shells(incomplete: str) -> list[str]:
    return _match(list(SHELLS), incomplete)


def shell_named(given: str | None, environ_shell: str) -> str:
    """The shell to write a script for: ``given``, else the basename of $SHELL (``pwsh.exe`` counts as
    ``pwsh``); a typer.BadParameter (exit 2) naming the supported shells for anything else."""
    import os

    name = given or os.path.basename(environ_shell)
    name = name.lower().removesuffix(".exe")
    if name not in SHELLS:
        shown = repr(name) if name else "no shell given and $SHELL is not set"
        raise typer.BadParameter(
            f"{shown}: vrm completes in {', '.join(SHELLS[:-2])} and PowerShell (powershell or pwsh); "
            "name one, e.g. `vrm completion bash`",
            param_hint="SHELL",
        )
    return name
