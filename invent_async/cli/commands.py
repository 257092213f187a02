"""The ``invent`` command tree (click). Callbacks stay thin: they parse options and call helpers.

Each command runs the async client in its own ``asyncio.run``. Errors are turned into one line
on stderr and an exit status by :class:`InventGroup` (see :mod:`._runtime` for the codes); no
traceback reaches the user for an API, input or authentication error.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from .._client import AsyncInventClient
from .._exceptions import InventError
from .._models import Broadcast, BroadcastStatus, ContactStatus, Segment, SegmentColor
from .._observe import configure_logging
from .._pagination import AsyncPager
from .._settings import REDIS_URL_ENV
from .._version import __version__
from ._argv import hoist_global_options
from ._broadcasts import BROADCAST_VIEW, parse_at, parse_variables, run_create, run_send
from ._ids import open_ids
from ._import import run_import_command
from ._import_input import IMPORT_FORMATS
from ._job_run import before_reading_ids
from ._output import (
    CONTACT_VIEW,
    FORMATS,
    SEGMENT_VIEW,
    Format,
    OutputConsole,
    View,
    make_sink,
    silence_stdout,
)
from ._runtime import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    SANDBOX_CONTACTS,
    SANDBOX_RATE_PER_MINUTE,
    CliError,
    Settings,
    describe_api_error,
    open_client,
)
from ._segment_sync import CONFIRM_OVER, run_segment_sync_command
from ._tag_jobs import Action, run_bulk_command, run_demo

__all__ = ["InventGroup", "cli"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class InventGroup(click.Group):
    """The root group: its options wherever they stand (:func:`hoist_global_options`), and
    errors escaping a command mapped to one line and an exit status."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse ``args`` with the root options found after a subcommand moved before it."""
        return super().parse_args(ctx, hoist_global_options(args, self.params, self))

    def invoke(self, ctx: click.Context) -> Any:
        """Invoke the command; SDK errors, Ctrl-C and a closed pipe end it without a traceback."""
        try:
            return super().invoke(ctx)
        except CliError as exc:
            exc.show()
            raise click.exceptions.Exit(exc.exit_code) from None
        except InventError as exc:
            message, status = describe_api_error(exc)
            CliError(message, status).show()
            raise click.exceptions.Exit(status) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:  # `invent ... | head`: the reader has all it wanted
            silence_stdout()
            raise click.exceptions.Exit(EXIT_OK) from None


