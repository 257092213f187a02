"""Bulk engine: apply one per-contact operation to a stream of contact ids.

A bounded pool of long-lived worker tasks pulls ids lazily from any iterable or async
iterable (a list, a generator, a file being read, a paginated ``contacts.list()``), so memory
grows with the concurrency, not with the input: there is no ``gather`` of N tasks. Each input
id ends in exactly one outcome, reported as an :class:`ItemResult`:

- ``SUCCEEDED`` (the API accepted it), ``FAILED`` (with the exception and the number of
  attempts; transient errors were already retried by the client's retry policy), or
- ``SKIPPED`` with a reason: a duplicate of an earlier id, already done according to the
  resume journal, or cancelled while in flight.

Duplicate detection keeps a 64-bit fingerprint per id in a compact open-addressing table
(about 16 bytes per id), not the ids themselves. The resume journal is a UTF-8 text file with
one completed id per newline-terminated line, written through to the OS as each id completes;
a job of another kind (the removals of a segment sync) writes ``<kind>\t<id>`` lines into the
same file, which the other kinds ignore.
Requests go through the client's normal path, so the shared rate governor paces them and every
429 pauses all workers together.
"""

from __future__ import annotations

import asyncio
import enum
import os
import time
from array import array
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from pathlib import Path
from typing import Final, Self, TypedDict

import attrs

from ._exceptions import (
    AuthenticationError,
    ClientClosedError,
    InventError,
    PermissionDeniedError,
    RateLimitError,
)
from ._models import Contact
from ._observe import Job
from ._observe import job as observe_job
from ._pipeline import CallStats

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "BulkAbortedError",
    "BulkOptions",
    "BulkFailure",
    "BulkProgress",
    "BulkReport",
    "BulkStream",
    "ItemResult",
    "JOURNAL_KINDS",
    "JournalError",
    "Outcome",
    "check_options",
    "partial_report",
    "read_journal",
]

DEFAULT_CONCURRENCY: Final = 32
DEFAULT_MAX_RETRIES: Final = 8
"""Default retries per item in bulk jobs (transient errors; 429s wait for the governor)."""
PROGRESS_INTERVAL: Final = 0.2
"""Seconds between two progress callbacks (the final one is always sent)."""
JOURNAL_SYNC_INTERVAL: Final = 1.0
"""Seconds between two ``fsync`` calls of the resume journal (each id is written at once)."""
JOURNAL_KINDS: Final = frozenset({"removed"})
"""Kinds of journal lines besides plain ids: ``removed\t<id>`` records a segment sync's
removal (see ``_segment_job``), so that a resumed sync neither removes it again nor takes it
for an id that was added."""


