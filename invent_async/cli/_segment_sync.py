"""``invent segments sync``: plan, confirm, run, summarise.

1. The plan: ``sync_segment(..., dry_run=True)`` reads the membership (or only its first
   page, when reading it is not worth it) and every id of the input, and the plan is printed
   before anything is written. Ids from stdin or a pipe are first copied to a temporary file,
   so that they can be read a second time.
2. ``--dry-run`` stops there. A sync that would remove more than ``--confirm-over`` members
   (``--exact``) asks first, on the terminal; with no terminal to ask on (stdin is not one,
   or it carries the ids) it refuses with exit status 2 unless ``--yes``.
3. The run reuses the plan's membership snapshot (the membership is not read twice) and
   reads the ids again, with the progress display. Ctrl-C, SIGTERM and an aborted job end it
   as they end ``contacts tag``: the failed ids are written first, then the partial summary.
4. Failed adds go to ``failed-<segment>.txt`` (or ``--failed-out``), failed removals to
   ``failed-removals-<segment>.txt``; a plain re-run of the same sync retries both, sending
   only what is still needed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, Any, Final

import attrs
import click

from .._jobs.results import (
    BulkAbortedError,
    SegmentSyncPlan,
    SegmentSyncReport,
    partial_sync_report,
)
from ._ids import STDIN, BackgroundIds, IdInput, open_ids
from ._job_run import (
    FailedIds,
    JobOutcome,
    check_writable,
    default_failed_path,
    execute,
    exit_status,
    is_terminal,
    open_job_client,
    save_failed,
    stop_reason,
)
from ._output import OutputConsole, failures_table, plan_lines, silence_stdout, sync_summary
from ._progress import Reporter, make_reporter
from ._runtime import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Settings,
    open_client,
)
from ._signals import StopSignals

__all__ = ["CONFIRM_OVER", "SegmentSyncRun", "failed_removals_path", "run_segment_sync_command"]

CONFIRM_OVER: Final = 100
"""Removals a sync makes without asking (``--confirm-over``): more need a yes."""


def failed_removals_path(segment_id: str) -> Path:
    """``failed-removals-<segment>.txt`` in the current directory (unsafe characters replaced)."""
    return default_failed_path(segment_id, "failed-removals")


@attrs.define
class SegmentSyncRun:
    """What the run leaves behind when ``asyncio.run`` ends early: its report so far."""

    report: SegmentSyncReport | None = None

    def started(self) -> bool:
        """Whether there is a report to show."""
        return self.report is not None


def _is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class _Counted:
    """The ids of a file with their count: ``len()`` spares the sync reading ahead to count
    them, and gives the progress bar its total."""

    def __init__(self, ids: BackgroundIds[str], total: int | None) -> None:
        self._ids = ids
        self._total = total

    def __len__(self) -> int:
        if self._total is None:
            raise TypeError("the number of ids is not known")
        return self._total

    def __aiter__(self) -> BackgroundIds[str]:
        return self._ids


def _ids_of(source: IdInput) -> tuple[BackgroundIds[str], _Counted | BackgroundIds[str]]:
    """The reader thread of ``source`` and what to give the sync: sized when counted."""
    ids = BackgroundIds(source.batches)
    return ids, (ids if source.total is None else _Counted(ids, source.total))


def _spool(ids_path: str, column: str | None, stdin: IO[str], scratch: Path) -> Path:
    """Copy the ids of a pipe or stdin to a file in ``scratch``, one per line."""
    source = open_ids(ids_path, column=column, stdin=stdin)
    target = scratch / "ids.txt"
    with contextlib.closing(source), target.open("wb") as out:
        for batch in source.batches:
            out.write("".join(f"{i}\n" for i in batch).encode("utf-8", "surrogateescape"))
    return target


# --------------------------------------------------------------------------- the plan


async def _plan_main(
    settings: Settings,
    segment_id: str,
    ids_path: str,
    column: str | None,
    *,
    exact: bool,
    verify: bool,
    journal: Path | None,
    reporter: Reporter,
) -> SegmentSyncPlan:
    source = open_ids(ids_path, column=column, stdin=sys.stdin)
    ids, counted = _ids_of(source)
    try:
        async with open_job_client(settings, segment_id) as client:
            return await client.contacts.sync_segment(
                segment_id,
                counted,
                remove_others=exact,
                dry_run=True,
                verify=verify,
                journal=journal,
                on_progress=reporter.update,
            )
    finally:
        ids.close()
        source.close()


def _make_plan(
    signals: StopSignals,
    reporter: Reporter,
    main: Coroutine[Any, Any, SegmentSyncPlan],
) -> SegmentSyncPlan:
    """Run the plan; a signal stops it (nothing was written: nothing to save)."""
    with signals.hold():
        plan, _ = execute(main, reporter, signals, started=lambda: False)
    assert plan is not None
    return plan


def _confirm_removals(
    plan: SegmentSyncPlan, *, yes: bool, threshold: int, ids_from_stdin: bool
) -> None:
    """Ask before removing more than ``threshold`` members; refuse when nobody can answer.

    Raises:
        CliError: (exit 2) no terminal to ask on and no ``--yes``; (exit 1) the answer was no.
    """
    if not plan.remove_others or plan.to_remove <= threshold or yes:
        return
    what = (
        f"this sync removes {plan.to_remove:,} of the {plan.members:,} members of {plan.segment_id}"
    )
    stdin = sys.stdin
    if ids_from_stdin or not is_terminal(stdin):
        why = "stdin carries the ids" if ids_from_stdin else "stdin is not a terminal"
        raise CliError(
            f"{what}; confirm with --yes (nobody to ask: {why}); nothing was changed",
            EXIT_USAGE,
        )
    if not click.confirm(f"{what}. Go ahead?", default=False, err=True):
        raise CliError("not confirmed: nothing was changed", EXIT_FAILURES)


# --------------------------------------------------------------------------- the run


async def _run_main(
    settings: Settings,
    segment_id: str,
    ids_input: tuple[str, str | None],
    run: SegmentSyncRun,
    *,
    plan: SegmentSyncPlan,
    verify: bool,
    concurrency: int | None,
    journal: Path | None,
    reporter: Reporter,
) -> SegmentSyncReport:
    ids_path, column = ids_input
    source = open_ids(ids_path, column=column, stdin=sys.stdin)
    ids, counted = _ids_of(source)
    try:
        async with open_client(settings) as client:
            try:
                report = await client.contacts.sync_segment(
                    segment_id,
                    counted,
                    remove_others=plan.remove_others,
                    verify=verify,
                    concurrency=concurrency,
                    journal=journal,
                    on_progress=reporter.update,
                    plan=plan,
                )
            except BaseException as exc:
                run.report = partial_sync_report(exc)
                raise
            run.report = report
            return report
    finally:
        ids.close()
        source.close()


def _save_failed(
    report: SegmentSyncReport, segment_id: str, failed_out: Path | None, source: str
) -> list[tuple[str, bool]]:
    """Write the failed adds and removals; return what to say about it (message, to stderr)."""
    adds = failed_out or default_failed_path(segment_id)
    removals = failed_removals_path(segment_id)
    again = f"re-run the same sync, or: invent contacts {{}} {segment_id} --ids {{}}"
    files = [
        FailedIds(
            path=adds,
            ids=report.failed_ids,
            explicit=failed_out is not None,
            what="failed adds",
            rerun=again.format("tag", adds),
        ),
        FailedIds(
            path=removals,
            ids=report.remove_failed_ids,
            explicit=False,
            what="failed removals",
            rerun=again.format("untag", removals),
        ),
    ]
    return save_failed(files, source=source, job="sync", complete=not report.cancelled)


# --------------------------------------------------------------------------- the command


def run_segment_sync_command(
    settings: Settings,
    *,
    segment_id: str,
    ids_path: str,
    column: str | None,
    exact: bool,
    dry_run: bool,
    verify: bool,
    journal: Path | None,
    failed_out: Path | None,
    yes: bool,
    confirm_over: int,
    concurrency: int | None,
    quiet: bool,
) -> int:
    """Run ``segments sync``: print the plan, confirm, run, summarise; return the exit status."""
    stdin = sys.stdin
    with StopSignals() as signals, tempfile.TemporaryDirectory(prefix="invent-sync-") as scratch:
        check_writable(journal, failed_out)
        name = "<stdin>" if ids_path == STDIN else ids_path
        path, plan_column = ids_path, column
        if not _is_regular_file(ids_path):  # stdin or a pipe: read once, so copy it first
            path, plan_column = str(_spool(ids_path, column, stdin, Path(scratch))), None
        plan_reporter = make_reporter(
            OutputConsole(stderr=True), quiet=quiet, description=f"plan {segment_id}", total=None
        )
        main = _plan_main(
            settings,
            segment_id,
            path,
            plan_column,
            exact=exact,
            verify=verify,
            journal=journal,
            reporter=plan_reporter,
        )
        started = time.monotonic()
        plan = _make_plan(signals, plan_reporter, main)
        plan_seconds = time.monotonic() - started
        for line in plan_lines(plan, source=name):
            click.echo(line)
        if exact and plan.inputs == 0:
            click.echo(f"note: {name} has no ids: --exact would empty the segment", err=True)
        if dry_run:
            sent = plan.requests_sent
            noun = "request" if sent == 1 else "requests"
            click.echo(f"dry run: nothing was changed ({sent:,} {noun} sent)")
            return EXIT_OK
        if plan.to_add == 0 and plan.to_remove == 0 and not verify:
            click.echo(f"nothing to do: {segment_id} already holds these ids")
            return EXIT_OK
        _confirm_removals(plan, yes=yes, threshold=confirm_over, ids_from_stdin=ids_path == STDIN)
        return _run_and_report(
            settings,
            segment_id,
            (path, plan_column),
            name,
            signals,
            plan=plan,
            plan_seconds=plan_seconds,
            verify=verify,
            concurrency=concurrency,
            journal=journal,
            failed_out=failed_out,
            quiet=quiet,
        )


def _run_and_report(
    settings: Settings,
    segment_id: str,
    ids: tuple[str, str | None],
    name: str,
    signals: StopSignals,
    *,
    plan: SegmentSyncPlan,
    plan_seconds: float,
    verify: bool,
    concurrency: int | None,
    journal: Path | None,
    failed_out: Path | None,
    quiet: bool,
) -> int:
    run = SegmentSyncRun()
    total = plan.inputs
    reporter = make_reporter(
        OutputConsole(stderr=True), quiet=quiet, description=f"sync {segment_id}", total=total
    )
    with signals.hold():
        main = _run_main(
            settings,
            segment_id,
            ids,
            run,
            plan=plan,
            verify=verify,
            concurrency=concurrency,
            journal=journal,
            reporter=reporter,
        )
        _, stopped = execute(main, reporter, signals, started=run.started)
        report = run.report
        assert report is not None
        saved: list[tuple[str, bool]] = []
        if not isinstance(stopped, BulkAbortedError):
            saved = _save_failed(report, segment_id, failed_out, name)
    pipe_closed = False
    try:
        stop = stop_reason(stopped)
        lines = sync_summary(
            report, stopped=stop, plan_requests=plan.requests_sent, plan_seconds=plan_seconds
        )
        for line in lines:
            click.echo(line)
        failures = (*report.failures, *report.remove_failures)
        if failures:
            OutputConsole().print(failures_table(failures))
    except BrokenPipeError:
        silence_stdout()
        pipe_closed = True
    for message, to_stderr in saved:
        click.echo(message, err=to_stderr or pipe_closed)
    resume = ": re-run the same command to finish the sync"
    if journal:
        resume += " (with the same --journal, earlier writes are not redone)"
    else:
        resume += " (add --journal FILE to keep its place: earlier writes are then not redone)"
    return exit_status(JobOutcome(stopped=stopped, ok=report.ok, resume=resume))