@click.group(
    cls=InventGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--org",
    "org_id",
    default="c",
    show_default=True,
    metavar="ORG_ID",
    help="Organisation to act on ('c' is the API key's own organisation).",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="API root URL (default: the INVENT_BASE_URL environment variable, else the real API).",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help=(
        f"Run against an embedded FakeInvent instead of the API: segment sg_1 'VIP customers', "
        f"contacts ct_1..ct_{SANDBOX_CONTACTS} and broadcasts bc_1 (a draft to sg_1) and bc_2 "
        f"(transactional), limited to {SANDBOX_RATE_PER_MINUTE:,.0f} requests/min. No "
        "account, key or network needed; nothing is kept afterwards."
    ),
)
@click.option(
    "--redis-url",
    metavar="URL",
    help=(
        "Share the rate budget with every process that names this Redis (or Valkey) server, "
        "e.g. redis://127.0.0.1:6379/0 (rediss:// for a server on another host). "
        f"Default: the {REDIS_URL_ENV} environment variable, else a budget of this process."
    ),
)
@click.option(
    "--per-minute",
    type=click.FloatRange(min=0, min_open=True),
    metavar="N",
    help=(
        "The rate limit in requests per minute. Default: with a Redis budget, the limit "
        "stored with it by the processes already using it (the app beside this job); else "
        "the API's 500 (the sandbox: its own limit)."
    ),
)
@click.option(
    "--fallback-share",
    type=click.FloatRange(min=0, max=1, min_open=True),
    metavar="F",
    help=(
        "With a Redis budget: this process's share of the rate while Redis is down. Default: "
        "the INVENT_FALLBACK_SHARE environment variable, else 1 / the budget's live members."
    ),
)
@click.option(
    "--verbose",
    "-v",
    count=True,
    help=(
        "Log every HTTP attempt to stderr (method, path, status, time, request id, rate "
        "governor wait); -vv adds the bodies (cut, the key redacted). Like INVENT_LOG=info/debug."
    ),
)
@click.version_option(__version__, "--version", prog_name="invent", message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context,
    org_id: str,
    base_url: str | None,
    sandbox: bool,
    redis_url: str | None,
    per_minute: float | None,
    fallback_share: float | None,
    verbose: int,
) -> None:
    """invent: the Invent API (contacts, segments and broadcasts) from the shell.

    The API key is read from the INVENT_API_KEY environment variable only (never from an
    option, so it stays out of shell history). Try `invent demo` or `invent --sandbox ...`
    without one.

    Exit status: 0 success (also: no ids in the input, or the reader of a pipe went away);
    1 some items or an API call failed; 2 usage or input error; 3 authentication or
    permission error; 4 stopped by the API's rate limit (it asked to wait longer than the
    client waits, 5 minutes: run the command again later); 130 interrupted (Ctrl-C); 143
    terminated (SIGTERM).
    """
    if sandbox and base_url is not None:
        raise click.UsageError("--sandbox and --base-url cannot be used together")
    if verbose:
        configure_logging("debug" if verbose > 1 else "info")
    ctx.obj = Settings(
        org_id=org_id,
        base_url=base_url,
        sandbox=sandbox,
        redis_url=redis_url,
        per_minute=per_minute,
        fallback_share=fallback_share,
    )


def _exit(status: int) -> None:
    """End the command with ``status`` (click's way, so that CliRunner sees it too)."""
    raise click.exceptions.Exit(status)


def _format_option(f: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table (for people), jsonl (one JSON object per line) or csv (with a header row).",
    )(f)


async def _print_items(
    settings: Settings,
    fetch: Callable[[AsyncInventClient], AsyncPager[T]],
    view: View[T],
    fmt: Format,
    limit: int | None,
) -> None:
    """Stream every item of ``fetch(client)`` to stdout in ``fmt`` (stop after ``limit``)."""
    sink = make_sink(fmt, view, sys.stdout, OutputConsole())
    count = 0
    async with open_client(settings) as client:
        async for item in fetch(client):
            sink.add(item)
            count += 1
            if count == limit:
                break
    sink.finish()


# --------------------------------------------------------------------------- contacts


@cli.group()
def contacts() -> None:
    """Contacts: import them from a file, add or remove a segment for many at once, list them."""


