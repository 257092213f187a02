"""Output of the ``invent`` commands: rows, the three list formats, and job summaries.

Everything here is a pure function or a small writer over a text stream, so it is tested
without a server. List output is streamed: JSON lines and CSV are written item by item as pages
arrive; only the human-facing table collects its rows first. Tables are drawn with rich, whose
cells are built with :class:`rich.text.Text` so that data never gets read as markup; when the
output is not a terminal rich writes no colour codes.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Final, Generic, Literal, Protocol, TypeVar

import attrs
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._exceptions import APIStatusError
from .._jobs.results import BulkFailure, BulkReport, SegmentSyncPlan, SegmentSyncReport
from .._jobs.segment_sync_plan import estimate_seconds, format_duration
from .._models import Contact, Segment
from .._serialize import to_dict

__all__ = [
    "CONTACT_VIEW",
    "OutputConsole",
    "FORMATS",
    "SEGMENT_VIEW",
    "Sink",
    "View",
    "contact_record",
    "failure_row",
    "failures_table",
    "job_summary",
    "json_line",
    "make_sink",
    "plan_lines",
    "silence_stdout",
    "segment_record",
    "sync_summary",
]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
Format = Literal["table", "jsonl", "csv"]
FORMATS: Final = ("table", "jsonl", "csv")
FAILURES_SHOWN: Final = 10
_MESSAGE_WIDTH: Final = 120


class OutputConsole(Console):
    """A rich console that lets a closed pipe surface as ``BrokenPipeError``.

    Rich's own reaction (``SystemExit(1)``) would make ``invent contacts list | head -3``
    fail; the root command turns the ``BrokenPipeError`` into a quiet exit 0.
    """

    def on_broken_pipe(self) -> None:
        """Stop writing and raise ``BrokenPipeError`` for the root command to handle."""
        self.quiet = True
        raise BrokenPipeError


# --------------------------------------------------------------------------- rows


def _flag(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


def contact_record(contact: Contact) -> dict[str, str]:
    """A contact as flat text fields (the CSV columns); the first channel gives email/phone."""
    channel = contact.channels[0] if contact.channels else None
    wire = to_dict(contact)
    return {
        "id": contact.id,
        "name": contact.name or "",
        "email": (channel.email if channel else None) or "",
        "phone": (channel.phone if channel else None) or "",
        "channel_type": str(channel.type) if channel else "",
        "user_id": channel.user_id if channel else "",
        "segment_ids": ";".join(s.id for s in contact.segments),
        "segment_names": ";".join(s.name for s in contact.segments),
        "blocked": _flag(contact.blocked),
        "unsubscribed": _flag(contact.unsubscribed),
        "is_admin": _flag(contact.is_admin),
        "created_at": wire["created_at"],
        "updated_at": wire["updated_at"],
    }


def _contact_cells(contact: Contact) -> tuple[str, ...]:
    record = contact_record(contact)
    flags = [name for name in ("blocked", "unsubscribed") if record[name] == "true"]
    return (
        record["id"],
        record["name"],
        record["email"] or record["phone"],
        ", ".join(s.name for s in contact.segments),
        ", ".join(flags),
    )


def segment_record(segment: Segment) -> dict[str, str]:
    """A segment as flat text fields (the CSV columns)."""
    wire = to_dict(segment)
    return {
        "id": segment.id,
        "name": segment.name,
        "color": "" if segment.color is None else str(segment.color),
        "contacts_count": str(segment.contacts_count),
        "boards": "" if segment.boards is None else str(len(segment.boards)),
        "created_at": wire["created_at"],
        "updated_at": wire["updated_at"],
    }


def _segment_cells(segment: Segment) -> tuple[str, ...]:
    record = segment_record(segment)
    return (record["id"], record["name"], record["color"], record["contacts_count"])


@attrs.frozen(kw_only=True)
class View(Generic[T]):
    """How one kind of item is shown: CSV columns and table columns.

    Attributes:
        noun: Plural name, for the empty-table message (``contacts``).
        header: The CSV columns, in order: the keys of ``record``.
        record: Item to CSV fields.
        columns: Table column titles.
        cells: Item to table cells, one per column.
    """

    noun: str
    header: tuple[str, ...]
    record: Callable[[T], Mapping[str, str]]
    columns: tuple[str, ...]
    cells: Callable[[T], tuple[str, ...]]


CONTACT_VIEW: Final = View[Contact](
    noun="contacts",
    header=(
        *("id", "name", "email", "phone", "channel_type", "user_id", "segment_ids"),
        *("segment_names", "blocked", "unsubscribed", "is_admin", "created_at", "updated_at"),
    ),
    record=contact_record,
    columns=("ID", "Name", "Email / phone", "Segments", "Status"),
    cells=_contact_cells,
)
SEGMENT_VIEW: Final = View[Segment](
    noun="segments",
    header=("id", "name", "color", "contacts_count", "boards", "created_at", "updated_at"),
    record=segment_record,
    columns=("ID", "Name", "Colour", "Contacts"),
    cells=_segment_cells,
)


def json_line(item: object) -> str:
    """One JSON line: the SDK's unstructured form of a model (datetimes in ISO 8601)."""
    return json.dumps(to_dict(item), ensure_ascii=False)


