"""``invent contacts import``: a file of contacts into the API, 10,000 rows a request.

The rows (:mod:`._import_input`: CSV, JSON lines, one email per line) are read by a daemon
thread (:class:`~._ids.BackgroundIds`) and handed to the SDK's import job
(``client.contacts.import_contacts``) a block at a time; the job checks each row, sends
them, and reports every row's outcome to ``on_row`` with its position, which the file's
:class:`~._import_input.LineMap` turns into its line.

As the rows come, the failed ones (and those in flight when the job was stopped) are written
to ``failed-import-<segment>.<csv|jsonl|txt>`` (or ``--failed-out``) in the input's format,
ready for a re-run, and the invalid ones, with their line and reason, to
``invalid-import-<segment>.csv`` (or ``--invalid-out``). Both are written beside their place
and moved over it at the end, never over the input of a run that stopped early.

The job runs as ``contacts tag`` runs (:mod:`._job_run`): Ctrl-C and SIGTERM stop it with a
partial summary, a 401/403 or a long 429 aborts it (exit 3, 4), an input error after the
first rows ends it once the rows read are sent (exit 2). Rows invalid or failed: exit 1,
also for ``--dry-run``, which exits as the import would.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs
import click
from rich.table import Table
from rich.text import Text

from .._exceptions import APIStatusError
from .._jobs.import_results import (
    ImportAbortedError,
    ImportPlan,
    ImportReport,
    ImportRowResult,
    ImportStatus,
    partial_import_report,
)
from .._jobs.segment_sync_plan import format_duration
from ._ids import STDIN, BackgroundIds
from ._import_input import ImportFormat, LineMap, RowInput, Unparsed, format_of, open_rows
from ._job_run import (
    JobOutcome,
    ReplacingFile,
    check_writable,
    default_failed_path,
    execute,
    exit_status,
    is_terminal,
    same_file,
    stop_reason,
)
from ._output import OutputConsole, silence_stdout
from ._progress import Reporter, make_reporter
from ._runtime import EXIT_OK, Settings, open_client, read_api_key
from ._signals import StopSignals

__all__ = [
    "ROW_COLUMNS",
    "ImportRun",
    "failed_rows_path",
    "import_summary",
    "invalid_rows_path",
    "plan_summary",
    "problem_rows",
    "run_import_command",
]

ROW_COLUMNS: Final = ("email", "name", "user_id", "contact_id", "type")
"""The columns of a CSV file of failed rows (and, after ``line`` and ``reason``, of invalid
rows): the row fields, read back by name."""
INVALID_COLUMNS: Final = ("line", "reason", *ROW_COLUMNS)
PROBLEMS_SHOWN: Final = 10
_REASON_WIDTH: Final = 100


def failed_rows_path(segment_id: str, fmt: ImportFormat) -> Path:
    """``failed-import-<segment>.<csv|jsonl|txt>`` in the current directory."""
    return default_failed_path(segment_id, "failed-import").with_suffix(f".{fmt}")


def invalid_rows_path(segment_id: str) -> Path:
    """``invalid-import-<segment>.csv`` in the current directory."""
    return default_failed_path(segment_id, "invalid-import").with_suffix(".csv")


def _csv_line(values: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def _fields(item: object) -> Mapping[str, object]:
    """The row fields of an input item as read (an email, a mapping, an unparsed line)."""
    if isinstance(item, str):
        return {"email": item}
    if isinstance(item, Mapping):
        return item
    return {}


def _cell(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


class _RowFile:
    """One file of rows a run writes as they come (see :class:`~._job_run.ReplacingFile`)."""

    def __init__(self, path: Path, *, explicit: bool, header: Sequence[str] | None) -> None:
        self.path = path
        self.explicit = explicit
        self.count = 0
        self.written = False
        self._header = header
        self._file = ReplacingFile(path)

    def add(self, text: str) -> None:
        if not self.count and self._header is not None:
            self._file.write(_csv_line(self._header).encode())
        self.count += 1
        self._file.write(text.encode("utf-8", "surrogateescape"))

    def finish(self, *, complete: bool, source: str) -> str | None:
        """Put the file in place (when rows were written, or it was named); return what to
        say on stderr when it was not (it is the input of a run that stopped early)."""
        if not self.count and not self.explicit:
            self._file.discard()
            return None
        if not complete and same_file(self.path, source):
            self._file.discard()
            return f"{self.path} is the input of this import: left as it is"
        if not self.count and self._header is not None:
            self._file.write(_csv_line(self._header).encode())
        self._file.commit()
        self.written = True
        return None

    def discard(self) -> None:
        self._file.discard()


@attrs.define
class ImportRun:
    """What an import leaves behind, outside the event loop (it outlives ``asyncio.run``).

    Attributes:
        lines: The input's line of each row.
        failed: The failed rows' file (None: a dry run writes none).
        invalid: The invalid rows' file.
        format: The input's format (the failed rows are written in it).
        report: The report (or plan), partial when the job stopped early; None before it ran.
        skipped: Skipped rows by reason (``journal``, ``duplicate``, ``cancelled``).
    """

    lines: LineMap
    failed: _RowFile | None
    invalid: _RowFile
    format: ImportFormat
    report: ImportReport | ImportPlan | None = None
    skipped: Counter[str] = attrs.field(factory=Counter)

    def started(self) -> bool:
        """Whether the job has taken rows, so that there is something to report."""
        return self.report is not None and self.report.total > 0

    def on_row(self, result: ImportRowResult) -> None:
        """Write a failed, cancelled or invalid row to its file; count the skipped ones."""
        status = result.status
        if status is ImportStatus.CREATED or status is ImportStatus.UPDATED:
            return
        if status is ImportStatus.SKIPPED:
            reason = result.reason or ""
            kind = "duplicate" if reason.startswith("duplicate") else reason
            self.skipped[kind] += 1
            if kind != "cancelled":
                return
        if status is ImportStatus.INVALID:
            self.invalid.add(self._invalid_line(result))
        elif self.failed is not None:
            self.failed.add(self._failed_line(result))

    def _invalid_line(self, result: ImportRowResult) -> str:
        line = self.lines.line_of(result.position)
        fields = _fields(result.item)
        values = [str(line), _reason(result), *(_cell(fields.get(c)) for c in ROW_COLUMNS)]
        return _csv_line(values)

    def _failed_line(self, result: ImportRowResult) -> str:
        row = result.row if result.row is not None else _fields(result.item)
        if self.format == "txt":
            return f"{_cell(row.get('email'))}\n"
        if self.format == "jsonl":
            return json.dumps(dict(row), ensure_ascii=False) + "\n"
        return _csv_line([_cell(row.get(column)) for column in ROW_COLUMNS])


def _reason(result: ImportRowResult) -> str:
    item = result.item
    if isinstance(item, Unparsed):
        text = item.text if len(item.text) <= 60 else item.text[:59] + "…"
        return f"{item.reason}: {text!r}"
    return result.reason or ""


# --------------------------------------------------------------------------- summaries


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def import_summary(
    report: ImportReport, *, segment_id: str, skipped: Mapping[str, int], stopped: str | None
) -> list[str]:
    """The summary lines of an import (possibly partial: ``stopped`` says why)."""
    head = (
        f"import into {segment_id}: {report.created:,} created, {report.updated:,} updated, "
        f"{report.invalid:,} invalid, {report.failed:,} failed, {report.skipped:,} skipped "
        f"of {_count(report.total, 'row')}"
    )
    if stopped:
        head += f" ({stopped})"
    done = report.total - skipped.get("cancelled", 0)
    rate = done / report.elapsed if report.elapsed > 0 else 0.0
    lines = [
        head,
        f"time {report.elapsed:.2f}s, {rate:,.1f} rows/s, {_count(report.requests, 'request')}, "
        f"{report.retries:,} retried, {report.rate_limited:,} rate-limited (429)",
    ]
    reasons = {
        "already imported (journal)": skipped.get("journal", 0),
        "duplicate in its request": skipped.get("duplicate", 0),
        "cancelled while in flight": skipped.get("cancelled", 0),
    }
    shown = [f"{n:,} {why}" for why, n in reasons.items() if n]
    if shown:
        lines.append("skipped: " + ", ".join(shown))
    return lines


def plan_summary(plan: ImportPlan, *, segment_id: str, source: str) -> list[str]:
    """What the import would do (``--dry-run``), from the API's dry run of every request."""
    lines = [
        f"dry run of {source} into {segment_id}: {_count(plan.total, 'row')}",
        f"  would create  {plan.created:,}",
        f"  would update  {plan.updated:,}",
        f"  invalid       {plan.invalid:,}",
    ]
    if plan.failed:
        lines.append(f"  failed        {plan.failed:,} (their dry run failed)")
    if plan.skipped:
        lines.append(f"  skipped       {plan.skipped:,} (duplicates in a request, journal)")
    budget = plan.budget_seconds
    at = (
        f"{format_duration(budget)} at {plan.rate_per_minute:,.0f}/min"
        if budget is not None and plan.rate_per_minute
        else "no time estimate (no rate limit)"
    )
    lines.append(f"  requests      {plan.import_requests:,} to import: {at}")
    return lines