def _bulk_options(f: F) -> F:
    options = [
        click.option(
            "--ids",
            "ids_path",
            required=True,
            metavar="FILE",
            help=(
                "Contact ids, one per line ('-' reads stdin). Blank lines are ignored; "
                "a CSV file needs --column."
            ),
        ),
        click.option(
            "--column",
            metavar="NAME",
            help="Read the ids from this column of a CSV file with a header row.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            metavar="N",
            help="Requests in flight at once (default 32; the rate limit paces them anyway).",
        ),
        click.option(
            "--journal",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help="Record completed ids in FILE; a re-run with the same journal skips them.",
        ),
        click.option(
            "--failed-out",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help=(
                "Write the failed ids here, one per line (always written when given). "
                "Default: failed-<segment>.txt, only when some failed."
            ),
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress display."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _bulk(
    settings: Settings,
    action: Action,
    segment_id: str,
    ids_path: str,
    column: str | None,
    concurrency: int | None,
    journal: Path | None,
    failed_out: Path | None,
    quiet: bool,
) -> int:
    before_reading_ids(settings, ids_path)
    source = open_ids(ids_path, column=column, stdin=sys.stdin)
    return run_bulk_command(
        settings,
        action=action,
        segment_id=segment_id,
        source=source,
        concurrency=concurrency,
        journal=journal,
        failed_out=failed_out,
        quiet=quiet,
    )


@contacts.command()
@click.argument("segment_id")
@_bulk_options
@click.pass_obj
def tag(settings: Settings, /, segment_id: str, **options: Any) -> None:
    """Add segment SEGMENT_ID to every contact in --ids.

    Shows a live progress bar (done/total, rate, ETA, retries, failures) on stderr, then a
    summary. Exit status 0 when every id succeeded or was skipped (or the input has no ids:
    nothing is sent), 1 when some failed (their ids are written to a file ready for `--ids`),
    2 for bad input (a CSV file without --column, a bad journal), 3 on an authentication
    error, 4 when the API's rate limit asks to wait longer than the client waits (re-run
    later; with --journal it resumes), 130 on Ctrl-C and 143 on SIGTERM (the failed ids are
    written first, then the partial summary).
    """
    _exit(_bulk(settings, "tag", segment_id, **options))


@contacts.command()
@click.argument("segment_id")
@_bulk_options
@click.pass_obj
def untag(settings: Settings, /, segment_id: str, **options: Any) -> None:
    """Remove segment SEGMENT_ID from every contact in --ids.

    Same input, progress, summary, failed-id file and exit status as `contacts tag`.
    """
    _exit(_bulk(settings, "untag", segment_id, **options))


@contacts.command("import")
@click.argument("path", metavar="FILE")
@click.option(
    "--segment",
    "segment_id",
    required=True,
    metavar="SEGMENT_ID",
    help="Put every imported contact into this segment.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(IMPORT_FORMATS),
    help=(
        "How FILE is read: csv (a header row), jsonl (one JSON object per line) or txt (one "
        "email per line). Default: from the extension (.csv; .jsonl or .ndjson; else txt)."
    ),
)
@click.option(
    "--column",
    metavar="NAME",
    help="CSV: the email column (default: the one named email, e-mail, Email address, ...).",
)
@click.option(
    "--name-column",
    metavar="NAME",
    help="CSV: the contacts' name column (default: the one named name or full name).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help=(
        "Ask the API what the import would do (create, update, invalid), and the requests and "
        "time it takes; change nothing."
    ),
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Record the rows imported; a re-run with the same journal skips them.",
)
@click.option(
    "--failed-out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help=(
        "Write the failed rows here, in the input's format (always written when given). Default: "
        "failed-import-<segment>.<csv|jsonl|txt>, only when some failed."
    ),
)
@click.option(
    "--invalid-out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help=(
        "Write the invalid rows here, as CSV: line, reason, then the row's fields (always "
        "written when given). Default: invalid-import-<segment>.csv, only when some are."
    ),
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    metavar="N",
    help="Import requests in flight at once (default 2).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.pass_obj
def import_contacts(settings: Settings, /, path: str, **options: Any) -> None:
    """Import the contacts in FILE ('-' reads stdin): create or update one per row, 10,000
    rows a request, and put them into --segment.

    FILE is a CSV file with a header row (columns matched by name: email, name, user_id,
    contact_id, type; others ignored), JSON lines (one object per line with those keys), or
    one email per line. Each row is checked before it is sent: an invalid one (not an email
    address, no email, user id or contact id, a field over 256 characters) costs no request
    and is reported with its line. A row matching a contact by email or user id updates it,
    so a re-run never creates a contact twice.

    Shows a live progress bar on stderr, then a summary and the first invalid and failed rows
    with their lines. The failed rows (and the rows in flight when the import was stopped)
    go to failed-import-<segment>.<ext> in FILE's format, ready to import again; the invalid
    ones to invalid-import-<segment>.csv with their line and reason (a separate file: fix
    them there and import it, its line and reason columns are ignored).

    Exit status 0 when every row was created, updated or skipped (or FILE has no rows), 1
    when some are invalid or failed (also with --dry-run, which exits as the import would),
    2 for bad input before any request (unreadable file, not UTF-8, bad CSV, no email
    column) or after the rows before it were sent, 3 on an authentication error, 4 when the
    API's rate limit asks to wait longer than the client waits (re-run later; with --journal
    it resumes), 130 on Ctrl-C and 143 on SIGTERM (the row files are written first, then the
    partial summary).
    """
    _exit(run_import_command(settings, path=path, **options))


