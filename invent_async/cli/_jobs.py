"""Bulk jobs from the shell: ``contacts tag/untag`` and ``demo``.

A job runs in one ``asyncio.run`` with the progress display around it. It consumes the bulk
engine's stream of per-item results, so the partial report is at hand however the job ends:
normally, on a 401/403 (:class:`~invent_async.BulkAbortedError`), on bad input, or on Ctrl-C
or SIGTERM. Either signal cancels the main task (:class:`~._signals.StopSignals`); leaving the
stream's ``async with`` stops the workers and marks in-flight items as skipped. Then the
failed ids are written (atomically, and with further signals deferred until they are), and
only then is the summary printed; the exit status is 130 for Ctrl-C, 143 for SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import stat
import tempfile
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs
import click

from .._client import AsyncInventClient
from .._exceptions import APIStatusError, InventError
from .._jobs.engine import BulkStream, ProgressCallback
from .._jobs.journal import JournalError
from .._jobs.results import BulkAbortedError, BulkReport, Outcome
from ..testing import FakeStats
from ._ids import BackgroundIds, IdInput
from ._output import OutputConsole, failures_table, job_summary, silence_stdout
from ._progress import Reporter, make_reporter
from ._runtime import (
    EXIT_AUTH,
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
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
from ._signals import StopSignals, stop_exception

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


async def _attached(main: Coroutine[Any, Any, T], signals: StopSignals) -> T:
    """Await ``main`` as the task that the first SIGINT or SIGTERM cancels."""
    task = asyncio.current_task()
    assert task is not None
    signals.attach(task)
    return await main


def execute(
    main: Coroutine[Any, Any, T], run: JobRun, reporter: Reporter, signals: StopSignals
) -> tuple[T | None, BaseException | None]:
    """Run ``main`` with the progress display; return its result and why the job stopped early.

    Call it inside ``signals.hold()``. Ctrl-C (as ``KeyboardInterrupt``), SIGTERM (as
    :class:`Terminated`), an aborted job, bad input or a bad journal that happens once the job
    has taken ids is returned, so that the caller saves the failed ids and prints the partial
    summary; before that, it propagates (an OSError or a JournalError as a :class:`CliError`).
    """
    try:
        with reporter:
            return asyncio.run(_attached(main, signals)), None
    except (KeyboardInterrupt, BulkAbortedError, CliError) as exc:
        stopped: BaseException = exc
    except asyncio.CancelledError:  # by StopSignals
        stopped = stop_exception(signals.first or signal.SIGINT)
    except JournalError as exc:
        stopped = CliError(str(exc), EXIT_USAGE)
    except OSError as exc:  # the journal cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        stopped = CliError(f"{where}{exc.strerror or exc}", EXIT_USAGE)
    if run.stream is None or run.stream.report.total == 0:
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


def _mode_of(target: Path) -> int:
    """The permission bits for a new version of ``target``: its own, or what the umask
    gives a new file."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for every thread, briefly)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def write_ids(path: Path, ids: tuple[str, ...]) -> None:
    """Write one id per line (the ``--ids`` format), atomically.

    The ids go to a temporary file next to ``path``, which then replaces it (``os.replace``):
    an interruption leaves the old file or the new one, never a truncated one. A ``path``
    that is not a regular file (``/dev/stdout``, a named pipe) is written in place.

    Raises:
        CliError: (exit 2) the file cannot be written.
    """
    data = "".join(f"{i}\n" for i in ids).encode("utf-8", "surrogateescape")
    target = Path(os.path.realpath(path))
    try:
        if target.exists() and not stat.S_ISREG(target.stat().st_mode):
            target.write_bytes(data)
            return
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            # mkstemp makes it 0600: give it the mode a plain open() would, or keep the mode
            # of the file it replaces
            os.fchmod(fd, _mode_of(target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
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
    """Run ``contacts tag`` or ``contacts untag``; print the summary; return the exit status.

    The failed ids are written before anything is printed, with SIGINT and SIGTERM deferred
    until they are (a second Ctrl-C can cut the summary short, not lose the file).
    """
    with StopSignals() as signals, contextlib.closing(source):
        for path in (journal, failed_out):
            if path is not None:
                check_writable(path)
        if source.total == 0:  # a regular file without ids: no request at all
            if failed_out is not None:
                write_ids(failed_out, ())
            click.echo(f"no ids in {source.name}: nothing to do", err=True)
            return EXIT_OK
        run = JobRun()
        reporter = make_reporter(
            OutputConsole(stderr=True),
            quiet=quiet,
            description=f"{action} {segment_id}",
            total=source.total,
        )
        ids = BackgroundIds(source.ids)
        with signals.hold():
            try:
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
                _, stopped = execute(main, run, reporter, signals)
            finally:
                ids.close()
                source.close()
            assert run.stream is not None
            report = run.stream.report
            saved = None
            if not isinstance(stopped, BulkAbortedError):
                saved = _write_failed(
                    report, segment_id, failed_out, source=source.name, complete=not stopped
                )
        if report.total == 0 and stopped is None:  # stdin or a pipe without ids
            click.echo(f"no ids in {source.name}: nothing to do", err=True)
            return EXIT_OK
        pipe_closed = False
        try:
            for line in job_summary(
                report,
                action=action,
                segment_id=segment_id,
                skipped=run.skipped,
                stopped=_stop_reason(stopped),
            ):
                click.echo(line)
            if report.failures:
                OutputConsole().print(failures_table(report.failures))
        except BrokenPipeError:  # `invent contacts tag ... | head`: the exit status still counts
            silence_stdout()
            pipe_closed = True
        if saved is not None:
            message, to_stderr = saved
            click.echo(message, err=to_stderr or pipe_closed)
        return _exit_status(report, stopped, journal)


def _stop_reason(stopped: BaseException | None) -> str | None:
    if isinstance(stopped, KeyboardInterrupt):
        return "interrupted"
    if isinstance(stopped, Terminated):
        return "terminated"
    return None if stopped is None else "stopped early"


def _write_failed(
    report: BulkReport, segment_id: str, failed_out: Path | None, *, source: str, complete: bool
) -> tuple[str, bool] | None:
    """Write the failed ids: always to an explicit ``--failed-out``, else only if any failed.

    A job that stopped early never overwrites its own input (``--ids failed-sg.txt``, the
    re-run the summary suggests): the ids it did not reach would be lost.

    Returns:
        What to print about it after the summary, and whether it goes to stderr (None:
        nothing to print).
    """
    if failed_out is None and not report.failures:
        return None
    path = failed_out if failed_out is not None else default_failed_path(segment_id)
    if not complete and _same_file(path, source):
        return f"{path} is the input of this job: left as it is", True
    write_ids(path, report.failed_ids)
    if not report.failures:
        return None
    return f"failed ids written to {path} (re-run them with --ids {path})", False


def _same_file(path: Path, other: str) -> bool:
    try:
        return path.samefile(other)
    except OSError:
        return False


def _exit_status(report: BulkReport, stopped: BaseException | None, journal: Path | None) -> int:
    if isinstance(stopped, KeyboardInterrupt | Terminated):
        interrupted = isinstance(stopped, KeyboardInterrupt)
        what = "interrupted" if interrupted else "terminated (SIGTERM)"
        hint = f": re-run the same command to resume from {journal}" if journal else ""
        click.echo(what + hint, err=True)
        return EXIT_INTERRUPTED if interrupted else EXIT_TERMINATED
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
        client = make_client(
            SANDBOX_API_KEY, org_id="c", base_url=fake.url, rate_per_minute=rate, sandbox=True
        )
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
    """The demo's summary: items, time, achieved rate vs the limit, 429s, failures, check.

    ``outcome`` is None when the job was interrupted: the time is then compared with the ideal
    time of the items that were done (succeeded or failed), not with the whole job's.
    """
    elapsed = report.elapsed
    lines = [
        f"items      {report.total:,} ({report.succeeded:,} succeeded, {report.failed:,} "
        f"failed, {report.skipped:,} skipped)",
    ]
    if outcome is None:  # interrupted: the part that was done, no server-side figures
        done = report.succeeded + report.failed
        return [
            *lines,
            f"time       {elapsed:.2f}s (at exactly the limit: {done / rate * 60:.2f}s for the "
            f"{done:,} of {contacts:,} items done)",
            f"failures   {report.failed:,}",
        ]
    lines.append(f"time       {elapsed:.2f}s (at exactly the limit: {contacts / rate * 60:.2f}s)")
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
    reporter = make_reporter(
        OutputConsole(stderr=True), quiet=quiet, description="demo", total=contacts
    )
    main = _demo_job(contacts, rate, concurrency, run, reporter.update)
    with StopSignals() as signals:
        with signals.hold():
            outcome, stopped = execute(main, run, reporter, signals)
        return _demo_end(run, outcome, stopped, contacts=contacts, rate=rate)


def _demo_end(
    run: JobRun,
    outcome: DemoOutcome | None,
    stopped: BaseException | None,
    *,
    contacts: int,
    rate: float,
) -> int:
    assert run.stream is not None
    report = run.stream.report
    for line in demo_summary(report, outcome, contacts=contacts, rate=rate):
        click.echo(line)
    if report.failures:
        OutputConsole().print(failures_table(report.failures))
    if stopped is not None:
        return _exit_status(report, stopped, None)
    assert outcome is not None
    ok = report.failed == 0 and outcome.contacts_count == contacts
    return EXIT_OK if ok else EXIT_FAILURES
