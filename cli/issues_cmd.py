"""`vrm issues …`: complaints with their state and every reply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli import complete, output
from cli.context import node
from cli.output import JsonOpt
from cli.vendors_cmd import VendorArg

if TYPE_CHECKING:
    from node.records import Issue

IssueArg = Annotated[str, typer.Argument(metavar="ID", help="The issue's number.")]

issues = typer.Typer(help="Complaints: open, reply, resolve, list, show.", no_args_is_help=True)


@issues.command("open")
def open_issue(
    ctx: typer.Context,
    ref: VendorArg,
    title: Annotated[str, typer.Argument(metavar="TITLE", help="What went wrong.")],
) -> None:
    """Open an issue with a vendor; the vendor now owes an answer."""
    issue = node(ctx).records().open_issue(ref, title)
    output.say(f"opened issue #{issue.id} ({issue.state})")


@issues.command("reply")
def reply(
    ctx: typer.Context,
    issue_id: IssueArg,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What was said.")],
    author: Annotated[
        str,
        typer.Option("--from", help="Who said it: me or vendor.", autocompletion=complete.reply_authors),
    ] = "me",
) -> None:
    """Record a reply on an issue, yours (default) or the vendor's."""
    issue = node(ctx).records().add_reply(issue_id, author, text)
    output.say(f"issue #{issue.id}: reply recorded, now {issue.state}")


@issues.command("resolve")
def resolve(ctx: typer.Context, issue_id: IssueArg) -> None:
    """Mark an issue resolved."""
    issue = node(ctx).records().resolve_issue(issue_id)
    output.say(f"issue #{issue.id} resolved")


@issues.command("list")
def list_issues(
    ctx: typer.Context,
    vendor: Annotated[str | None, typer.Option(help="Only this vendor's issues.")] = None,
    unresolved: Annotated[bool, typer.Option("--open", help="Only issues not yet resolved.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Issues, newest first."""
    records = node(ctx).records()
    rows = records.list_issues(vendor, unresolved=unresolved)
    if as_json:
        output.print_json(rows)
        return
    handles = {v.id: v.handle for v in records.list_vendors(status="all")}
    output.table(
        ("id", "vendor", "state", "opened", "replies", "title"),
        (
            (i.id, handles[i.vendor_id], i.state, output.when(i.opened_at), len(i.replies), i.title)
            for i in rows
        ),
    )


@issues.command("show")
def show(ctx: typer.Context, issue_id: IssueArg, as_json: JsonOpt = False) -> None:
    """One issue with every reply."""
    state = node(ctx)
    issue = state.records().get_issue(issue_id)
    if as_json:
        output.print_json(issue)
        return
    vendor = state.records().get_vendor(issue.vendor_id)
    _show(issue, vendor.handle)


def _show(issue: Issue, handle: str) -> None:
    output.fields(
        [
            ("issue", f"#{issue.id}: {issue.title}"),
            ("vendor", handle),
            ("state", issue.state),
            ("opened", output.when(issue.opened_at)),
            ("resolved", output.when(issue.resolved_at) if issue.resolved_at else None),
        ]
    )
    if issue.replies:
        output.table(
            ("when", "from", "text"),
            ((output.when(r.at), r.author, r.text) for r in issue.replies),
            title="Replies",
        )


def register(app: typer.Typer) -> None:
    app.add_typer(issues, name="issues")