@contacts.command("list")
@click.option("--segment-id", metavar="SEGMENT_ID", help="Only contacts in this segment.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in ContactStatus], case_sensitive=False),
    help="Only contacts with this status.",
)
@click.option("--search", metavar="TEXT", help="Search contact names.")
@click.option("--email", metavar="EMAIL", help="Match a channel's email address.")
@click.option("--name", metavar="NAME", help="Match the contact's name.")
@click.option(
    "--unsubscribed/--subscribed",
    default=None,
    help="Only unsubscribed (or only subscribed) contacts.",
)
@click.option("--exclude-admins", is_flag=True, help="Leave out admin contacts.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Stop after N contacts.")
@_format_option
@click.pass_obj
def list_contacts(
    settings: Settings,
    segment_id: str | None,
    status: str | None,
    search: str | None,
    email: str | None,
    name: str | None,
    unsubscribed: bool | None,
    exclude_admins: bool,
    limit: int | None,
    fmt: Format,
) -> None:
    """List contacts, walking every page; jsonl and csv are written as pages arrive.

    Table columns: id, name, email or phone of the first channel, segments, blocked /
    unsubscribed. jsonl: the full contact as the SDK sees it (datetimes in ISO 8601).
    """

    def fetch(client: AsyncInventClient) -> AsyncPager[Any]:
        return client.contacts.list(
            segment_id=segment_id,
            status=None if status is None else status.upper(),
            search=search,
            email=email,
            name=name,
            unsubscribed=unsubscribed,
            exclude_admins=exclude_admins or None,
            take=min(limit or 100, 100),
        )

    asyncio.run(_print_items(settings, fetch, CONTACT_VIEW, fmt, limit))


# --------------------------------------------------------------------------- segments


@cli.group()
def segments() -> None:
    """Segments: list, create, and sync with a list of contacts."""


@segments.command("list")
@_format_option
@click.pass_obj
def list_segments(settings: Settings, fmt: Format) -> None:
    """List the organisation's segments (id, name, colour, number of contacts)."""

    def fetch(client: AsyncInventClient) -> AsyncPager[Segment]:
        return client.segments.list()

    asyncio.run(_print_items(settings, fetch, SEGMENT_VIEW, fmt, None))


@segments.command("create")
@click.argument("name")
@click.option(
    "--color",
    type=click.Choice([c.value for c in SegmentColor], case_sensitive=False),
    help="The segment's colour (the server picks one when left out).",
)
@click.pass_obj
def create_segment(settings: Settings, name: str, color: str | None) -> None:
    """Create a segment called NAME; print its id on stdout."""
    if not 1 <= len(name) <= 128:
        raise click.BadParameter("must be 1 to 128 characters", param_hint="NAME")

    async def create() -> Segment:
        async with open_client(settings) as client:
            if color is None:
                return await client.segments.create(name)
            return await client.segments.create(name, color=SegmentColor(color.lower()))

    segment = asyncio.run(create())
    click.echo(f"created segment {segment.name!r} ({segment.color})", err=True)
    click.echo(segment.id)