def problem_rows(
    problems: Sequence[ImportRowResult], lines: LineMap
) -> list[tuple[str, str, str, str]]:
    """Each invalid or failed row as (line, status, what it is for, reason)."""
    rows = []
    for problem in problems:
        fields = problem.row if problem.row is not None else _fields(problem.item)
        who = next(
            (_cell(fields.get(k)) for k in ("email", "user_id", "contact_id") if fields.get(k)), ""
        )
        reason = _reason(problem)
        error = problem.error
        if isinstance(error, APIStatusError):
            body = error.body
            message = body.get("message") if isinstance(body, Mapping) else None
            reason = f"{error.status} {type(error).__name__}: {message or error}"
        if len(reason) > _REASON_WIDTH:
            reason = reason[: _REASON_WIDTH - 1] + "…"
        rows.append((str(lines.line_of(problem.position)), problem.status.value, who, reason))
    return rows


def _problems_table(report: ImportReport | ImportPlan, lines: LineMap) -> Table:
    count = report.invalid + report.failed
    title = (
        "invalid and failed rows"
        if count <= PROBLEMS_SHOWN
        else f"first {PROBLEMS_SHOWN} of {count:,} invalid and failed rows"
    )
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for name in ("Line", "Status", "Row", "Reason"):
        table.add_column(
            name, no_wrap=name != "Reason", justify="right" if name == "Line" else "left"
        )
    for row in problem_rows(report.problems[:PROBLEMS_SHOWN], lines):
        table.add_row(*(Text(cell) for cell in row))
    return table