class Outcome(enum.StrEnum):
    """How one input id ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@attrs.frozen(kw_only=True)
class ItemResult:
    """The outcome of one input id.

    Attributes:
        contact_id: The input id.
        outcome: SUCCEEDED, FAILED or SKIPPED.
        attempts: HTTP attempts made for this id (0 when skipped).
        error: The exception of a failed item.
        contact: The updated contact of a succeeded item.
        reason: Why an item was skipped: ``"duplicate"``, ``"journal"`` or ``"cancelled"``.
    """

    contact_id: str
    outcome: Outcome
    attempts: int = 0
    error: Exception | None = None
    contact: Contact | None = None
    reason: str | None = None


@attrs.frozen(kw_only=True)
class BulkFailure:
    """A failed item of a bulk job: its id, the exception and how many attempts were made."""

    contact_id: str
    error: Exception
    attempts: int


@attrs.frozen(kw_only=True)
class BulkProgress:
    """A progress snapshot given to ``on_progress`` callbacks.

    Attributes:
        done: Items finished (any outcome).
        total: Items in the input, when known (a sized input or ``total=``), else None.
        succeeded: Items that succeeded.
        failed: Items that failed.
        skipped: Items skipped (duplicates, journal, cancelled).
        retries: Retried HTTP attempts so far.
        rate_limited: 429 answers seen so far.
        elapsed: Seconds since the job started.
        rate: Items finished per second so far.
        eta: Estimated seconds left (None when the total is unknown).
        finished: True on the last callback of the job.
    """

    done: int
    total: int | None
    succeeded: int
    failed: int
    skipped: int
    retries: int
    rate_limited: int
    elapsed: float
    rate: float
    eta: float | None
    finished: bool = False

    def __str__(self) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        eta = f", eta {self.eta:.0f}s" if self.eta is not None else ""
        return (
            f"{self.done}{total} done ({self.succeeded} ok, {self.failed} failed, "
            f"{self.skipped} skipped), {self.rate:.1f}/s, {self.retries} retries{eta}"
        )


@attrs.frozen(kw_only=True)
class BulkReport:
    """The result of a bulk job. ``succeeded + failed + skipped == total``.

    Attributes:
        total: Input items taken from the input (duplicates included).
        succeeded: How many succeeded.
        failed: How many failed; each one is in :attr:`failures`.
        skipped: How many were skipped (duplicates, already in the journal, cancelled).
        failures: Every failed item with its exception and attempt count.
        cancelled_ids: Items that were in flight when the job was cancelled or aborted.
        retries: Retried HTTP attempts.
        rate_limited: 429 answers seen during the job.
        elapsed: Seconds the job ran.
        cancelled: True when the job was stopped before the input was exhausted.
    """

    total: int
    succeeded: int
    failed: int
    skipped: int
    failures: tuple[BulkFailure, ...]
    cancelled_ids: tuple[str, ...]
    retries: int
    rate_limited: int
    elapsed: float
    cancelled: bool

    @property
    def rate(self) -> float:
        """Items finished per second."""
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def failed_ids(self) -> tuple[str, ...]:
        """The ids of the failed items, in completion order."""
        return tuple(f.contact_id for f in self.failures)


class BulkAbortedError(InventError):
    """A bulk job stopped early because an error affects every item.

    That is a 401/403, a 429 whose ``Retry-After`` is longer than the client's
    ``RateLimit.max_retry_after``, or the client closed while the job ran (``__cause__`` is
    then the :class:`ClientClosedError`). Ids not taken from the input yet are not in the
    report: they are simply not done (a re-run with the same ``journal`` does them).

    Attributes:
        report: The partial report. After a 401/403, the items in flight ended as their
            answers said; after a long ``Retry-After`` or the client's close, they were marked
            skipped (cancelled).
        retry_after: The seconds the server asked to wait (None otherwise).
    """

    def __init__(self, message: str, report: BulkReport, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.report = report
        self.retry_after = retry_after


def partial_report(exc: BaseException) -> BulkReport | None:
    """The partial :class:`BulkReport` attached to a bulk job's ``CancelledError``.

    A cancelled ``bulk_add_segment()`` re-raises ``asyncio.CancelledError`` (so that timeouts
    and task groups keep working) with its report attached; this reads it back, also from the
    ``TimeoutError`` that ``asyncio.timeout()`` raises in its place.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # also through asyncio.timeout()
        seen.add(id(current))
        report = getattr(current, "invent_bulk_report", None)
        if isinstance(report, BulkReport):
            return report
        current = current.__cause__ or current.__context__
    return None


Operation = Callable[[str, CallStats], Awaitable[Contact | None]]
"""What a bulk job applies to each id, counting its attempts into the ``CallStats``."""
ProgressCallback = Callable[[BulkProgress], object]
IdSource = Iterable[str | Contact] | AsyncIterable[str | Contact]
"""What a bulk job reads: ids, or contacts (their ``id`` is used), from any (async) iterable."""


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


# --------------------------------------------------------------------------- dedup set


