"""The bulk engine: apply one per-contact operation to a stream of contact ids.

A bounded pool of long-lived worker tasks pulls ids lazily from the input (an
:class:`~.reader.IdReader` over any iterable or async iterable: a list, a generator, a file
being read, a paginated ``contacts.list()``), so memory grows with the concurrency, not with
the input: there is no ``gather`` of N tasks. Each input id ends in exactly one outcome,
reported as an :class:`~.results.ItemResult`:

- ``SUCCEEDED`` (the API accepted it), ``FAILED`` (with the exception and the number of
  attempts; transient errors were already retried by the client's retry policy), or
- ``SKIPPED`` with a reason: a duplicate of an earlier id, already done according to the
  resume journal (:mod:`.journal`), or cancelled while in flight. :class:`Precheck` decides
  the first two, for the engine and for segment sync's dry run alike.

Duplicate detection keeps a 64-bit fingerprint per id (:class:`~.idset.FingerprintSet`, about
16 bytes per id), not the ids themselves. Requests go through the client's normal path, so
the shared rate governor paces them and every 429 pauses all workers together. Also here:
:class:`BulkOptions`, the options of the ``bulk_*`` and ``stream_*`` methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, Self, TypedDict

from .._exceptions import (
    AuthenticationError,
    BudgetServerConfigError,
    BudgetSettingsError,
    ClientClosedError,
    InventError,
    PermissionDeniedError,
    RateLimitError,
)
from .._models import Contact
from .._observe import Job
from .._observe import job as observe_job
from .._pipeline import CallStats
from .idset import FingerprintSet
from .journal import Journal
from .reader import END, IdReader, IdSource, contact_id_of
from .results import (
    BulkAbortedError,
    BulkFailure,
    BulkProgress,
    BulkReport,
    ItemResult,
    Outcome,
    attach_report,
)
from .segment_sync_plan import rate_and_eta

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "PROGRESS_INTERVAL",
    "BulkOptions",
    "BulkStream",
    "Operation",
    "SKIP_CODES",
    "Precheck",
    "ProgressCallback",
    "check_concurrency",
    "check_options",
]

DEFAULT_CONCURRENCY: Final = 32
DEFAULT_MAX_RETRIES: Final = 8
"""Default retries per item in bulk jobs (transient errors; 429s wait for the governor)."""
PROGRESS_INTERVAL: Final = 0.2
"""Seconds between two progress callbacks (the final one is always sent)."""


Operation = Callable[[str, CallStats], Awaitable[object]]
"""What a bulk job applies to each id, counting its attempts into the ``CallStats``: what it
gives is the item's updated contact when it is a :class:`~invent_async.Contact` (a streaming
job hands it out), and is dropped otherwise."""
ProgressCallback = Callable[[BulkProgress], object]


_STOPS_THE_JOB: Final = (
    AuthenticationError,
    PermissionDeniedError,
    BudgetSettingsError,
    BudgetServerConfigError,
)
"""Errors every later call would get as well (configuration, not the item): the job stops."""


class BulkOptions(TypedDict, total=False):
    """The options of the bulk methods (``bulk_*`` and ``stream_*``), all keyword-only.

    Attributes:
        concurrency: Worker tasks, that is requests in flight (default 32).
        on_progress: Called with a :class:`BulkProgress` a few times a second and once at
            the end (from the event loop: keep it quick).
        journal: A file recording completed ids; ids already in it are skipped, so a re-run
            after an interruption resumes where the last one stopped. Each id is written to
            the OS as it completes, so even a killed job re-sends at most the ids that were
            in flight; a file that is not UTF-8 or cannot be read raises
            :class:`JournalError`.
        total: The number of ids, for progress and ETA when the input has no ``len()``.
        max_retries: Retries per item for transient errors (default 8).
    """

    concurrency: int | None
    on_progress: ProgressCallback | None
    journal: str | os.PathLike[str] | None
    total: int | None
    max_retries: int


def check_options(options: Mapping[str, object]) -> None:
    """Raise ``TypeError`` for a name that is not one of :class:`BulkOptions`."""
    unknown = sorted(set(options) - set(BulkOptions.__annotations__))
    if unknown:
        known = ", ".join(BulkOptions.__annotations__)
        raise TypeError(f"unknown bulk option(s) {', '.join(unknown)}; expected: {known}")


def check_concurrency(concurrency: object) -> int:
    """``concurrency`` if it is an integer >= 1.

    Raises:
        ValueError: it is not.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
    return concurrency