# --------------------------------------------------------------------------- the run


async def _import_main(
    settings: Settings,
    run: ImportRun,
    rows: BackgroundIds[object],
    *,
    total: int | None,
    segment_id: str,
    dry_run: bool,
    journal: Path | None,
    concurrency: int | None,
    reporter: Reporter,
) -> ImportReport | ImportPlan:
    async with open_client(settings) as client:
        try:
            report = await client.contacts.import_contacts(
                rows,
                segment_id=segment_id,
                dry_run=dry_run,
                journal=journal,
                on_progress=reporter.update,
                on_row=run.on_row,
                total=total,
                concurrency=concurrency,
            )
        except BaseException as exc:
            run.report = partial_import_report(exc)
            raise
    run.report = report
    return report


def _before_reading(settings: Settings, path: str) -> None:
    """The API key before reading (and counting) what may be millions of rows; say that stdin
    is being read when it is a terminal."""
    if not settings.sandbox:
        read_api_key()
    if path == STDIN and is_terminal(sys.stdin):
        end = "Ctrl-Z then Enter" if sys.platform == "win32" else "Ctrl-D"
        click.echo(f"reading rows from stdin (end with {end})", err=True)


def run_import_command(
    settings: Settings,
    *,
    path: str,
    segment_id: str,
    fmt: str | None,
    column: str | None,
    name_column: str | None,
    dry_run: bool,
    journal: Path | None,
    failed_out: Path | None,
    invalid_out: Path | None,
    concurrency: int | None,
    quiet: bool,
) -> int:
    """Run ``contacts import``; print the summary (or the plan); return the exit status.

    The row files are put in place before anything is printed, with SIGINT and SIGTERM
    deferred until they are.
    """
    _before_reading(settings, path)
    form = format_of(path, fmt)
    with StopSignals() as signals:
        check_writable(journal, failed_out, invalid_out)
        source = open_rows(path, fmt=form, column=column, name_column=name_column, stdin=sys.stdin)
        with contextlib.closing(source):
            run = ImportRun(
                lines=source.lines,
                failed=None
                if dry_run
                else _RowFile(
                    failed_out or failed_rows_path(segment_id, form),
                    explicit=failed_out is not None,
                    header=ROW_COLUMNS if form == "csv" else None,
                ),
                invalid=_RowFile(
                    invalid_out or invalid_rows_path(segment_id),
                    explicit=invalid_out is not None,
                    header=INVALID_COLUMNS,
                ),
                format=form,
            )
            if source.total == 0:  # a regular file without rows: no request at all
                _finish_files(run, complete=True, source=source.name)
                click.echo(f"no rows in {source.name}: nothing to do", err=True)
                return EXIT_OK
            return _run_and_report(
                settings,
                run,
                source,
                signals,
                segment_id=segment_id,
                dry_run=dry_run,
                journal=journal,
                concurrency=concurrency,
                quiet=quiet,
            )


