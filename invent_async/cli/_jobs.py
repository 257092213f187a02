"""Bulk jobs from the shell: ``contacts tag/untag`` and ``demo``.

A job runs in one ``asyncio.run`` with the progress display around it. It consumes the bulk
engine's stream of per-item results, so the partial report is at hand however the job ends:
normally, on a 401/403 (:class:`~invent_async.BulkAbortedError`), on bad input, or on Ctrl-C.
Ctrl-C cancels the main task (that is how ``asyncio.run`` handles SIGINT); leaving the stream's
``async with`` stops the workers and marks in-flight items as skipped, then the summary is
printed and the failed ids are written before exiting with status 130.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs
import click
from rich.console import Console

from .._bulk import BulkAbortedError, BulkReport, BulkStream, Outcome, ProgressCallback
from .._client import AsyncInventClient
from .._exceptions import APIStatusError, InventError
from ..testing import FakeStats
from ._ids import BackgroundIds, IdInput
from ._output import failures_table, job_summary
from ._progress import Reporter, make_reporter
from ._runtime import (
    EXIT_AUTH,
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    SANDBOX_API_KEY,
    CliError,
    Settings,
    Terminated,
    describe_api_error,
    make_client,
    open_client,
    sandbox_fake,
    seed_sandbox,
)

__all__ = [
    "DemoOutcome",
    "JobRun",
    "check_segment",
    "check_writable",
    "default_failed_path",
    "demo_summary",
    "run_bulk_command",
    "run_demo",
    "write_ids",
]

T = TypeVar("T")
Action = Literal["tag", "untag"]


@attrs.define
class JobRun:
    """A running job's stream, kept outside the event loop so it outlives ``asyncio.run``.

    Attributes:
        stream: The bulk stream, once the job has started (None before: nothing to report).
        skipped: Skipped items by reason, as seen in the results.
    """

    stream: BulkStream | None = None
    skipped: Counter[str] = attrs.field(factory=Counter)

    async def drive(self, stream: BulkStream) -> BulkReport:
        """Consume ``stream`` to the end (or until cancelled) and return its report."""
        self.stream = stream
        async with stream:
            async for result in stream:
                if result.outcome is Outcome.SKIPPED and result.reason:
                    self.skipped[result.reason] += 1
        return stream.report


async def _stop_on_sigterm(main: Coroutine[Any, Any, T]) -> T:
    """Await ``main``; SIGTERM cancels it the way Ctrl-C does (where signals can be handled)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        installed = False
    try:
        return await main
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


def execute(
    main: Coroutine[Any, Any, T], run: JobRun, reporter: Reporter
) -> tuple[T | None, BaseException | None]:
    """Run ``main`` with the progress display; return its result and why the job stopped early.

    Ctrl-C, SIGTERM (as :class:`Terminated`), an aborted job or bad input that happens once
    the job has started is returned, so that the caller prints the partial summary; before
    the job has started, it propagates (an OSError as a :class:`CliError`).
    """
    try:
        with reporter:
            return asyncio.run(_stop_on_sigterm(main)), None
    except (KeyboardInterrupt, BulkAbortedError, CliError) as exc:
        stopped: BaseException = exc
    except asyncio.CancelledError:
        stopped = Terminated()
    except OSError as exc:  # the journal cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        stopped = CliError(f"{where}{exc.strerror or exc}", EXIT_USAGE)
    if run.stream is None:
        raise stopped
    return None, stopped


async def check_segment(client: AsyncInventClient, segment_id: str) -> None:
    """Fail fast (one request) when the segment does not exist, instead of once per id.

    ``GET /segments/{id}`` is an inferred endpoint; if it answers 404 or 405, the segment is
    looked for in the documented list before giving up with the original error.
    """
    try:
        await client.segments.get(segment_id)
    except APIStatusError as exc:
        if exc.status not in (404, 405):
            raise
        async for segment in client.segments.list():
            if segment.id == segment_id:
                return
        raise


def default_failed_path(segment_id: str) -> Path:
    """``failed-<segment>.txt`` in the current directory (unsafe characters replaced)."""
    return Path(f"failed-{re.sub(r'[^A-Za-z0-9_.-]', '_', segment_id)}.txt")


