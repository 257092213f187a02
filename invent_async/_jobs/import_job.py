"""The bulk import: rows from any (async) iterable into contacts, 10,000 a request.

:class:`ImportJob` reads the input lazily, a batch at a time; checks each row
(:func:`~.import_rows.check_row`: an invalid row is reported, never sent); skips a row whose
key repeats one of its chunk (a duplicate) or that the journal records as done; closes a chunk
at its row or byte limit and sends it through the ``send`` callable the resource passes in
(the request path, on the bulk lane); and matches the answer back to each row
(:func:`~.import_rows.sort_answer`). Memory holds the chunks in flight, not the input (and
when it resumes, the keys of the journal).

Up to ``concurrency`` chunks are in flight (default 2: the API works on one while the next is
sent), never two holding the same key, so one new contact is never created twice by two
requests at once. A 413 answer splits a chunk in two and sends each half (the API refused it
whole, so nothing was imported). Any other failure is its rows' (``failed``), after the
request path's retries, which repeat an import request only when it certainly did not reach
the server (it is not idempotent). An error every later request would get too (401/403, 404,
a long 429, a closed client) stops the job: :class:`~.import_results.ImportAbortedError`.

The journal records the key of every row created or updated (``imported<TAB><key>`` lines, one
write per answer); a re-run with it skips them, and sends again the chunks that were in flight
when the last run stopped: their rows are then updated, not created twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Final

from .._converter import loads
from .._exceptions import (
    APIStatusError,
    AuthenticationError,
    BudgetServerConfigError,
    BudgetSettingsError,
    ClientClosedError,
    InventError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
)
from .._observe import Job
from .._observe import job as observe_job
from .._pipeline import CallStats
from .._protocol import RawResponse
from .engine import PROGRESS_INTERVAL, check_concurrency
from .idset import FingerprintSet
from .import_results import (
    IMPORT_REPORT,
    PROBLEMS_KEPT,
    ImportAbortedError,
    ImportPlan,
    ImportProgress,
    ImportReport,
    ImportRowResult,
    ImportStatus,
    import_progress,
)
from .import_rows import (
    DEFAULT_CHUNK_BYTES,
    MAX_CHUNK_ROWS,
    NOT_IN_ANSWER,
    Chunk,
    check_row,
    sort_answer,
)
from .journal import IMPORTED, Journal
from .reader import IdReader

__all__ = [
    "DEFAULT_IMPORT_CONCURRENCY",
    "ImportJob",
    "RowSource",
    "SendChunk",
    "check_chunking",
]

DEFAULT_IMPORT_CONCURRENCY: Final = 2
RowSource = Iterable[object] | AsyncIterable[object]
"""What an import reads: emails, mappings of row fields or ``ContactChannelOption`` rows."""
SendChunk = Callable[[bytes, bool, CallStats], Awaitable[RawResponse]]
"""Send one chunk's body (``True``: as a dry run), counting its attempts into the stats."""

_STOPS_THE_JOB: Final = (
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    BudgetSettingsError,
    BudgetServerConfigError,
)
"""Errors every later request would get too: the job stops (404: no such segment or org)."""
_STATUS: Final = (None, ImportStatus.CREATED, ImportStatus.UPDATED, ImportStatus.INVALID)
"""The status of each code of ``sort_answer`` (the order of its ``ANSWER_LISTS``)."""
_REJECTED: Final = "listed invalid by the API"
_UPDATED: Final = 2  # the code of an updated row (sort_answer)
NO_CONTACT: Final = "no contact has this email, user id or contact id (create_missing=False)"
_NOT_KEPT: Final = {
    0: (ImportStatus.FAILED, NOT_IN_ANSWER),
    1: (ImportStatus.SKIPPED, NO_CONTACT),
    3: (ImportStatus.INVALID, _REJECTED),
}
"""A row's status and reason when the dry run of ``create_missing=False`` keeps it back."""


