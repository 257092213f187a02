"""What ``invent broadcasts create`` and ``send`` do, and how broadcasts and recipients are shown.

The click declarations stay in :mod:`.commands` (``broadcasts list`` needs nothing but the
view here); this module checks the options, makes the one SDK call and prints its answer.
Everything a command line can get wrong is a usage error (exit status 2) before any request:
recipients mixed, a bad ``--at`` or ``--var``, and what the SDK itself refuses before sending
(more than 10 segments, ``--segment`` with ``--all``), with the SDK's own message.

``create`` never passes ``scheduled_at=None``, which the API reads as "send now": without
``--at`` the broadcast is a draft, sent only by ``invent broadcasts send``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import click

from .._models import Broadcast, BroadcastRecipient
from .._serialize import to_dict
from ._output import Format, OutputConsole, View, make_sink
from ._runtime import EXIT_FAILURES, EXIT_OK, Settings, open_client

__all__ = [
    "BROADCAST_VIEW",
    "RECIPIENT_OPTIONS",
    "RECIPIENT_VIEW",
    "broadcast_record",
    "parse_at",
    "parse_variables",
    "recipient_record",
    "run_create",
    "run_send",
]

RECIPIENT_OPTIONS: Final = {
    "contact_id": "--to-contact",
    "email": "--to-email",
    "phone": "--to-phone",
    "contact_channel_id": "--to-channel",
}
"""The send_transactional parameter each recipient option of ``broadcasts send`` sets."""
_COUNTS: Final = (
    *("contacts_count", "recipients_count", "sent_count", "delivered_count", "opened_count"),
    *("click_count", "failed_count", "skipped_count", "unsubscribed_count"),
)


# --------------------------------------------------------------------------- rows


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def broadcast_record(broadcast: Broadcast) -> dict[str, str]:
    """A broadcast as flat text fields (the CSV columns); datetimes in ISO 8601 (UTC)."""
    wire = to_dict(broadcast)
    return {
        "id": broadcast.id,
        "name": _text(broadcast.name),
        "status": _text(broadcast.status),
        "send_to_all": _text(broadcast.send_to_all),
        "segment_ids": ";".join(s.id for s in broadcast.segments),
        "segment_names": ";".join(s.name or "" for s in broadcast.segments),
        "scheduled_at": _text(wire["scheduled_at"]),
        "started_at": _text(wire["started_at"]),
        "completed_at": _text(wire["completed_at"]),
        **{name: _text(wire[name]) for name in _COUNTS},
        "error_message": _text(broadcast.error_message),
        "created_at": _text(wire["created_at"]),
        "updated_at": _text(wire["updated_at"]),
    }


def _broadcast_cells(broadcast: Broadcast) -> tuple[str, ...]:
    if broadcast.send_to_all:
        audience = "every contact"
    else:
        audience = ", ".join(s.name or s.id for s in broadcast.segments)
    if broadcast.started_at is not None:
        when = f"started {_when(broadcast.started_at)}"
    elif broadcast.scheduled_at is not None:
        when = f"at {_when(broadcast.scheduled_at)}"
    else:
        when = ""
    return (
        broadcast.id,
        _text(broadcast.name),
        _text(broadcast.status),
        audience,
        when,
        _text(broadcast.contacts_count),
        _text(broadcast.sent_count),
        _text(broadcast.failed_count),
    )


def _outcome(row: BroadcastRecipient) -> str:
    if row.is_failed:
        return "failed"
    if row.is_skipped:
        return "skipped"
    if row.is_sent:
        return "sent"
    return "queued"


def recipient_record(row: BroadcastRecipient) -> dict[str, str]:
    """A recipient row of a transactional send as flat text fields (the CSV columns).

    ``outcome`` is ``failed``, ``skipped``, ``sent`` or ``queued`` (neither yet: a send in
    the background).
    """
    wire = to_dict(row)
    return {
        "id": _text(row.id),
        "broadcast_id": _text(row.broadcast_id),
        "template_id": _text(row.template_id),
        "contact_id": "" if row.contact is None else row.contact.id,
        "name": _text(row.name),
        "email": _text(row.email),
        "phone": _text(row.phone),
        "user_id": _text(row.user_id),
        "outcome": _outcome(row),
        "external_message_id": _text(row.external_message_id),
        "error_message": _text(row.error_message),
        "created_at": _text(wire["created_at"]),
    }


def _recipient_cells(row: BroadcastRecipient) -> tuple[str, ...]:
    who = " ".join(_text(v) for v in (row.name, row.email or row.phone or row.user_id) if v)
    return (
        _text(row.id),
        _text(row.template_id),
        who,
        _outcome(row),
        _text(row.error_message or row.external_message_id),
    )


BROADCAST_VIEW: Final = View[Broadcast](
    noun="broadcasts",
    header=(
        *("id", "name", "status", "send_to_all", "segment_ids", "segment_names"),
        *("scheduled_at", "started_at", "completed_at", *_COUNTS),
        *("error_message", "created_at", "updated_at"),
    ),
    record=broadcast_record,
    columns=(
        *("ID", "Name", "Status", "Segments", "Scheduled / started"),
        *("Contacts", "Sent", "Failed"),
    ),
    cells=_broadcast_cells,
)
RECIPIENT_VIEW: Final = View[BroadcastRecipient](
    noun="recipients",
    header=(
        *("id", "broadcast_id", "template_id", "contact_id", "name", "email", "phone"),
        *("user_id", "outcome", "external_message_id", "error_message", "created_at"),
    ),
    record=recipient_record,
    columns=("ID", "Template", "Recipient", "Outcome", "Message id / error"),
    cells=_recipient_cells,
)


def _print(items: Sequence[Any], view: View[Any], fmt: Format) -> None:
    sink = make_sink(fmt, view, sys.stdout, OutputConsole())
    for item in items:
        sink.add(item)
    sink.finish()


# --------------------------------------------------------------------------- options


def parse_at(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """The ``--at`` option as a timezone-aware datetime (a click callback).

    ISO 8601 (``2026-05-01T09:00:00Z``, ``2026-05-01 11:00+02:00``); one without an offset is
    UTC, as the SDK reads a naive datetime. A value that is not one is a usage error (exit
    status 2).
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date-time, such as 2026-05-01T09:00:00Z "
            "or 2026-05-01T11:00+02:00 (without an offset: UTC)",
            ctx,
            param,
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_variables(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, str]:
    """The ``--var KEY=VALUE`` options as a mapping (a click callback; a later KEY wins).

    A value without ``=``, or with nothing before it, is a usage error (exit status 2).
    """
    variables: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", ctx, param)
        variables[key.strip()] = text
    return variables


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """What the SDK refuses before sending (a ``ValueError`` or ``TypeError``) is a usage
    error, with the SDK's message."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc), click.get_current_context(silent=True)) from None


# --------------------------------------------------------------------------- create


def run_create(
    settings: Settings,
    name: str,
    *,
    segment_ids: Sequence[str],
    send_to_all: bool,
    scheduled_at: datetime | None,
) -> None:
    """Create a broadcast; print its id on stdout and what it is on stderr.

    Without ``scheduled_at`` the broadcast is a draft (``scheduled_at`` is left out of the
    request: None would send it at once). No segments and no ``send_to_all``, or a
    ``scheduled_at`` in the past, is a usage error before any request, as is what the SDK
    refuses before sending.
    """
    if not segment_ids and not send_to_all:
        raise click.UsageError(
            "say who receives it: --segment SEGMENT_ID (1 to 10 of them) or --all",
            click.get_current_context(silent=True),
        )
    if scheduled_at is not None and scheduled_at <= datetime.now(UTC):
        raise click.BadParameter(
            f"{scheduled_at.isoformat()} is in the past: the API may send the broadcast at "
            "once. Give a later time, or leave --at out for a draft.",
            click.get_current_context(silent=True),
            param_hint="'--at'",
        )
    options: dict[str, Any] = {}
    if segment_ids:
        options["segment_ids"] = list(segment_ids)
    if send_to_all:
        options["send_to_all"] = True
    if scheduled_at is not None:  # never None: the API reads a null as "send now"
        options["scheduled_at"] = scheduled_at

    async def create() -> Broadcast:
        async with open_client(settings) as client:
            with _usage_errors():
                created = await client.broadcasts.create(name, **options)
        return created

    broadcast = asyncio.run(create())
    status = _text(broadcast.status) or "created"
    if broadcast.scheduled_at is not None:
        detail = f"{status}, at {_when(broadcast.scheduled_at)}"
    elif status == "DRAFT":
        detail = f"a draft: `invent broadcasts send {broadcast.id}` sends it"
    else:
        detail = status
    click.echo(f"created broadcast {broadcast.name!r} ({detail})", err=True)
    click.echo(broadcast.id)


# --------------------------------------------------------------------------- send


def run_send(
    settings: Settings,
    broadcast_id: str,
    *,
    recipient: Mapping[str, str | None],
    variables: Mapping[str, str],
    template_ids: Sequence[str],
    fmt: Format,
) -> int:
    """Send a broadcast: a marketing send without a recipient, else a transactional one.

    Args:
        settings: The global options.
        broadcast_id: The broadcast.
        recipient: The recipient options by SDK parameter name (``contact_id``, ``email``,
            ``phone``, ``contact_channel_id``), None where not given: at most one given.
        variables: ``--var`` values (a transactional send only).
        template_ids: ``--template`` ids (a transactional send only).
        fmt: The output format of the broadcast or of the recipient rows.

    Returns:
        The exit status: 0, or 1 when a recipient row failed.
    """
    given = {key: value for key, value in recipient.items() if value is not None}
    ctx = click.get_current_context(silent=True)
    if len(given) > 1:
        names = " and ".join(RECIPIENT_OPTIONS.get(key, key) for key in given)
        raise click.UsageError(f"{names} cannot be used together: name one recipient", ctx)
    if not given and (variables or template_ids):
        raise click.UsageError(
            "--var and --template are for a transactional send: name its recipient with "
            "--to-contact, --to-email, --to-phone or --to-channel",
            ctx,
        )
    if not given:
        return _send_marketing(settings, broadcast_id, fmt)
    extra: dict[str, Any] = dict(given)
    if variables:
        extra["variables"] = dict(variables)
    if template_ids:
        extra["template_ids"] = list(template_ids)

    async def send() -> tuple[BroadcastRecipient, ...]:
        async with open_client(settings) as client:
            with _usage_errors():
                result = await client.broadcasts.send_transactional(broadcast_id, **extra)
        return result.recipients

    rows = asyncio.run(send())
    _print(rows, RECIPIENT_VIEW, fmt)
    failed = sum(_outcome(row) == "failed" for row in rows)
    skipped = sum(_outcome(row) == "skipped" for row in rows)
    if skipped:
        click.echo(
            f"note: {skipped:,} of {len(rows):,} messages skipped by the API "
            "(a blocked or unsubscribed contact, for one)",
            err=True,
        )
    if failed:
        click.echo(f"error: {failed:,} of {len(rows):,} messages failed", err=True)
        return EXIT_FAILURES
    return EXIT_OK


def _send_marketing(settings: Settings, broadcast_id: str, fmt: Format) -> int:
    async def send() -> Broadcast:
        async with open_client(settings) as client:
            return await client.broadcasts.send(broadcast_id)

    broadcast = asyncio.run(send())
    _print([broadcast], BROADCAST_VIEW, fmt)
    return EXIT_OK