def check_writable(path: Path) -> None:
    """Fail before any work when ``path`` cannot be appended to (creating it if needed).

    Raises:
        CliError: (exit 2) the file or its directory cannot be created or written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE) from None


def write_ids(path: Path, ids: tuple[str, ...]) -> None:
    """Write one id per line (the ``--ids`` format).

    Raises:
        CliError: (exit 2) the file cannot be written.
    """
    try:
        text = "".join(f"{i}\n" for i in ids)
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE) from None


# --------------------------------------------------------------------------- tag / untag


async def _bulk_job(
    settings: Settings,
    action: Action,
    segment_id: str,
    ids: BackgroundIds,
    run: JobRun,
    *,
    total: int | None,
    concurrency: int | None,
    journal: Path | None,
    on_progress: ProgressCallback,
) -> BulkReport:
    async with open_client(settings) as client:
        await check_segment(client, segment_id)
        contacts = client.contacts
        start = contacts.stream_add_segment if action == "tag" else contacts.stream_remove_segment
        stream = start(
            ids,
            segment_id,
            concurrency=concurrency,
            on_progress=on_progress,
            journal=journal,
            total=total,
        )
        return await run.drive(stream)


def run_bulk_command(
    settings: Settings,
    *,
    action: Action,
    segment_id: str,
    source: IdInput,
    concurrency: int | None,
    journal: Path | None,
    failed_out: Path | None,
    quiet: bool,
) -> int:
    """Run ``contacts tag`` or ``contacts untag``; print the summary; return the exit status."""
    run = JobRun()
    reporter = make_reporter(
        Console(stderr=True), quiet=quiet, description=f"{action} {segment_id}", total=source.total
    )
    ids = BackgroundIds(source.ids)
    try:
        for path in (journal, failed_out):
            if path is not None:
                check_writable(path)
        main = _bulk_job(
            settings,
            action,
            segment_id,
            ids,
            run,
            total=source.total,
            concurrency=concurrency,
            journal=journal,
            on_progress=reporter.update,
        )
        _, stopped = execute(main, run, reporter)
    finally:
        ids.close()
        source.close()
    assert run.stream is not None
    report = run.stream.report
    for line in job_summary(
        report,
        action=action,
        segment_id=segment_id,
        skipped=run.skipped,
        stopped=_stop_reason(stopped),
    ):
        click.echo(line)
    if report.failures:
        Console().print(failures_table(report.failures))
    if not isinstance(stopped, BulkAbortedError):
        _write_failed(report, segment_id, failed_out, source=source.name, complete=not stopped)
    return _exit_status(report, stopped, journal)


def _stop_reason(stopped: BaseException | None) -> str | None:
    if isinstance(stopped, KeyboardInterrupt):
        return "interrupted"
    if isinstance(stopped, Terminated):
        return "terminated"
    return None if stopped is None else "stopped early"


def _write_failed(
    report: BulkReport, segment_id: str, failed_out: Path | None, *, source: str, complete: bool
) -> None:
    """Write the failed ids: always to an explicit ``--failed-out``, else only if any failed.

    A job that stopped early never overwrites its own input (``--ids failed-sg.txt``, the
    re-run the summary suggests): the ids it did not reach would be lost.
    """
    if failed_out is None and not report.failures:
        return
    path = failed_out if failed_out is not None else default_failed_path(segment_id)
    if not complete and _same_file(path, source):
        click.echo(f"{path} is the input of this job: left as it is", err=True)
        return
    write_ids(path, report.failed_ids)
    if report.failures:
        click.echo(f"failed ids written to {path} (re-run them with --ids {path})")


def _same_file(path: Path, other: str) -> bool:
    try:
        return path.samefile(other)
    except OSError:
        return False


def _exit_status(report: BulkReport, stopped: BaseException | None, journal: Path | None) -> int:
    if isinstance(stopped, KeyboardInterrupt):
        hint = f"re-run the same command to resume from {journal}" if journal else None
        click.echo("interrupted" + (f": {hint}" if hint else ""), err=True)
        return EXIT_INTERRUPTED
    if isinstance(stopped, BulkAbortedError):
        cause = stopped.__cause__
        message = describe_api_error(cause)[0] if isinstance(cause, InventError) else str(stopped)
        CliError(message, EXIT_AUTH).show()
        return EXIT_AUTH
    if isinstance(stopped, CliError):
        stopped.show()
        return stopped.exit_code
    return EXIT_FAILURES if report.failed else EXIT_OK


# --------------------------------------------------------------------------- demo


@attrs.frozen(kw_only=True)
class DemoOutcome:
    """What the demo measured besides the bulk report.

    Attributes:
        segment_id: The segment that was tagged.
        traffic: The fake's traffic counters right after the job (requests, 429s).
        contacts_count: The segment's ``contacts_count`` read back through the API.
    """

    segment_id: str
    traffic: FakeStats
    contacts_count: int


async def _demo_job(
    contacts: int,
    rate: float,
    concurrency: int | None,
    run: JobRun,
    on_progress: ProgressCallback,
) -> DemoOutcome:
    fake = sandbox_fake(rate)
    segment, ids = seed_sandbox(fake, "c", contacts=contacts)
    async with fake:
        client = make_client(SANDBOX_API_KEY, org_id="c", base_url=fake.url, rate_per_minute=rate)
        async with client:
            stream = client.contacts.stream_add_segment(
                ids, segment.id, concurrency=concurrency, on_progress=on_progress
            )
            await run.drive(stream)
            traffic = fake.stats
            tagged = await client.segments.get(segment.id)
    return DemoOutcome(segment_id=segment.id, traffic=traffic, contacts_count=tagged.contacts_count)


def demo_summary(
    report: BulkReport, outcome: DemoOutcome | None, *, contacts: int, rate: float
) -> list[str]:
    """The demo's summary: items, time, achieved rate vs the limit, 429s, failures, check."""
    elapsed = report.elapsed
    lines = [
        f"items      {report.total:,} ({report.succeeded:,} succeeded, {report.failed:,} "
        f"failed, {report.skipped:,} skipped)",
        f"time       {elapsed:.2f}s (at exactly the limit: {contacts / rate * 60:.2f}s)",
    ]
    if outcome is None:  # interrupted: no server-side figures
        return [*lines, f"failures   {report.failed:,}"]
    requests = outcome.traffic.total
    per_minute = requests / elapsed * 60 if elapsed > 0 else 0.0
    verdict = "OK" if outcome.contacts_count == contacts else "MISMATCH"
    return [
        *lines,
        f"rate       {per_minute:,.0f} requests/min = {per_minute / rate:.1%} of the "
        f"{rate:,.0f}/min limit ({requests:,} requests)",
        f"429s seen  {outcome.traffic.rate_limited:,}",
        f"failures   {report.failed:,}",
        f"check      segment {outcome.segment_id} has {outcome.contacts_count:,} contacts, "
        f"{contacts:,} expected: {verdict}",
    ]


def run_demo(*, contacts: int, rate: float, concurrency: int | None, quiet: bool) -> int:
    """Run ``invent demo``; print the summary; return the exit status."""
    click.echo(
        f"demo: tagging {contacts:,} contacts on an embedded FakeInvent limited to "
        f"{rate:,.0f} requests/min, with the client's rate governor set to the same"
    )
    run = JobRun()
    reporter = make_reporter(Console(stderr=True), quiet=quiet, description="demo", total=contacts)
    main = _demo_job(contacts, rate, concurrency, run, reporter.update)
    outcome, stopped = execute(main, run, reporter)
    assert run.stream is not None
    report = run.stream.report
    for line in demo_summary(report, outcome, contacts=contacts, rate=rate):
        click.echo(line)
    if report.failures:
        Console().print(failures_table(report.failures))
    if stopped is not None:
        return _exit_status(report, stopped, None)
    assert outcome is not None
    ok = report.failed == 0 and outcome.contacts_count == contacts
    return EXIT_OK if ok else EXIT_FAILURES
