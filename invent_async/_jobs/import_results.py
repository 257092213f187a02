"""What a bulk import reports: each row's outcome, progress, the report, the plan of a dry
run, and the error of an import that stopped early.

Plain values only: nothing here runs a job or sends a request.
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from .._exceptions import InventError
from .segment_sync_plan import format_duration, rate_and_eta

__all__ = [
    "PROBLEMS_KEPT",
    "ImportAbortedError",
    "ImportPlan",
    "ImportProgress",
    "ImportReport",
    "ImportRowResult",
    "ImportStatus",
    "import_progress",
    "partial_import_report",
]

PROBLEMS_KEPT: Final = 1000
"""Invalid and failed rows a report keeps with their reasons (all are counted, and every one
is handed to ``on_row``)."""
IMPORT_REPORT: Final = "invent_import_report"  # the attribute of a cancelled import's error


class ImportStatus(enum.StrEnum):
    """How one row of an import ended (in a dry run: how it would end)."""

    CREATED = "created"
    """The API created a contact for it (a dry run: would create one)."""
    UPDATED = "updated"
    """It matched a contact, which the API updated (a dry run: would update)."""
    INVALID = "invalid"
    """Refused: by the client's checks before sending (the reason says which), or listed
    invalid by the API."""
    FAILED = "failed"
    """Its request failed (``error``), or the answer did not mention it; nothing says whether
    the API imported it, and importing it again is safe (a row matching a contact updates it)."""
    SKIPPED = "skipped"
    """Not sent: a duplicate of an earlier row of its request, done according to the
    journal, or in flight when the job was stopped (``reason``)."""


@attrs.frozen(kw_only=True)
class ImportRowResult:
    """The outcome of one input row, given to ``on_row``.

    Attributes:
        position: The row's place in the input: 1 for the first item read.
        status: What happened to it.
        item: The row as the input gave it (an email, a mapping or a ``ContactChannelOption``).
        row: The row's fields as checked (blanks dropped, ``type`` defaulted) and sent; None
            for an invalid row.
        reason: Why it is invalid, failed or skipped (None otherwise): the client's check, the
            API's verdict, ``"duplicate of row 12"``, ``"journal"``, ``"cancelled"``.
        contact_id: The contact created or updated, when the answer names it.
        error: The exception of a failed row's request.
    """

    position: int
    status: ImportStatus
    item: object
    row: dict[str, str] | None = None
    reason: str | None = None
    contact_id: str | None = None
    error: Exception | None = None


@attrs.frozen(kw_only=True)
class ImportProgress:
    """A snapshot given to ``on_progress`` a few times a second, and once more (``finished``)
    when the job runs to its end (not when it is cancelled or stops on an error).

    Attributes:
        done: Rows accounted for (any status).
        total: Rows in the input when known (a sized input or ``total=``).
        created: Rows created (a dry run: would be).
        updated: Rows updated (a dry run: would be).
        invalid: Rows invalid.
        failed: Rows whose request failed.
        skipped: Rows skipped.
        requests: HTTP requests sent so far (retries included).
        rate_limited: 429 answers so far.
        elapsed: Seconds since the job started.
        rate: Rows accounted for per second.
        eta: Estimated seconds left (None without a total).
        dry_run: Whether only dry runs are sent.
        finished: True on the last callback.
    """

    done: int
    total: int | None
    created: int
    updated: int
    invalid: int
    failed: int
    skipped: int
    requests: int
    rate_limited: int
    elapsed: float
    rate: float
    eta: float | None
    dry_run: bool = False
    finished: bool = False

    def __str__(self) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        eta = f", eta {format_duration(self.eta)}" if self.eta is not None else ""
        verb = "would be " if self.dry_run else ""
        return (
            f"{self.done}{total} rows: {self.created} {verb}created, {self.updated} {verb}"
            f"updated, {self.invalid} invalid, {self.failed} failed, {self.skipped} skipped; "
            f"{_requests(self.requests)}, {self.rate:.0f} rows/s{eta}"
        )


def _requests(count: int) -> str:
    return f"{count} request" if count == 1 else f"{count} requests"


def import_progress(
    counts: tuple[int, int, int, int, int],
    total: int | None,
    requests: int,
    rate_limited: int,
    elapsed: float,
    *,
    dry_run: bool,
    finished: bool,
) -> ImportProgress:
    """An :class:`ImportProgress` of the counts ``(created, updated, invalid, failed,
    skipped)``."""
    done = sum(counts)
    rate, eta = rate_and_eta(done, total, elapsed)
    created, updated, invalid, failed, skipped = counts
    return ImportProgress(
        done=done,
        total=total,
        created=created,
        updated=updated,
        invalid=invalid,
        failed=failed,
        skipped=skipped,
        requests=requests,
        rate_limited=rate_limited,
        elapsed=elapsed,
        rate=rate,
        eta=eta,
        dry_run=dry_run,
        finished=finished,
    )


@attrs.frozen(kw_only=True)
class ImportReport:
    """The result of an import. ``created + updated + invalid + failed + skipped == total``.

    Attributes:
        total: Rows taken from the input.
        created: Rows for which the API created a contact.
        updated: Rows that updated a contact (one that existed, or one an earlier request of
            the job created).
        invalid: Rows refused, by the client's checks or by the API.
        failed: Rows whose request failed or whose answer did not mention them.
        skipped: Rows not sent: duplicates within a request, done in the journal, cancelled.
        requests: HTTP requests sent (retries included).
        retries: Retried requests.
        rate_limited: 429 answers.
        elapsed: Seconds the job ran.
        cancelled: True when it stopped before the input ended.
        problems: The first 1,000 invalid and failed rows, in the order they
            were found.
        problems_omitted: Invalid and failed rows beyond those.
    """

    total: int
    created: int
    updated: int
    invalid: int
    failed: int
    skipped: int
    requests: int
    retries: int
    rate_limited: int
    elapsed: float
    cancelled: bool
    problems: tuple[ImportRowResult, ...] = ()
    problems_omitted: int = 0

    @property
    def ok(self) -> bool:
        """No row invalid or failed, and the job ran to its end."""
        return not (self.invalid or self.failed or self.cancelled)

    def __str__(self) -> str:
        return (
            f"{self.total} rows: {self.created} created, {self.updated} updated, "
            f"{self.invalid} invalid, {self.failed} failed, {self.skipped} skipped; "
            f"{_requests(self.requests)} in {format_duration(self.elapsed)}"
        )


@attrs.frozen(kw_only=True)
class ImportPlan:
    """What an import would do (``dry_run=True``): the API's dry run of every chunk.

    Counts as in :class:`ImportReport`, for what the import would do now: a row that would
    create a contact, one that would update one. Two rows of different chunks for one new
    contact are both counted as created here (each dry run is alone); the import creates the
    contact once and updates it.

    Attributes:
        total: Rows taken from the input.
        created: Rows that would create a contact.
        updated: Rows that would update one.
        invalid: Rows refused, by the client's checks or by the API's dry run.
        failed: Rows whose dry run failed.
        skipped: Duplicates within a chunk, and rows done in the journal.
        requests: Dry-run requests sent (retries included).
        import_requests: Requests the import would send: one per chunk (with
            ``create_missing=False``, two: its dry run, then the import of the rows that
            match a contact, when there is one).
        rate_per_minute: The client's rate budget (None: not paced).
        elapsed: Seconds the dry run took.
        cancelled: True when it stopped before the input ended (a partial plan).
        problems: The first 1,000 invalid and failed rows.
        problems_omitted: Invalid and failed rows beyond those.
    """

    total: int
    created: int
    updated: int
    invalid: int
    failed: int
    skipped: int
    requests: int
    import_requests: int
    rate_per_minute: float | None
    elapsed: float
    cancelled: bool = False
    problems: tuple[ImportRowResult, ...] = ()
    problems_omitted: int = 0

    @property
    def budget_seconds(self) -> float | None:
        """The seconds of the rate budget that the import's requests take, or None when the
        client is not paced: what the import costs at least, the API's own work on each
        chunk excepted."""
        if not self.rate_per_minute:
            return None
        return self.import_requests * 60.0 / self.rate_per_minute

    def __str__(self) -> str:
        budget = self.budget_seconds
        at = (
            f" ({format_duration(budget)} at {self.rate_per_minute:g}/minute)"
            if budget is not None
            else ""
        )
        return (
            f"{self.total} rows: {self.created} would be created, {self.updated} updated, "
            f"{self.invalid} invalid, {self.failed} failed, {self.skipped} skipped; the "
            f"import takes {_requests(self.import_requests)}{at}"
        )


class ImportAbortedError(InventError):
    """An import stopped early because an error affects every row: a 401/403, a 404 (the
    segment or the organisation does not exist), a 429 asking to wait longer than
    ``RateLimit.max_retry_after``, or the client closed while the job ran (``__cause__`` is
    the error). Rows not read yet are not in the report: a re-run with the same journal does
    them.

    Attributes:
        report: The partial report (an :class:`ImportPlan` for a dry run).
        retry_after: The seconds the server asked to wait (None otherwise).
    """

    def __init__(
        self, message: str, report: ImportReport | ImportPlan, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.report = report
        self.retry_after = retry_after


def partial_import_report(exc: BaseException) -> ImportReport | ImportPlan | None:
    """The partial report of an import that was cancelled (attached to its
    ``asyncio.CancelledError``, also found through ``asyncio.timeout()``'s ``TimeoutError``),
    stopped (:class:`ImportAbortedError`), or ended by an error of its input, ``on_row`` or
    ``on_progress`` (attached to that error); None for another exception."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ImportAbortedError):
            return current.report
        report = getattr(current, IMPORT_REPORT, None)
        if isinstance(report, ImportReport | ImportPlan):
            return report
        current = current.__cause__ or current.__context__
    return None