@segments.command("sync")
@click.argument("segment_id")
@click.option(
    "--ids",
    "ids_path",
    required=True,
    metavar="FILE",
    help=(
        "The contact ids the segment should hold, one per line ('-' reads stdin). Blank "
        "lines are ignored; a CSV file needs --column."
    ),
)
@click.option(
    "--column",
    metavar="NAME",
    help="Read the ids from this column of a CSV file with a header row.",
)
@click.option(
    "--exact",
    is_flag=True,
    help="Also remove the members that are not in --ids: the segment becomes exactly the input.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help=(
        "Print the plan (members now, to add, to remove, requests, time at the limit) and "
        "change nothing."
    ),
)
@click.option(
    "--verify",
    is_flag=True,
    help="Read the membership again at the end and report what differs from the input.",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Record the adds and removals done; a re-run with the same journal does not redo them.",
)
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Remove members without asking, however many (needed when stdin is not a terminal).",
)
@click.option(
    "--confirm-over",
    type=click.IntRange(min=0),
    default=CONFIRM_OVER,
    show_default=True,
    metavar="N",
    help="Ask before removing more than N members.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    metavar="N",
    help="Requests in flight at once (default 32; the rate limit paces them anyway).",
)
@click.option(
    "--failed-out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help=(
        "Write the ids whose add failed here (always written when given). Default: "
        "failed-<segment>.txt, only when some failed; failed removals go to "
        "failed-removals-<segment>.txt."
    ),
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.pass_obj
def sync_segment(settings: Settings, /, segment_id: str, **options: Any) -> None:
    """Make segment SEGMENT_ID hold the contacts in --ids, sending only what changes it.

    Reads the segment's members (100 a request; only the first page when the input is too
    small for the rest to pay off), prints the plan, then adds the ids that are not members
    and, with --exact, removes the members that are not in --ids, with a live progress bar,
    and prints a summary (added, removed, unchanged, failed, requests and time against the
    ideal at the rate limit). Removing more than --confirm-over members asks first; without
    a terminal to ask on, --yes is needed (exit status 2 otherwise). Exit status as for
    `contacts tag`: 0, 1 (some failed, or --verify found a difference), 2, 3, 4, 130, 143.
    """
    ids_path = options.pop("ids_path")
    before_reading_ids(settings, ids_path)
    _exit(run_segment_sync_command(settings, segment_id=segment_id, ids_path=ids_path, **options))


# --------------------------------------------------------------------------- broadcasts


@cli.group()
def broadcasts() -> None:
    """Broadcasts: list them, create one (a draft, or scheduled), send one."""


@broadcasts.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in BroadcastStatus], case_sensitive=False),
    help="Only broadcasts with this status.",
)
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Stop after N broadcasts.")
@_format_option
@click.pass_obj
def list_broadcasts(settings: Settings, status: str | None, limit: int | None, fmt: Format) -> None:
    """List broadcasts, walking every page; jsonl and csv are written as pages arrive.

    Table columns: id, name, status, segments (or every contact), when it is scheduled or
    started, and its contacts, sent and failed counts. jsonl: the full broadcast as the SDK
    sees it (datetimes in ISO 8601); csv: every counter.
    """

    def fetch(client: AsyncInventClient) -> AsyncPager[Broadcast]:
        return client.broadcasts.list(
            status=None if status is None else status.upper(), take=min(limit or 100, 100)
        )

    asyncio.run(_print_items(settings, fetch, BROADCAST_VIEW, fmt, limit))


@broadcasts.command("create")
@click.argument("name")
@click.option(
    "--segment",
    "segment_ids",
    multiple=True,
    metavar="SEGMENT_ID",
    help="Send it to this segment's contacts (repeat the option for up to 10 segments).",
)
@click.option("--all", "send_to_all", is_flag=True, help="Send it to every contact instead.")
@click.option(
    "--at",
    "scheduled_at",
    callback=parse_at,
    metavar="DATETIME",
    help=(
        "Schedule it for this time, ISO 8601 (2026-05-01T09:00:00Z, 2026-05-01T11:00+02:00; "
        "without an offset: UTC). Without --at it is a draft, sent by `broadcasts send`."
    ),
)
@click.pass_obj
def create_broadcast(
    settings: Settings,
    name: str,
    segment_ids: tuple[str, ...],
    send_to_all: bool,
    scheduled_at: datetime | None,
) -> None:
    """Create a broadcast called NAME to some segments (--segment) or to every contact (--all);
    print its id on stdout.

    Nothing is sent now: without --at the broadcast is a draft for `invent broadcasts send`,
    with --at it is scheduled (a time in the past is refused). Its messages (templates) are
    made in Invent's app. More than 10 segments, or --segment with --all, is a usage error
    (exit status 2) before any request.
    """
    run_create(
        settings, name, segment_ids=segment_ids, send_to_all=send_to_all, scheduled_at=scheduled_at
    )