# --------------------------------------------------------------------------- writers


class Sink(Protocol[T_contra]):
    """Receives items one at a time; :meth:`finish` ends the output."""

    def add(self, item: T_contra) -> None:
        """Write (or keep) one item."""

    def finish(self) -> None:
        """Write whatever is left (a table is drawn here)."""


class _JsonLinesSink(Generic[T]):
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def add(self, item: T) -> None:
        self._stream.write(json_line(item) + "\n")

    def finish(self) -> None:
        self._stream.flush()


class _CsvSink(Generic[T]):
    def __init__(self, stream: IO[str], view: View[T]) -> None:
        self._stream = stream
        self._record = view.record
        self._writer = csv.DictWriter(stream, fieldnames=view.header, lineterminator="\n")
        self._writer.writeheader()

    def add(self, item: T) -> None:
        self._writer.writerow(self._record(item))

    def finish(self) -> None:
        self._stream.flush()


class _TableSink(Generic[T]):
    def __init__(self, console: Console, view: View[T]) -> None:
        self._console = console
        self._view = view
        self._rows: list[tuple[str, ...]] = []

    def add(self, item: T) -> None:
        self._rows.append(self._view.cells(item))

    def finish(self) -> None:
        if not self._rows:
            self._console.print(f"no {self._view.noun}")
            return
        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        for index, title in enumerate(self._view.columns):
            table.add_column(title, no_wrap=index == 0)
        for row in self._rows:
            table.add_row(*(Text(cell) for cell in row))
        self._console.print(table)
        count = len(self._rows)
        self._console.print(f"{count:,} {self._view.noun if count != 1 else self._view.noun[:-1]}")


def make_sink(fmt: Format, view: View[T], stream: IO[str], console: Console) -> Sink[T]:
    """The writer for ``--format``: ``table`` (rich), ``jsonl`` or ``csv``."""
    if fmt == "jsonl":
        return _JsonLinesSink(stream)
    if fmt == "csv":
        return _CsvSink(stream, view)
    return _TableSink(console, view)


# --------------------------------------------------------------------------- bulk summaries


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {plural or noun + 's'}"


def job_summary(
    report: BulkReport,
    *,
    action: str,
    segment_id: str,
    skipped: Mapping[str, int],
    stopped: str | None = None,
) -> list[str]:
    """The summary lines of a tag/untag job.

    Args:
        report: The (possibly partial) report.
        action: ``tag`` or ``untag``.
        segment_id: The segment.
        skipped: Skipped items by reason (``journal``, ``duplicate``) as seen in the results;
            in-flight items stopped by an interruption are counted from the report.
        stopped: Why the job ended early (``interrupted``, ``aborted``, ...), or None.
    """
    head = (
        f"{action} {segment_id}: {report.succeeded:,} succeeded, {report.failed:,} failed, "
        f"{report.skipped:,} skipped of {_count(report.total, 'id')}"
    )
    if stopped:
        head += f" ({stopped})"
    lines = [
        head,
        f"time {report.elapsed:.2f}s, {report.rate:,.1f} ids/s, "
        f"{_count(report.retries, 'retry', 'retries')}, "
        f"{report.rate_limited:,} rate-limited (429)",
    ]
    reasons = {
        "already done (journal)": skipped.get("journal", 0),
        "duplicate": skipped.get("duplicate", 0),
        "cancelled while in flight": len(report.cancelled_ids),
    }
    shown = [f"{n:,} {why}" for why, n in reasons.items() if n]
    if shown:
        lines.append("skipped: " + ", ".join(shown))
    return lines


def _at_rate(seconds: float | None, rate: float | None) -> str:
    if seconds is None or rate is None:
        return "no time estimate (no rate limit)"
    return f"{format_duration(seconds)} at {rate:,.0f}/min"


def plan_lines(plan: SegmentSyncPlan, *, source: str) -> list[str]:
    """What ``segments sync`` will do (or, with ``--dry-run``, would do), before any write.

    Args:
        plan: The dry run's plan.
        source: The name of the ids input (a file name, ``<stdin>``).
    """
    extra = []
    if plan.duplicates:
        extra.append(_count(plan.duplicates, "duplicate"))
    if plan.journal:
        extra.append(f"{plan.journal:,} done by an earlier run (journal)")
    detail = f" ({', '.join(extra)})" if extra else ""
    lines = [
        f"segment {plan.segment_id}: {_count(plan.members, 'member')} now; "
        f"{_count(plan.inputs, 'id')} in {source}{detail}",
        f"  to add     {plan.to_add:,}",
    ]
    if plan.remove_others:
        lines.append(f"  to remove  {plan.to_remove:,}")
    lines += [
        f"  unchanged  {plan.unchanged:,}",
        f"  strategy   {plan.strategy}: {plan.reason}",
    ]
    parts = [
        _count(plan.read_requests, "membership read"),
        _count(plan.write_requests, "write"),
    ]
    if plan.verify_requests:
        parts.append(_count(plan.verify_requests, "verify read"))
    lines.append(
        f"  requests   {plan.requests:,} ({', '.join(parts)}): "
        f"{_at_rate(plan.estimated_seconds, plan.rate_per_minute)}"
    )
    return lines