def check_chunking(chunk_size: object, max_chunk_bytes: object) -> tuple[int, int]:
    """``(chunk_size, max_chunk_bytes)`` checked: 1 to 10,000 rows, at least 1,024 bytes.

    Raises:
        ValueError: either is out of range or not an integer.
    """
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or not 1 <= chunk_size <= MAX_CHUNK_ROWS
    ):
        raise ValueError(f"chunk_size must be an integer from 1 to 10000, got {chunk_size!r}")
    if (
        isinstance(max_chunk_bytes, bool)
        or not isinstance(max_chunk_bytes, int)
        or max_chunk_bytes < 1024
    ):
        raise ValueError(f"max_chunk_bytes must be an integer >= 1024, got {max_chunk_bytes!r}")
    return chunk_size, max_chunk_bytes


class ImportJob:
    """One import (or its dry run), run by :meth:`run`.

    Args:
        source: The rows.
        send: The request of one chunk (see :data:`SendChunk`).
        segment_id: The segment every imported contact is put into (None: none).
        dry_run: Send dry runs only, and return an :class:`ImportPlan`.
        create_missing: Create a contact for a row that matches none (False: such a row is
            skipped, which costs a dry run of each chunk first).
        chunk_size: Rows per request, at most 10,000.
        max_chunk_bytes: The largest body of a request.
        concurrency: Requests in flight.
        journal: The resume journal (None: none).
        on_progress: Called with an :class:`ImportProgress` at most every 0.2 s, and once at
            the end.
        on_row: Called with each row's :class:`ImportRowResult` as it is known.
        total: Rows in the input, when it has no ``len()``.
        max_retry_after: A 429 asking to wait longer stops the job.
        rate_per_minute: The client's rate budget (for the plan's estimate).
        paths: The request paths ``(import, dry run)``, for the error of a malformed answer.
        name: The job's span name (empty: not traced).
        org_id: The organisation (an attribute of the span).
    """

    def __init__(
        self,
        source: RowSource,
        *,
        send: SendChunk,
        segment_id: str | None,
        dry_run: bool = False,
        create_missing: bool = True,
        chunk_size: int = MAX_CHUNK_ROWS,
        max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        on_progress: Callable[[ImportProgress], object] | None = None,
        on_row: Callable[[ImportRowResult], object] | None = None,
        total: int | None = None,
        max_retry_after: float | None = None,
        rate_per_minute: float | None = None,
        paths: tuple[str, str] = ("", ""),
        name: str = "",
        org_id: str = "",
    ) -> None:
        if isinstance(source, str | bytes) or not isinstance(source, Iterable | AsyncIterable):
            raise TypeError(
                "rows must be an iterable or an async iterable of rows, "
                f"not {type(source).__name__}"
            )
        self._chunk_size, self._max_bytes = check_chunking(chunk_size, max_chunk_bytes)
        self._concurrency = (
            DEFAULT_IMPORT_CONCURRENCY if concurrency is None else check_concurrency(concurrency)
        )
        if journal is not None and not isinstance(journal, str | os.PathLike):
            raise TypeError(f"journal must be a path, got {type(journal).__name__}")
        self._input = IdReader(source, total)  # type: ignore[arg-type]  # (rows, any items)
        self._send = send
        self._segment_id = segment_id
        self._dry_run = dry_run
        self._create_missing = create_missing
        self._journal = Journal(journal, IMPORTED) if journal is not None else None
        self._on_progress = on_progress
        self._on_row = on_row
        self._max_retry_after = max_retry_after
        self._rate_per_minute = rate_per_minute
        self._paths = paths
        self._name = name
        self._org_id = org_id
        self._done_keys: FingerprintSet | None = None
        self._in_flight: dict[asyncio.Task[None], Chunk] = {}
        self._building: Chunk | None = None  # the chunk being filled
        self._pending: Chunk | None = None  # a full chunk waiting to be sent
        self._interrupted: set[asyncio.Task[None]] = set()
        self._fatal: InventError | None = None
        self._crash: BaseException | None = None
        self._input_error: Exception | None = None  # raised once the rows read are sent
        self._taken = 0
        self._created = self._updated = self._invalid = self._failed = self._skipped = 0
        self._requests = self._retries = self._rate_limited = self._chunks = 0
        self._problems: list[ImportRowResult] = []
        self._omitted = 0
        self._start = self._last_progress = 0.0
        self._end: float | None = None
        self._cancelled = False
        self._job: Job | None = None

    # ------------------------------------------------------------------ the run

    async def run(self) -> ImportReport | ImportPlan:
        """Import every row (or dry-run them) and return the report (or the plan).

        Raises:
            ImportAbortedError: an error affects every row (see the class).
            JournalError: the journal cannot be read or written.
            asyncio.CancelledError: the job was cancelled; the chunks in flight are stopped
                (their rows skipped as ``cancelled``) and the partial report is attached
                (:func:`~.import_results.partial_import_report`).
            Exception: what the input, ``on_row`` or ``on_progress`` raised, once the rows
                read before it are sent; the partial report is attached to it too.
        """
        self._start = self._last_progress = time.monotonic()
        name = self._name + (".dry_run" if self._dry_run and self._name else "")
        job = self._job = observe_job(name, org_id=self._org_id, lane="bulk") if name else None
        if job is not None:
            job.enter()
        try:
            if self._journal is not None:
                self._done_keys = FingerprintSet(16)
                self._journal.load_into(self._done_keys)
            await self._read_and_send()
            await self._drain()
        except BaseException as exc:  # cancelled, or the journal failed: stop, then report
            try:
                await self._stop_all()
            finally:
                self._cancelled = True
                self._finish(exc)
                with contextlib.suppress(AttributeError):
                    setattr(exc, IMPORT_REPORT, self.report)
            raise
        finally:
            if job is not None:
                job.leave()
        failure = self._crash or self._input_error
        if failure is not None:
            self._cancelled = True
            self._finish(failure)
            with contextlib.suppress(AttributeError):  # the rows sent before it: reported too
                setattr(failure, IMPORT_REPORT, self.report)
            raise failure
        if self._fatal is not None:
            self._cancelled = True
            self._finish(self._fatal)
            raise self._aborted(self._fatal) from self._fatal
        self._finish(None)
        return self.report

    @property
    def report(self) -> ImportReport | ImportPlan:
        """The report (or plan) so far; final once :meth:`run` returned or raised."""
        end = self._end if self._end is not None else time.monotonic()
        elapsed = end - self._start if self._start else 0.0
        if self._dry_run:
            return ImportPlan(
                total=self._taken,
                created=self._created,
                updated=self._updated,
                invalid=self._invalid,
                failed=self._failed,
                skipped=self._skipped,
                requests=self._requests,
                import_requests=self._chunks,
                rate_per_minute=self._rate_per_minute,
                elapsed=elapsed,
                cancelled=self._cancelled,
                problems=tuple(self._problems),
                problems_omitted=self._omitted,
            )
        return ImportReport(
            total=self._taken,
            created=self._created,
            updated=self._updated,
            invalid=self._invalid,
            failed=self._failed,
            skipped=self._skipped,
            requests=self._requests,
            retries=self._retries,
            rate_limited=self._rate_limited,
            elapsed=elapsed,
            cancelled=self._cancelled,
            problems=tuple(self._problems),
            problems_omitted=self._omitted,
        )

    async def _read_and_send(self) -> None:
        """Read the input a batch at a time into chunks; send each chunk once it is full.

        A row read is accounted for at once (invalid, skipped) or held by a chunk: the one
        being filled (``_building``), the one waiting to be sent (``_pending``), or one in
        flight; so a cancelled job accounts for every row it took."""
        source = self._input
        done = self._done_keys
        chunk = self._building = Chunk(self._chunk_size, self._max_bytes)
        position = 0
        while self._fatal is None and self._crash is None:
            try:
                batch = await source.next_batch()
            except Exception as exc:  # the rows read before it are still sent, then it is raised
                self._input_error = exc
                break
            if not batch:
                break
            for item in batch:
                position += 1
                self._taken = position  # (every row taken is accounted for at once, or held)
                checked = check_row(item)
                if isinstance(checked, str):
                    self._row(position, ImportStatus.INVALID, item, None, checked)
                    continue
                row, key, size = checked
                if done is not None and key in done:
                    self._row(position, ImportStatus.SKIPPED, item, row, "journal")
                    continue
                first = chunk.add(position, item, row, key, size)
                if not first:
                    continue
                if first < 0:  # full: this row starts the next chunk, then the full one is sent
                    full, chunk = chunk, Chunk(self._chunk_size, self._max_bytes)
                    self._building = chunk
                    chunk.add(position, item, row, key, size)
                    await self._launch(full)
                    continue
                reason = f"duplicate of row {first}"
                self._row(position, ImportStatus.SKIPPED, item, row, reason)
            self._tick()
        self._building = None
        if len(chunk):
            await self._launch(chunk)

    async def _launch(self, chunk: Chunk) -> None:
        """Send ``chunk`` once a request may start: fewer than ``concurrency`` in flight, and
        none holding one of its keys."""
        self._pending = chunk
        while self._in_flight and self._fatal is None and self._crash is None:
            keys = chunk.keys.keys()
            blocking = {
                task for task, other in self._in_flight.items() if not keys.isdisjoint(other.keys)
            }
            if not blocking and len(self._in_flight) < self._concurrency:
                break
            await asyncio.wait(blocking or self._in_flight, return_when=asyncio.FIRST_COMPLETED)
        self._pending = None
        if self._fatal is not None or self._crash is not None:
            self._cancel_rows(chunk)
            return
        self._chunks += 1
        task = asyncio.create_task(self._send_chunk(chunk), name="invent-import-chunk")
        self._in_flight[task] = chunk
        task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[None]) -> None:
        """A chunk's task ended. Cancelled, its coroutine never ran (cancelled before its first
        step) or gave up without accounting for its rows: they are skipped (cancelled)."""
        if task not in self._in_flight:
            return  # accounted for already (by _stop_all, before this callback ran)
        chunk = self._in_flight.pop(task)
        self._interrupted.discard(task)
        if task.cancelled():
            self._cancel_rows(chunk)
        elif (exc := task.exception()) is not None and self._crash is None:
            self._crash = exc  # the journal could not be written

    async def _drain(self) -> None:
        while self._in_flight:
            await asyncio.wait(list(self._in_flight), return_when=asyncio.FIRST_COMPLETED)

    async def _stop_all(self) -> None:
        """Cancel every chunk in flight and wait for it; its rows, and those of the chunks
        not sent yet, are skipped (cancelled). A cancellation while it waits (a second
        Ctrl-C, a cancel scope that cancels at every await) does not cut the wait short:
        the tasks were cancelled already, and their rows must be accounted for (in input
        order: those in flight, then those waiting)."""
        tasks = list(self._in_flight)
        for task in tasks:
            self._interrupted.add(task)
            task.cancel()
        while not all(task.done() for task in tasks):
            try:
                await asyncio.wait(tasks)
            except asyncio.CancelledError:
                continue
        for task in tasks:  # done, its callback maybe not run yet: account for it now
            self._landed(task)
        for chunk in (self._pending, self._building):
            if chunk is not None:
                self._cancel_rows(chunk)
        self._pending = self._building = None

    # ------------------------------------------------------------------ one chunk

    async def _send_chunk(self, chunk: Chunk) -> None:
        """Send ``chunk``, then account for each of its rows.

        Without ``create_missing``, a dry run of the chunk comes first: its rows that would
        create a contact are skipped (``no contact``), and only those that would update one
        are sent (none: no second request)."""
        if not self._create_missing:
            sorted_rows = await self._ask(chunk, dry=True)
            if sorted_rows is None:
                return
            codes, contacts = sorted_rows
            keep = [index for index, code in enumerate(codes) if code == _UPDATED]
            for index, code in enumerate(codes):
                if code != _UPDATED:
                    status, reason = _NOT_KEPT[code]
                    self._row(
                        chunk.positions[index],
                        status,
                        chunk.items[index],
                        chunk.rows[index],
                        reason,
                    )
            if not keep:
                self._tick()
                return
            self._chunks += 1  # the import of the rows kept
            if self._dry_run:
                self._account(
                    chunk.subset(keep),
                    bytearray([_UPDATED]) * len(keep),
                    [contacts[i] for i in keep],
                )
                return
            chunk = chunk.subset(keep)
        sorted_rows = await self._ask(chunk, dry=self._dry_run)
        if sorted_rows is not None:
            self._account(chunk, *sorted_rows)

    async def _ask(self, chunk: Chunk, *, dry: bool) -> tuple[bytearray, list[str | None]] | None:
        """Send ``chunk`` (as a dry run or not): the answer's code and contact of each row;
        None when its rows are accounted for already (the request failed, was cancelled, or
        was answered 413 and its halves were sent in its place)."""
        task = asyncio.current_task()
        stats = CallStats()
        try:
            raw = await self._send(chunk.body(self._segment_id), dry, stats)
        except asyncio.CancelledError:
            self._count_attempts(stats)
            if task not in self._interrupted:
                raise
            self._cancel_rows(chunk)
            return None
        except APIStatusError as exc:
            self._count_attempts(stats)
            if exc.status == 413 and len(chunk) > 1:  # refused whole: nothing was imported
                self._chunks += 1
                for half in chunk.halves():
                    if task in self._interrupted or self._fatal or self._crash:
                        self._cancel_rows(half)  # stopped meanwhile: not sent
                    else:
                        await self._send_chunk(half)
                return None
            self._chunk_failed(chunk, exc)
            return None
        except InventError as exc:
            self._count_attempts(stats)
            self._chunk_failed(chunk, exc)
            return None
        self._count_attempts(stats)
        try:
            answer = loads(raw.body)
        except ValueError:
            answer = None
        sorted_rows = sort_answer(chunk, answer)
        if isinstance(sorted_rows, str):
            path = self._paths[1 if dry else 0]
            error = ResponseValidationError(
                [sorted_rows], method="POST", path=path, type_name="ContactImportResult"
            )
            self._chunk_failed(chunk, error)
            return None
        return sorted_rows

    def _account(self, chunk: Chunk, codes: bytearray, contacts: list[str | None]) -> None:
        """Count each row of an answered chunk; journal those created or updated."""
        recorded: list[str] = []
        keys = chunk.primary if self._journal is not None else None
        positions, items, rows = chunk.positions, chunk.items, chunk.rows
        for index, code in enumerate(codes):
            status = _STATUS[code]
            if status is None or status is ImportStatus.INVALID:
                reason = _REJECTED if status else NOT_IN_ANSWER
                failed = status or ImportStatus.FAILED
                self._row(positions[index], failed, items[index], rows[index], reason)
                continue
            if status is ImportStatus.CREATED:
                self._created += 1
            else:
                self._updated += 1
            if keys is not None:
                recorded.append(keys[index])
            if self._on_row is not None:
                self._tell(
                    ImportRowResult(
                        position=positions[index],
                        status=status,
                        item=items[index],
                        row=rows[index],
                        contact_id=contacts[index],
                    )
                )
        if recorded and self._journal is not None and not self._dry_run:
            self._journal.record_many(recorded)
        self._tick()

    def _count_attempts(self, stats: CallStats) -> None:
        self._requests += stats.attempts
        self._retries += max(stats.attempts - 1, 0)
        self._rate_limited += stats.rate_limited

    def _chunk_failed(self, chunk: Chunk, exc: InventError) -> None:
        """Every row of ``chunk`` failed with ``exc``; stop the job when it says so."""
        if isinstance(exc, ClientClosedError):
            self._stop(exc)
            self._cancel_rows(chunk)
            return
        if isinstance(exc, _STOPS_THE_JOB):
            if self._fatal is None:
                self._fatal = exc
        elif isinstance(exc, RateLimitError) and self._waits_too_long(exc):
            self._stop(exc)
        reason = str(exc)
        for position, item, row in zip(chunk.positions, chunk.items, chunk.rows, strict=True):
            self._row(position, ImportStatus.FAILED, item, row, reason, exc)
        self._tick()

    def _waits_too_long(self, exc: RateLimitError) -> bool:
        limit = self._max_retry_after
        return limit is not None and exc.retry_after is not None and exc.retry_after > limit

    def _stop(self, exc: InventError) -> None:
        """Stop the job for ``exc``: the other chunks in flight are cancelled (they would
        wait for the closed gate, or cannot be sent)."""
        if self._fatal is None:
            self._fatal = exc
        current = asyncio.current_task()
        for task in self._in_flight:
            if task is not current and task not in self._interrupted:
                self._interrupted.add(task)
                task.cancel()

    def _cancel_rows(self, chunk: Chunk) -> None:
        for position, item, row in zip(chunk.positions, chunk.items, chunk.rows, strict=True):
            self._row(position, ImportStatus.SKIPPED, item, row, "cancelled")

    # ------------------------------------------------------------------ accounting

    def _row(
        self,
        position: int,
        status: ImportStatus,
        item: object,
        row: dict[str, str] | None,
        reason: str,
        error: Exception | None = None,
    ) -> None:
        """Count a row that was not created or updated; keep it when it is a problem."""
        if status is ImportStatus.SKIPPED:
            self._skipped += 1
        elif status is ImportStatus.INVALID:
            self._invalid += 1
        else:
            self._failed += 1
        result: ImportRowResult | None = None
        if status is not ImportStatus.SKIPPED:
            if len(self._problems) < PROBLEMS_KEPT:
                result = ImportRowResult(
                    position=position,
                    status=status,
                    item=item,
                    row=row,
                    reason=reason,
                    error=error,
                )
                self._problems.append(result)
            else:
                self._omitted += 1
        if self._on_row is not None:
            if result is None:
                result = ImportRowResult(
                    position=position,
                    status=status,
                    item=item,
                    row=row,
                    reason=reason,
                    error=error,
                )
            self._tell(result)

    def _tell(self, result: ImportRowResult) -> None:
        """Hand ``result`` to ``on_row``. What it raises stops the job once the rows taken
        are accounted for (they are: this row is counted already) and is raised by
        :meth:`run`."""
        assert self._on_row is not None
        try:
            self._on_row(result)
        except Exception as exc:
            if self._crash is None:
                self._crash = exc

    def _counts(self) -> tuple[int, int, int, int, int]:
        return self._created, self._updated, self._invalid, self._failed, self._skipped

    def _tick(self) -> None:
        if self._on_progress is None:
            return
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = now
            try:
                self._on_progress(self._progress(now, finished=False))
            except Exception as exc:  # stops the job, as on_row's does (see _tell)
                if self._crash is None:
                    self._crash = exc

    def _progress(self, now: float, *, finished: bool) -> ImportProgress:
        return import_progress(
            self._counts(),
            self._input.total,
            self._requests,
            self._rate_limited,
            max(now - self._start, 1e-9),
            dry_run=self._dry_run,
            finished=finished,
        )

    def _finish(self, error: BaseException | None) -> None:
        if self._end is not None:
            return
        self._end = time.monotonic()
        try:
            if self._journal is not None:
                self._journal.close()
        finally:
            if self._job is not None:
                created, updated, invalid, failed, skipped = self._counts()
                self._job.end(
                    {
                        "total": self._taken,
                        "succeeded": created + updated,
                        "failed": invalid + failed,
                        "skipped": skipped,
                        "created": created,
                        "updated": updated,
                        "invalid": invalid,
                        "requests": self._requests,
                        "rate_limited": self._rate_limited,
                        "cancelled": self._cancelled,
                    },
                    error,
                )
            if self._on_progress is not None and error is None:
                self._on_progress(self._progress(self._end, finished=True))

    def _aborted(self, fatal: InventError) -> ImportAbortedError:
        retry_after = fatal.retry_after if isinstance(fatal, RateLimitError) else None
        why = "this error affects every row"
        if isinstance(fatal, ClientClosedError):
            why = "the client was closed while the job ran"
        elif isinstance(fatal, NotFoundError):
            why = "the segment or the organisation does not exist"
        elif retry_after is not None:
            why = f"the server asked to wait {retry_after:.0f}s, more than max_retry_after"
        what = "import dry run" if self._dry_run else "import"
        return ImportAbortedError(
            f"{what} stopped early: {fatal} ({why})", self.report, retry_after
        )