@broadcasts.command("send")
@click.argument("broadcast_id")
@click.option("--to-contact", metavar="CONTACT_ID", help="Transactional: send it to this contact.")
@click.option(
    "--to-email",
    metavar="EMAIL",
    help="Transactional: send it to this email address (the API finds or creates its contact).",
)
@click.option(
    "--to-phone",
    metavar="PHONE",
    help="Transactional: send it to this phone number (the API finds or creates its contact).",
)
@click.option(
    "--to-channel",
    metavar="CHANNEL_ID",
    help="Transactional: send it through this exact contact channel.",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    callback=parse_variables,
    help="Transactional: a value of the broadcast's fields (repeat the option; the last KEY wins).",
)
@click.option(
    "--template",
    "template_ids",
    multiple=True,
    metavar="TEMPLATE_ID",
    help="Transactional: send only this template (repeat the option; default: every one).",
)
@_format_option
@click.pass_obj
def send_broadcast(
    settings: Settings,
    broadcast_id: str,
    to_contact: str | None,
    to_email: str | None,
    to_phone: str | None,
    to_channel: str | None,
    variables: dict[str, str],
    template_ids: tuple[str, ...],
    fmt: Format,
) -> None:
    """Send broadcast BROADCAST_ID: to its segments, or (transactional) to one recipient.

    Without a recipient it starts a marketing broadcast (a draft, a cancelled or a failed one)
    and prints it with its new status. With one of --to-contact, --to-email, --to-phone or
    --to-channel (only one) it fires a transactional broadcast to that recipient and prints
    one row per template: sent, skipped, failed or queued. Exit status 1 when a row failed
    or the API refused the send, 2 for mixed recipients or --var/--template without one.
    """
    recipient = {
        "contact_id": to_contact,
        "email": to_email,
        "phone": to_phone,
        "contact_channel_id": to_channel,
    }
    status = run_send(
        settings,
        broadcast_id,
        recipient=recipient,
        variables=variables,
        template_ids=template_ids,
        fmt=fmt,
    )
    _exit(status)


# --------------------------------------------------------------------------- demo


@cli.command()
@click.option(
    "--contacts",
    type=click.IntRange(min=1),
    default=3000,
    show_default=True,
    metavar="N",
    help="Contacts to seed and tag.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=int(SANDBOX_RATE_PER_MINUTE),
    show_default=True,
    metavar="R",
    help="Requests per minute the fake allows (the real API: 500); the client paces to R too.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    metavar="N",
    help="Requests in flight at once (default 32).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def demo(contacts: int, rate_limit: float, concurrency: int | None, quiet: bool) -> None:
    """Tag N contacts on an embedded FakeInvent: no account, key or network needed.

    Starts the fake in-process with a rate limit of R requests/minute (the real API's 500,
    scaled up: the defaults take about 30 seconds), seeds N contacts and a segment, tags them
    all through
    the SDK's bulk engine with a live progress bar, and prints the achieved rate against the
    limit, the 429s seen, the failures (0) and a check of the segment's contact count. The
    global options (--org, --base-url, --sandbox) do not apply.
    """
    _exit(run_demo(contacts=contacts, rate=rate_limit, concurrency=concurrency, quiet=quiet))
