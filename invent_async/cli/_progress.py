"""Progress display for bulk jobs, fed by the bulk engine's ``on_progress`` callback.

A segment sync's :class:`~invent_async.SegmentSyncProgress` is shown the same way, its phase
(reading, adding, removing, verifying) after the description; an import's
:class:`~invent_async.ImportProgress` with its requests (it has no retry count) and its
invalid rows beside the failed ones.

On a terminal: a live rich bar on stderr (done/total, rate, ETA, retries, 429s, failures),
redrawn on each callback (a few times a second) rather than by a refresh thread. When stderr is
not a terminal (CI logs, pipes): a plain line every few seconds, no cursor tricks. ``--quiet``:
nothing.
"""

from __future__ import annotations

import time
from typing import Final, Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .._jobs.import_results import ImportProgress
from .._jobs.results import BulkProgress, SegmentSyncProgress

__all__ = ["LineProgress", "JobProgress", "LiveProgress", "Reporter", "make_reporter"]

JobProgress = BulkProgress | SegmentSyncProgress | ImportProgress
"""What a job's ``on_progress`` hands over."""

LINE_INTERVAL: Final = 10.0
"""Seconds between two plain progress lines when stderr is not a terminal."""


class Reporter:
    """Shows a bulk job's progress while it runs (use it as a context manager).

    This base shows nothing (``--quiet``); the displays below override what they need.
    """

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Begin showing (before the first :meth:`update`)."""

    def stop(self) -> None:
        """Stop showing (after the last :meth:`update`)."""

    def update(self, progress: JobProgress) -> None:
        """Show a new snapshot (called from the event loop: returns quickly)."""


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LiveProgress(Reporter):
    """A live rich progress bar on a terminal."""

    def __init__(self, console: Console, description: str, total: int | None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("eta {task.fields[eta]}"),
            TextColumn("{task.fields[retries]}"),
            TextColumn("{task.fields[failed]}"),
            console=console,
            auto_refresh=False,
        )
        self._description = description
        self._task = self._progress.add_task(
            description, total=total, rate="", eta=_clock(None), retries="", failed=""
        )

    def start(self) -> None:
        """Draw the bar."""
        self._progress.start()

    def stop(self) -> None:
        """Leave the bar as it last was."""
        self._progress.stop()

    def update(self, progress: JobProgress) -> None:
        """Redraw the bar with ``progress``."""
        failed = f"{progress.failed:,} failed"
        description = self._description
        if isinstance(progress, SegmentSyncProgress):
            description = f"{description} {progress.phase}"
        if isinstance(progress, ImportProgress):
            retries = f"{progress.requests:,} requests, 429s: {progress.rate_limited:,}"
            failed += f", {progress.invalid:,} invalid"
            bad = progress.failed or progress.invalid
        else:
            retries = f"{progress.retries:,} retries, 429s: {progress.rate_limited:,}"
            bad = progress.failed
        self._progress.update(
            self._task,
            description=description,
            completed=progress.done,
            total=progress.total,
            rate=f"{progress.rate:,.0f}/s",
            eta=_clock(progress.eta),
            retries=retries,
            failed=f"[red]{failed}[/]" if bad else failed,
        )
        self._progress.refresh()


class LineProgress(Reporter):
    """A plain progress line every :data:`LINE_INTERVAL` seconds (stderr is not a terminal)."""

    def __init__(self, console: Console, description: str, interval: float = LINE_INTERVAL) -> None:
        self._console = console
        self._description = description
        self._interval = interval
        self._last = time.monotonic()

    def update(self, progress: JobProgress) -> None:
        """Print ``progress`` if the last line is old enough (the summary covers the end)."""
        now = time.monotonic()
        if not progress.finished and now - self._last >= self._interval:
            self._last = now
            line = f"{self._description}: {progress}"
            self._console.print(line, markup=False, highlight=False, soft_wrap=True)


def make_reporter(
    console: Console, *, quiet: bool, description: str, total: int | None
) -> Reporter:
    """The right display for ``console`` (stderr): live bar, plain lines, or nothing."""
    if quiet:
        return Reporter()
    if console.is_terminal:
        return LiveProgress(console, description, total)
    return LineProgress(console, description)
