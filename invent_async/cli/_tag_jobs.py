"""Tag jobs from the shell: ``contacts tag/untag`` and ``demo`` (which tags a sandbox).

A job consumes the bulk engine's stream of per-item results (:class:`JobRun`), so the partial
report is at hand however it ends: normally, on a 401/403 or a long 429
(:class:`~invent_async.BulkAbortedError`), on bad input, or on Ctrl-C or SIGTERM. Leaving the
stream's ``async with`` stops the workers and marks in-flight items as skipped. What every job
command shares (running it under the signals, the failed-id files, the exit status) is in
:mod:`._job_run`.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs
import click

from .._jobs.engine import BulkStream, ProgressCallback
from .._jobs.results import BulkAbortedError, BulkReport, Outcome
from . import _job_run as job
from ._ids import BackgroundIds, IdInput
from ._output import OutputConsole, failures_table, job_summary, silence_stdout
from ._progress import make_reporter
from ._runtime import (
    EXIT_OK,
    SANDBOX_API_KEY,
    Settings,
    make_client,
    sandbox_fake,
    seed_sandbox,
)

if TYPE_CHECKING:
    from ..testing import FakeStats
from ._signals import StopSignals

__all__ = [
    "Action",
    "DemoOutcome",
    "JobRun",
    "demo_summary",
    "run_bulk_command",
    "run_demo",
]

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

    def started(self) -> bool:
        """Whether the job has taken ids, so that there is something to report."""
        return self.stream is not None and self.stream.report.total > 0


# --------------------------------------------------------------------------- tag / untag


async def _bulk_job(
    settings: Settings,
    action: Action,
    segment_id: str,
    ids: BackgroundIds[str],
    run: JobRun,
    *,
    total: int | None,
    concurrency: int | None,
    journal: Path | None,
    on_progress: ProgressCallback,
) -> BulkReport:
    async with job.open_job_client(settings, segment_id) as client:
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
        job.check_writable(journal, failed_out)
        if source.total == 0:  # a regular file without ids: no request at all
            if failed_out is not None:
                job.write_ids(failed_out, ())
            click.echo(f"no ids in {source.name}: nothing to do", err=True)
            return EXIT_OK
        run = JobRun()
        reporter = make_reporter(
            OutputConsole(stderr=True),
            quiet=quiet,
            description=f"{action} {segment_id}",
            total=source.total,
        )
        ids = BackgroundIds(source.batches)
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
                _, stopped = job.execute(main, reporter, signals, started=run.started)
            finally:
                ids.close()
                source.close()
            assert run.stream is not None
            report = run.stream.report
            saved: list[tuple[str, bool]] = []
            if not isinstance(stopped, BulkAbortedError):
                path = failed_out or job.default_failed_path(segment_id)
                failed = job.FailedIds(
                    path=path,
                    ids=report.failed_ids,
                    explicit=failed_out is not None,
                    what="failed ids",
                    rerun=f"re-run them with --ids {path}",
                )
                saved = job.save_failed(
                    [failed], source=source.name, job="job", complete=not stopped
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
                stopped=job.stop_reason(stopped),
            ):
                click.echo(line)
            if report.failures:
                OutputConsole().print(failures_table(report.failures))
        except BrokenPipeError:  # `invent contacts tag ... | head`: the exit status still counts
            silence_stdout()
            pipe_closed = True
        for message, to_stderr in saved:
            click.echo(message, err=to_stderr or pipe_closed)
        resume = (
            f": re-run the same command to resume from {journal}"
            if journal
            else (
                ": re-run the same command to finish (it sends every id again; with "
                "--journal FILE a job keeps its place and resumes where it stopped)"
            )
        )
        return job.exit_status(job.JobOutcome(stopped=stopped, ok=not report.failed, resume=resume))


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
            outcome, stopped = job.execute(main, reporter, signals, started=run.started)
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
    counted = outcome is not None and outcome.contacts_count == contacts
    return job.exit_status(job.JobOutcome(stopped=stopped, ok=report.failed == 0 and counted))