def sync_summary(
    report: SegmentSyncReport,
    *,
    stopped: str | None = None,
    plan_requests: int = 0,
    plan_seconds: float = 0.0,
) -> list[str]:
    """The summary lines of a ``segments sync`` run (possibly partial).

    Args:
        report: The (partial) report.
        stopped: Why the sync ended early (``interrupted``, ...), or None.
        plan_requests: Requests the plan sent before the run (its membership reads, which
            the run reused): counted in the totals and the ideal time.
        plan_seconds: How long the plan took: counted in the time.
    """
    head = (
        f"sync {report.segment_id}: {report.added:,} added, {report.removed:,} removed, "
        f"{report.unchanged:,} unchanged, {report.failed + report.remove_failed:,} failed, "
        f"{report.skipped:,} skipped of {_count(report.total, 'id')}"
    )
    if stopped:
        head += f" ({stopped})"
    writes = report.requests_sent - report.read_requests
    reads = report.read_requests + plan_requests
    requests = report.requests_sent + plan_requests
    ideal = estimate_seconds(requests, report.rate_per_minute)
    elapsed = report.elapsed + plan_seconds
    versus = ""
    if ideal:
        versus = (
            f" = {elapsed / ideal:.2f} x the ideal {format_duration(ideal)} "
            f"at {report.rate_per_minute:,.0f}/min"
        )
    lines = [
        head,
        f"requests {requests:,} ({_count(reads, 'read')}, {_count(writes, 'write')}; "
        f"{_count(report.retries, 'retry', 'retries')}, 429s: {report.rate_limited:,}) "
        f"in {format_duration(elapsed)}{versus}",
        f"strategy {report.strategy}: {report.reason}",
    ]
    skipped = {
        "duplicate": report.duplicates,
        "already done (journal)": report.journal,
        "cancelled while in flight": len(report.cancelled_ids),
    }
    shown = [f"{n:,} {why}" for why, n in skipped.items() if n]
    if shown:
        lines.append("skipped: " + ", ".join(shown))
    if report.remove_failed or report.gone or report.remove_skipped:
        lines.append(
            f"removals: {report.removed:,} removed, {report.gone:,} already gone, "
            f"{report.remove_failed:,} failed, {report.remove_skipped:,} skipped "
            f"of {report.removals:,}"
        )
    kinds: dict[str, int] = {}
    for change in report.changed_meanwhile:
        if change.contact_id is not None or change.kind == "read":
            kinds[change.kind] = kinds.get(change.kind, 0) + 1
    if report.changed_meanwhile:
        words = {
            "gone": "already gone when removed (404)",
            "read": "changes while the membership was read",
            "left": "no longer members though added earlier (journal)",
            "back": "members again though removed earlier (journal)",
        }
        lines.append(
            "changed meanwhile: " + ", ".join(f"{n:,} {words[kind]}" for kind, n in kinds.items())
        )
        lines.extend(f"  {c.detail}" for c in report.changed_meanwhile if c.kind == "read")
    if report.verify_error is not None:
        lines.append(f"verify: not done ({report.verify_error})")
    elif report.verified:
        if report.missing or report.unexpected:
            problems = [f"{len(report.missing):,} input ids are not members"]
            if report.remove_others:
                problems.append(f"{len(report.unexpected):,} members are not in the input")
            lines.append("verify: MISMATCH: " + ", ".join(problems))
            lines.extend(f"  missing    {i}" for i in report.missing[:FAILURES_SHOWN])
            lines.extend(f"  unexpected {i}" for i in report.unexpected[:FAILURES_SHOWN])
        else:
            lines.append("verify: OK, the segment holds what was asked")
    return lines


def failure_row(failure: BulkFailure) -> tuple[str, str, str, str]:
    """One failed item as (id, error class, HTTP status or empty, short message)."""
    error = failure.error
    status = ""
    message = str(error)
    if isinstance(error, APIStatusError):
        status = str(error.status)
        body = error.body
        if isinstance(body, Mapping) and isinstance(body.get("message"), str):
            message = body["message"]
    if len(message) > _MESSAGE_WIDTH:
        message = message[: _MESSAGE_WIDTH - 1] + "…"
    return failure.contact_id, type(error).__name__, status, message


def failures_table(failures: Sequence[BulkFailure], limit: int = FAILURES_SHOWN) -> Table:
    """A table of the first ``limit`` failures (id, error, status, message)."""
    title = "failures" if len(failures) <= limit else f"first {limit} of {len(failures):,} failures"
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for name in ("ID", "Error", "Status", "Message"):
        table.add_column(name, no_wrap=name != "Message")
    for failure in failures[:limit]:
        table.add_row(*(Text(cell) for cell in failure_row(failure)))
    return table


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests): nothing to do
        pass