def _finish_files(run: ImportRun, *, complete: bool, source: str) -> list[str]:
    """Put the row files in place; return what to say on stderr about those left alone."""
    said = []
    for file in (run.failed, run.invalid):
        if file is not None and (message := file.finish(complete=complete, source=source)):
            said.append(message)
    return said


def _run_and_report(
    settings: Settings,
    run: ImportRun,
    source: RowInput,
    signals: StopSignals,
    *,
    segment_id: str,
    dry_run: bool,
    journal: Path | None,
    concurrency: int | None,
    quiet: bool,
) -> int:
    what = "dry run" if dry_run else "import"
    reporter = make_reporter(
        OutputConsole(stderr=True),
        quiet=quiet,
        description=f"{what} {segment_id}",
        total=source.total,
    )
    rows: BackgroundIds[object] = BackgroundIds(source.batches)
    left_alone: list[str] = []
    with signals.hold():
        try:
            main = _import_main(
                settings,
                run,
                rows,
                total=source.total,
                segment_id=segment_id,
                dry_run=dry_run,
                journal=journal,
                concurrency=concurrency,
                reporter=reporter,
            )
            try:
                _, stopped = execute(main, reporter, signals, started=run.started)
            finally:
                rows.close()
                source.close()
            report = run.report
            assert report is not None
            if isinstance(stopped, ImportAbortedError):  # as tag: no partial files
                for file in (run.failed, run.invalid):
                    if file is not None:
                        file.discard()
            else:
                left_alone = _finish_files(run, complete=stopped is None, source=source.name)
        except BaseException:
            for file in (run.failed, run.invalid):
                if file is not None:
                    file.discard()
            raise
    if report.total == 0 and stopped is None:  # stdin or a pipe without rows
        click.echo(f"no rows in {source.name}: nothing to do", err=True)
        return EXIT_OK
    pipe_closed = False
    try:
        if isinstance(report, ImportPlan):
            lines = plan_summary(report, segment_id=segment_id, source=source.name)
        else:
            lines = import_summary(
                report, segment_id=segment_id, skipped=run.skipped, stopped=stop_reason(stopped)
            )
        for line in lines:
            click.echo(line)
        if report.problems:
            OutputConsole().print(_problems_table(report, run.lines))
        if isinstance(report, ImportPlan) and stopped is None:
            sent = _count(report.requests, "request")
            click.echo(f"dry run: nothing was changed ({sent} sent)")
    except BrokenPipeError:  # `invent contacts import ... | head`: the exit status still counts
        silence_stdout()
        pipe_closed = True
    if not isinstance(stopped, ImportAbortedError):
        for message in _saved(run, segment_id):
            click.echo(message, err=pipe_closed)
    for message in left_alone:
        click.echo(message, err=True)
    resume = (
        f": re-run the same command to resume from {journal}"
        if journal
        else (
            ": re-run the same command to finish (it sends every row again: the rows "
            "imported are updated, not created twice; with --journal FILE an import keeps "
            "its place and resumes where it stopped)"
        )
    )
    ok = not (report.invalid or report.failed)
    return exit_status(JobOutcome(stopped=stopped, ok=ok, resume=resume))


def _saved(run: ImportRun, segment_id: str) -> list[str]:
    said = []
    failed, invalid = run.failed, run.invalid
    if failed is not None and failed.count and failed.written:
        said.append(
            f"{_count(failed.count, 'failed row')} written to {failed.path} (re-run them with: "
            f"invent contacts import {failed.path} --segment {segment_id})"
        )
    if invalid.count and invalid.written:
        said.append(
            f"{_count(invalid.count, 'invalid row')} written to {invalid.path}, with the line "
            "and reason of each"
        )
    return said