class FingerprintSet:
    """A set of 64-bit fingerprints of strings, about 16 bytes per entry.

    Fingerprints come from ``hash(str)`` (stable within one process); two different ids share a
    fingerprint with probability ~N^2/2^65 (about 3e-8 for a million ids), in which case the
    second is reported as a skipped duplicate, never silently dropped.
    """

    __slots__ = ("_mask", "_slots", "_used")

    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < capacity * 2:
            size *= 2
        self._slots = array("Q", [0]) * size
        self._mask = size - 1
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        fp = hash(key) & 0xFFFFFFFFFFFFFFFF or 1
        slots, mask = self._slots, self._mask
        i = fp & mask
        while found := slots[i]:
            if found == fp:
                return True
            i = (i + 1) & mask
        return False

    def add(self, key: str) -> bool:
        """Add ``key``; return False when it (or its fingerprint) was already present."""
        fp = hash(key) & 0xFFFFFFFFFFFFFFFF or 1
        slots, mask = self._slots, self._mask
        i = fp & mask
        while True:
            found = slots[i]
            if found == 0:
                break
            if found == fp:
                return False
            i = (i + 1) & mask
        slots[i] = fp
        self._used += 1
        if self._used * 4 > len(slots) * 3:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        size = len(old) * 2
        self._slots = slots = array("Q", [0]) * size
        self._mask = mask = size - 1
        for fp in old:
            if fp:
                i = fp & mask
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = fp


# --------------------------------------------------------------------------- journal