SKIP_CODES: Final = (None, "duplicate", "journal")
"""The skip reason of each code :meth:`Precheck.reasons` gives (0, 1, 2)."""


class Precheck:
    """Which ids a job skips without sending anything, and why.

    ``"duplicate"``: the id repeats an earlier one (or shares its 64-bit fingerprint: see
    :class:`~.idset.FingerprintSet`); ``"journal"``: the journal records it as done. The
    bulk engine asks before each item; segment sync's dry run asks the same of the ids it
    would add and remove, so a plan counts what the run will skip.

    Args:
        capacity: The ids expected (sizes the duplicate filter; it grows past that).
        done: The ids the journal records as done (None: no journal).
    """

    __slots__ = ("_done", "_seen")

    def __init__(self, capacity: int = 1024, done: FingerprintSet | None = None) -> None:
        self._seen = FingerprintSet(capacity)
        self._done = done

    def reason(self, contact_id: str) -> str | None:
        """Why ``contact_id`` is skipped (None: it is to be sent); it counts as seen now."""
        if not self._seen.add(contact_id):
            return "duplicate"
        if self._done is not None and contact_id in self._done:
            return "journal"
        return None

    def reasons(self, contact_ids: Sequence[str]) -> bytearray:
        """:meth:`reason` of each of ``contact_ids``, in order, at once, as the codes of
        :data:`SKIP_CODES`: 0 to send, 1 a duplicate, 2 done in the journal."""
        codes = bytearray(len(contact_ids))
        for position in self._seen.add_each(contact_ids):
            codes[position] = 1
        done = self._done
        if done is not None:
            for position, contact_id in enumerate(contact_ids):
                if not codes[position] and contact_id in done:
                    codes[position] = 2
        return codes


# --------------------------------------------------------------------------- the engine


class BulkStream:
    """Runs a bulk job and yields an :class:`ItemResult` per input id as items complete.

    Use it with ``async with`` (or call :meth:`aclose`) so that leaving early stops the
    workers::

        async with client.contacts.stream_add_segment(ids, "sg_vip") as results:
            async for result in results:
                ...

    Nothing starts before the first ``__anext__``. :attr:`report` is the report so far.
    With ``streaming=False`` the results are only counted, never handed out one by one:
    :meth:`run` drives such a job to its end. ``journal_kind`` (one of ``JOURNAL_KINDS``)
    keeps this job's journal lines apart from plain ids in the same file. Iterating raises:

    Raises:
        BulkAbortedError: a 401/403, or a 429 asking to wait longer than ``max_retry_after``,
            made every remaining item pointless; the job stopped.
        Exception: whatever the input iterable or the progress callback raised.
    """

    def __init__(
        self,
        operation: Operation,
        source: IdSource,
        *,
        streaming: bool = True,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        journal: str | os.PathLike[str] | None = None,
        total: int | None = None,
        max_retry_after: float | None = None,
        name: str = "",
        org_id: str = "",
        journal_kind: str | None = None,
    ) -> None:
        conc = DEFAULT_CONCURRENCY if concurrency is None else check_concurrency(concurrency)
        self._operation = operation
        self._input = IdReader(source, total)
        self._concurrency = conc
        self._on_progress = on_progress
        self._journal = Journal(journal, journal_kind) if journal is not None else None
        self._total = self._input.total
        self._results: asyncio.Queue[ItemResult | None] = asyncio.Queue(maxsize=conc * 4)
        self._streaming = streaming  # False: only count outcomes (run()), no per-item hand-off
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: dict[asyncio.Task[None], str] = {}
        self._pull_lock = asyncio.Lock()
        self._ready: list[object] = []  # a batched source's last batch ...
        self._ready_at = 0  # ... and its next id
        self._journal_done = FingerprintSet(16)
        self._precheck = Precheck(
            min(self._total or 1024, 1 << 20),
            self._journal_done if self._journal is not None else None,
        )
        self._fatal: InventError | None = None
        self._max_retry_after = max_retry_after  # a longer Retry-After stops the job
        self._interrupted: set[asyncio.Task[None]] = set()  # cancelled by the job's stop
        self._crash: BaseException | None = None
        self._running = 0
        self._started = False
        self._finished = False
        self._cancelled = False
        self._taken = self._succeeded = self._failed = self._skipped = 0
        self._retries = self._rate_limited = 0
        self._failures: list[BulkFailure] = []
        self._cancelled_ids: list[str] = []
        self._start = self._last_progress = 0.0
        self._end: float | None = None
        self._name = name  # the job's span (see _observe.Job), when traced
        self._org_id = org_id
        self._job: Job | None = None
        self._watched = True

    # ------------------------------------------------------------------ public protocol

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ItemResult:
        if not self._started:
            self._start_workers()
        if self._finished:
            raise StopAsyncIteration
        result = await self._results.get()
        if result is not None:
            return result
        # every worker has stopped
        self._finalise(cancelled=False)
        if self._crash is not None:
            await self.aclose()
            raise self._crash
        if self._fatal is not None:
            retry_after = (
                self._fatal.retry_after if isinstance(self._fatal, RateLimitError) else None
            )
            why = "this error affects every item"
            if isinstance(self._fatal, ClientClosedError):
                why = "the client was closed while the job ran"
            elif retry_after is not None:
                why = f"the server asked to wait {retry_after:.0f}s, more than max_retry_after"
            raise BulkAbortedError(
                f"bulk job stopped early: {self._fatal} ({why})", self.report, retry_after
            ) from self._fatal
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop the job: cancel in-flight items (reported as skipped) and close the journal."""
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        for contact_id in self._in_flight.values():
            self._cancelled_ids.append(contact_id)
            self._skipped += 1
        self._in_flight.clear()
        self._finalise(cancelled=self._running > 0)

    @property
    def report(self) -> BulkReport:
        """The report so far (final once the iteration has ended or :meth:`aclose` ran)."""
        end = self._end if self._end is not None else time.monotonic()
        return BulkReport(
            total=self._taken,
            succeeded=self._succeeded,
            failed=self._failed,
            skipped=self._skipped,
            failures=tuple(self._failures),
            cancelled_ids=tuple(self._cancelled_ids),
            retries=self._retries,
            rate_limited=self._rate_limited,
            elapsed=(end - self._start) if self._started else 0.0,
            cancelled=self._cancelled,
        )

    async def run(self) -> BulkReport:
        """Drive the job to its end and return its report.

        On cancellation the job is stopped (in-flight items become skipped) and the
        ``CancelledError`` is re-raised with the partial report attached (see
        :func:`partial_report`).
        """
        try:
            async with self:
                async for _ in self:
                    pass
        except asyncio.CancelledError as exc:
            attach_report(exc, self.report)
            raise
        return self.report

    # ------------------------------------------------------------------ workers

    def _start_workers(self) -> None:
        self._started = True
        self._start = self._last_progress = time.monotonic()
        if self._journal is not None:
            self._journal.load_into(self._journal_done)
        self._input.open()
        self._running = self._concurrency
        job = self._job = (
            observe_job(self._name, org_id=self._org_id, lane="bulk") if self._name else None
        )
        # whether a success needs more than its count (the workers skip _counted otherwise)
        self._watched = (
            job is not None or self._journal is not None or self._on_progress is not None
        )
        if job is not None:
            job.enter()  # the workers (and any item spans) run inside the job's span
        try:
            self._workers = [
                asyncio.create_task(self._worker(), name=f"invent-bulk-worker-{i}")
                for i in range(self._concurrency)
            ]
        finally:
            if job is not None:
                job.leave()

    async def _worker(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            source = self._input
            next_now = source.next_now
            while True:
                if not source.is_async:  # (a list, a generator: _next_id without a coroutine)
                    if self._fatal is not None or self._crash is not None:
                        break
                    item = next_now()
                    if item is END:
                        break
                    self._taken += 1
                    contact_id = item if isinstance(item, str) else contact_id_of(item)
                elif (ready := self._take_ready()) is not None:
                    contact_id = ready
                elif (fetched := await self._next_id()) is not None:
                    contact_id = fetched
                else:
                    break
                reason = self._precheck.reason(contact_id)
                if reason is not None:
                    result = ItemResult(
                        contact_id=contact_id, outcome=Outcome.SKIPPED, reason=reason
                    )
                else:
                    self._in_flight[task] = contact_id
                    counter = CallStats()
                    failed: ItemResult | None = None
                    try:
                        contact = await self._operation(contact_id, counter)
                    except asyncio.CancelledError:
                        if task not in self._interrupted:
                            raise
                        task.uncancel()  # the job stopped (_stop_in_flight): not the caller
                        self._cancelled_ids.append(contact_id)
                        failed = ItemResult(
                            contact_id=contact_id, outcome=Outcome.SKIPPED, reason="cancelled"
                        )
                    except (InventError, ValueError, TypeError) as exc:
                        failed = self._failure(contact_id, counter, exc)
                    finally:
                        self._interrupted.discard(task)
                        attempts = counter.attempts
                        if attempts > 1:
                            self._retries += attempts - 1
                        self._rate_limited += counter.rate_limited
                    del self._in_flight[task]
                    if failed is not None:
                        result = failed
                    elif not self._streaming:  # the common case: count it, nothing to hand out
                        self._succeeded += 1
                        if self._watched:
                            self._counted(contact_id, Outcome.SUCCEEDED)
                        continue
                    else:
                        result = ItemResult(
                            contact_id=contact_id,
                            outcome=Outcome.SUCCEEDED,
                            attempts=attempts,
                            contact=contact if isinstance(contact, Contact) else None,
                        )
                self._count(result)
                if self._streaming:
                    await self._results.put(result)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the input iterable or the progress callback failed
            if self._crash is None:
                self._crash = exc
        self._running -= 1
        if self._running == 0:
            await self._results.put(None)

    def _take_ready(self) -> str | None:
        """The next id of the batch a batched source handed over, if any is left (None:
        :meth:`_next_id` fetches the next batch)."""
        at = self._ready_at
        if at >= len(self._ready) or self._fatal is not None or self._crash is not None:
            return None
        self._ready_at = at + 1
        self._taken += 1
        item = self._ready[at]
        return item if isinstance(item, str) else contact_id_of(item)

    async def _next_id(self) -> str | None:
        """The next id of an async input (a list or a generator is read by the worker itself,
        without a coroutine), or None once it is exhausted or the job stops."""
        if self._stopping():
            return None
        source = self._input
        if source.batched:  # a list of ids at a time, taken one by one by _take_ready
            async with self._pull_lock:
                while (ready := self._take_ready()) is None:
                    if self._stopping():
                        return None
                    batch = await source.next_batch()
                    if not batch:
                        return None
                    self._ready, self._ready_at = batch, 0
            return ready
        async with self._pull_lock:  # an async generator cannot be advanced concurrently
            if self._stopping():
                return None
            item = await source.next()
            if item is not END and self._stopping():  # stopped while this worker waited
                with contextlib.suppress(TypeError):  # taken, but not sent: cancelled
                    self._cancelled_ids.append(contact_id_of(item))
                    self._taken += 1
                    self._skipped += 1
                return None
        if item is END:
            return None
        self._taken += 1
        return item if isinstance(item, str) else contact_id_of(item)

    def _stopping(self) -> bool:
        return self._fatal is not None or self._crash is not None

    def _failure(
        self, contact_id: str, counter: CallStats, exc: InventError | ValueError | TypeError
    ) -> ItemResult:
        """The result of an item whose request raised ``exc``; stop the job when it says so."""
        if isinstance(exc, ClientClosedError):  # nothing more can be sent: stop, as for a 401
            if self._fatal is None:
                self._fatal = exc
            self._stop_in_flight()
            self._cancelled_ids.append(contact_id)
            return ItemResult(contact_id=contact_id, outcome=Outcome.SKIPPED, reason="cancelled")
        if isinstance(exc, _STOPS_THE_JOB):
            self._fatal = exc
        elif isinstance(exc, RateLimitError) and self._waits_too_long(exc):
            self._fatal = exc
            self._stop_in_flight()
        return ItemResult(
            contact_id=contact_id,
            outcome=Outcome.FAILED,
            attempts=counter.attempts,
            error=exc,
        )

    def _waits_too_long(self, exc: RateLimitError) -> bool:
        limit = self._max_retry_after
        return limit is not None and exc.retry_after is not None and exc.retry_after > limit

    def _stop_in_flight(self) -> None:
        """Cancel the other items in flight (they would wait for the closed gate)."""
        current = asyncio.current_task()
        for task in self._in_flight:
            if task is not current and task not in self._interrupted:
                self._interrupted.add(task)
                task.cancel()

    def _count(self, result: ItemResult) -> None:
        outcome = result.outcome
        if outcome is Outcome.SUCCEEDED:
            self._succeeded += 1
        elif outcome is Outcome.FAILED:
            self._failed += 1
            assert result.error is not None
            self._failures.append(
                BulkFailure(
                    contact_id=result.contact_id, error=result.error, attempts=result.attempts
                )
            )
        else:
            self._skipped += 1
        self._counted(result.contact_id, outcome)

    def _counted(self, contact_id: str, outcome: Outcome) -> None:
        """After an item was counted: the telemetry, the journal, the progress callback."""
        if self._job is not None:
            self._job.item(outcome.value)
        if self._journal is not None and outcome is Outcome.SUCCEEDED:
            self._journal.record(contact_id)
        if self._on_progress is not None:
            now = time.monotonic()
            if now - self._last_progress >= PROGRESS_INTERVAL:
                self._last_progress = now
                self._on_progress(self._progress(now, finished=False))

    def _progress(self, now: float, *, finished: bool) -> BulkProgress:
        elapsed = max(now - self._start, 1e-9)
        done = self._succeeded + self._failed + self._skipped
        rate, eta = rate_and_eta(done, self._total, elapsed)
        return BulkProgress(
            done=done,
            total=self._total,
            succeeded=self._succeeded,
            failed=self._failed,
            skipped=self._skipped,
            retries=self._retries,
            rate_limited=self._rate_limited,
            elapsed=elapsed,
            rate=rate,
            eta=eta,
            finished=finished,
        )

    def _finalise(self, *, cancelled: bool) -> None:
        if self._finished:
            return
        self._finished = True
        self._cancelled = cancelled
        self._end = time.monotonic()
        if self._journal is not None:
            self._journal.close()
        if self._job is not None:
            report = self.report
            self._job.end(
                {
                    "total": report.total,
                    "succeeded": report.succeeded,
                    "failed": report.failed,
                    "skipped": report.skipped,
                    "retries": report.retries,
                    "rate_limited": report.rate_limited,
                    "cancelled": report.cancelled,
                },
                self._fatal or self._crash,
            )
        if self._on_progress is not None and self._started:
            self._on_progress(self._progress(self._end, finished=True))