class JournalError(InventError):
    """The resume journal cannot be used: it is not UTF-8 text, or it cannot be read or written.

    Raised by the bulk job (from iteration, before any request for a bad file) instead of the
    raw ``UnicodeDecodeError`` or ``OSError``, which is kept as ``__cause__``.

    Attributes:
        path: The journal file.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class _Journal:
    """Append-only file of completed ids, one per newline-terminated line.

    Only complete lines count: a torn last line (the process died in the middle of writing
    it) is ignored when loading and cut off before the first append, so it can neither be
    taken for a finished id nor glued to the next one. Each id is handed to the OS with one
    unbuffered ``os.write`` as soon as it completes, so a killed process loses none of them
    (at most the ids in flight are sent again on resume); ``fsync`` runs at most every
    :data:`JOURNAL_SYNC_INTERVAL` seconds and on close, for a crash of the whole machine.

    ``kind`` (one of ``JOURNAL_KINDS``, or None for plain ids) says which lines are this
    journal's: it writes ``<kind>\t<id>`` and loads only the lines of its own kind, so the
    adds and the removals of a segment sync share one file without mixing.
    """

    def __init__(self, path: str | os.PathLike[str], kind: str | None = None) -> None:
        if kind is not None and kind not in JOURNAL_KINDS:
            raise ValueError(f"unknown journal kind {kind!r}")
        self.path = Path(path)
        self._kind = kind
        self._prefix = "" if kind is None else kind + "\t"
        self._fd: int | None = None
        self._valid_size: int | None = None  # bytes up to the last newline, when loaded
        self._last_sync = time.monotonic()

    def load_into(self, done: FingerprintSet) -> int:
        """Add the ids of every complete line of this kind to ``done``; return how many.

        Raises:
            JournalError: the file is not UTF-8 text or cannot be read.
        """
        count = 0
        valid = 0
        try:
            with self.path.open("rb") as fh:
                for number, raw in enumerate(fh, 1):
                    if not raw.endswith(b"\n"):
                        break  # a torn tail: never written completely
                    valid += len(raw)
                    try:
                        line = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError:
                        raise self._error(f"line {number} is not valid UTF-8 text") from None
                    kind, contact_id = _journal_line(line)
                    if contact_id and kind == self._kind:
                        done.add(contact_id)
                        count += 1
        except FileNotFoundError:
            valid = 0
        except OSError as exc:
            raise self._error(f"cannot read it: {exc.strerror or exc}") from exc
        self._valid_size = valid
        return count

    def record(self, contact_id: str) -> None:
        """Hand one completed id to the OS now (one ``write``, no buffering in Python).

        An id containing a line break is not recorded (it could not be read back as one id),
        nor a plain id that would read back as a line of another kind: a resumed job sends
        it again, which is safe.

        Raises:
            JournalError: the file cannot be opened or written (disk full, permissions).
        """
        if "\n" in contact_id or "\r" in contact_id:
            return
        if self._kind is None and _journal_line(contact_id)[0] is not None:
            return
        try:
            fd = self._fd if self._fd is not None else self._open()
            data = (self._prefix + contact_id + "\n").encode("utf-8", "surrogateescape")
            while data:
                data = data[os.write(fd, data) :]
            now = time.monotonic()
            if now - self._last_sync >= JOURNAL_SYNC_INTERVAL:
                self._last_sync = now
                os.fsync(fd)
        except OSError as exc:
            raise self._error(f"cannot write it: {exc.strerror or exc}") from exc

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            if self._valid_size is not None and os.fstat(fd).st_size > self._valid_size:
                os.ftruncate(fd, self._valid_size)  # repair a torn tail before appending
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return fd

    def close(self) -> None:
        """Sync and close the file (if anything was written).

        Raises:
            JournalError: the final ``fsync`` failed (the ids may not be on disk).
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            raise self._error(f"cannot save it: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)

    def _error(self, problem: str) -> JournalError:
        return JournalError(f"journal {self.path}: {problem}", str(self.path))


def _journal_line(line: str) -> tuple[str | None, str]:
    """(kind, id) of a journal line: ``<kind>\t<id>`` for a known kind, else a plain id."""
    kind, tab, rest = line.partition("\t")
    if tab and kind in JOURNAL_KINDS:
        return kind, rest
    return None, line


def read_journal(path: str | os.PathLike[str], kind: str | None = None) -> FingerprintSet:
    """The ids a journal records as done (of ``kind``; None: plain ids), without writing it.

    A missing file records nothing. For a plan made before a job runs (a dry run).

    Raises:
        JournalError: the file is not UTF-8 text or cannot be read.
    """
    done = FingerprintSet(16)
    _Journal(path, kind).load_into(done)
    return done


# --------------------------------------------------------------------------- the engine


def _known_total(source: object) -> int | None:
    try:
        return len(source)  # type: ignore[arg-type]
    except TypeError:
        return None


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
        conc = DEFAULT_CONCURRENCY if concurrency is None else concurrency
        if isinstance(conc, bool) or not isinstance(conc, int) or conc < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        if isinstance(source, str | bytes):
            raise TypeError("contact_ids must be an iterable of ids, not a single string")
        if not isinstance(source, Iterable | AsyncIterable):
            raise TypeError("contact_ids must be an iterable or an async iterable of ids")
        self._operation = operation
        self._source = source
        self._concurrency = conc
        self._on_progress = on_progress
        self._journal = _Journal(journal, journal_kind) if journal is not None else None
        self._total = total if total is not None else _known_total(source)
        self._results: asyncio.Queue[ItemResult | None] = asyncio.Queue(maxsize=conc * 4)
        self._streaming = streaming  # False: only count outcomes (run()), no per-item hand-off
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: dict[asyncio.Task[None], str] = {}
        self._async_source: AsyncIterator[str | Contact] | None = None
        self._sync_source: Iterator[str | Contact] | None = None
        self._pull_lock = asyncio.Lock()
        self._seen = FingerprintSet(min(self._total or 1024, 1 << 20))
        self._journal_done = FingerprintSet(16)
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
            exc.invent_bulk_report = self.report  # type: ignore[attr-defined]
            raise
        return self.report

    # ------------------------------------------------------------------ workers

    def _start_workers(self) -> None:
        self._started = True
        self._start = self._last_progress = time.monotonic()
        if self._journal is not None:
            self._journal.load_into(self._journal_done)
        if isinstance(self._source, AsyncIterable):
            self._async_source = aiter(self._source)
        else:
            self._sync_source = iter(self._source)
        self._running = self._concurrency
        job = self._job = (
            observe_job(self._name, org_id=self._org_id, lane="bulk") if self._name else None
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
            while (contact_id := await self._next_id()) is not None:
                result = self._precheck(contact_id)
                if result is None:
                    self._in_flight[task] = contact_id
                    try:
                        result = await self._run_one(contact_id)
                    except asyncio.CancelledError:
                        if task not in self._interrupted:
                            raise
                        task.uncancel()  # the job stopped (_stop_in_flight): not the caller
                        self._cancelled_ids.append(contact_id)
                        result = ItemResult(
                            contact_id=contact_id, outcome=Outcome.SKIPPED, reason="cancelled"
                        )
                    finally:
                        self._interrupted.discard(task)
                    del self._in_flight[task]
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

    async def _next_id(self) -> str | None:
        if self._stopping():
            return None
        if self._sync_source is not None:
            try:
                item: object = next(self._sync_source)
            except StopIteration:
                return None
        else:
            assert self._async_source is not None
            async with self._pull_lock:  # an async generator cannot be advanced concurrently
                if self._stopping():
                    return None
                try:
                    item = await anext(self._async_source)
                except StopAsyncIteration:
                    return None
                if self._stopping():  # the job stopped while this worker waited for an id
                    contact_id = item if isinstance(item, str) else getattr(item, "id", None)
                    if isinstance(contact_id, str):  # taken, but not sent: reported cancelled
                        self._taken += 1
                        self._skipped += 1
                        self._cancelled_ids.append(contact_id)
                    return None
        self._taken += 1
        return item if isinstance(item, str) else _id_of(item)

    def _stopping(self) -> bool:
        return self._fatal is not None or self._crash is not None

    def _precheck(self, contact_id: str) -> ItemResult | None:
        if not self._seen.add(contact_id):
            return ItemResult(contact_id=contact_id, outcome=Outcome.SKIPPED, reason="duplicate")
        if self._journal is not None and contact_id in self._journal_done:
            return ItemResult(contact_id=contact_id, outcome=Outcome.SKIPPED, reason="journal")
        return None

    async def _run_one(self, contact_id: str) -> ItemResult:
        counter = CallStats()
        try:
            contact = await self._operation(contact_id, counter)
        except ClientClosedError as exc:  # nothing more can be sent: stop, as for a 401
            if self._fatal is None:
                self._fatal = exc
            self._stop_in_flight()
            self._cancelled_ids.append(contact_id)
            return ItemResult(contact_id=contact_id, outcome=Outcome.SKIPPED, reason="cancelled")
        except (InventError, ValueError, TypeError) as exc:
            if isinstance(exc, AuthenticationError | PermissionDeniedError):
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
        finally:
            self._retries += max(counter.attempts - 1, 0)
            self._rate_limited += counter.rate_limited
        return ItemResult(
            contact_id=contact_id,
            outcome=Outcome.SUCCEEDED,
            attempts=counter.attempts,
            contact=contact,
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
        if self._job is not None:
            self._job.item(result.outcome.value)
        if result.outcome is Outcome.SUCCEEDED:
            self._succeeded += 1
            if self._journal is not None:
                self._journal.record(result.contact_id)
        elif result.outcome is Outcome.FAILED:
            self._failed += 1
            assert result.error is not None
            self._failures.append(
                BulkFailure(
                    contact_id=result.contact_id, error=result.error, attempts=result.attempts
                )
            )
        else:
            self._skipped += 1
        if self._on_progress is not None:
            now = time.monotonic()
            if now - self._last_progress >= PROGRESS_INTERVAL:
                self._last_progress = now
                self._on_progress(self._progress(now, finished=False))

    def _progress(self, now: float, *, finished: bool) -> BulkProgress:
        elapsed = max(now - self._start, 1e-9)
        done = self._succeeded + self._failed + self._skipped
        rate = done / elapsed
        eta = None
        if self._total is not None and rate > 0:
            eta = max(self._total - done, 0) / rate
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


def _id_of(item: object) -> str:
    """Accept contacts (anything with a string ``id``) as well as id strings."""
    contact_id = getattr(item, "id", None)
    if isinstance(contact_id, str):
        return contact_id
    raise TypeError(f"expected a contact id string, got {type(item).__name__}")
