"""What the jobs report: per-item results, progress, reports, the plan, and their errors.

- Bulk jobs: :class:`Outcome`, :class:`ItemResult`, :class:`BulkFailure`,
  :class:`BulkProgress`, :class:`BulkReport`, :class:`BulkAbortedError`.
- Segment sync: :class:`MembershipChange`, :class:`SegmentSyncPlan` (a dry run),
  :class:`SegmentSyncProgress`, :class:`SegmentSyncReport`, :class:`SegmentSyncAbortedError`.
- A cancelled job re-raises ``asyncio.CancelledError`` with its report so far attached
  (:func:`attach_report`); :func:`partial_report` and :func:`partial_sync_report` read it back,
  both through the one walk of the exception chain, :func:`_attached_report`.
- :class:`ChangeLog`: the changes a sync found, a bounded number of each kind kept.

Plain values only: nothing here runs a job or sends a request.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Final, Literal, TypeVar

import attrs

from .._exceptions import InventError
from .._models import Contact
from .import_results import ImportPlan, ImportReport
from .segment_sync_plan import (
    MemberTable,
    Strategy,
    estimate_seconds,
    format_duration,
)

__all__ = [
    "EMPTY_REPORT",
    "BulkAbortedError",
    "BulkFailure",
    "BulkProgress",
    "BulkReport",
    "CHANGES_KEPT",
    "ChangeKind",
    "ChangeLog",
    "ItemResult",
    "MembershipChange",
    "Outcome",
    "SegmentSyncAbortedError",
    "SegmentSyncPlan",
    "SegmentSyncProgress",
    "SegmentSyncReport",
    "attach_report",
    "closed_mid_job",
    "partial_report",
    "partial_sync_report",
]

R = TypeVar("R")
ChangeKind = Literal["gone", "read", "left", "back"]

CHANGES_KEPT: Final = 1000
"""Changes of one kind kept with their contact id; beyond, one line says how many more."""

_BULK_REPORT: Final = "invent_bulk_report"
_SYNC_REPORT: Final = "invent_sync_report"
_ABORTED_SYNC_REPORT: Final = "sync_report"  # SegmentSyncAbortedError's own attribute


# --------------------------------------------------------------------------- bulk jobs


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
        """Items finished per second; items cancelled in flight are not finished, so not counted."""
        finished = self.total - len(self.cancelled_ids)
        return finished / self.elapsed if self.elapsed > 0 else 0.0

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
    return _attached_report(exc, (_BULK_REPORT,), BulkReport)


EMPTY_REPORT: Final = BulkReport(
    total=0,
    succeeded=0,
    failed=0,
    skipped=0,
    failures=(),
    cancelled_ids=(),
    retries=0,
    rate_limited=0,
    elapsed=0.0,
    cancelled=False,
)
"""The report of a bulk job that never started (a sync phase that was not reached)."""


# --------------------------------------------------------------------------- segment sync


@attrs.frozen(kw_only=True)
class MembershipChange:
    """Something a sync found changed by someone else since (or while) it read the segment.

    Adds and removes are idempotent, so none of these fails the job; they are reported so
    that nothing changes silently.

    Attributes:
        kind: ``"gone"``: a removal answered 404, the contact was deleted (or had left the
            segment) meanwhile. ``"read"``: the membership changed while it was read (the
            ``pagination-count`` moved, or an id came up on two pages); a member may have
            been missed, which ``verify=True`` would show. ``"left"``: an input id the
            journal records as added by an earlier run is not a member any more; it was not
            added again. ``"back"``: a member the journal records as removed by an earlier
            run is in the segment again; it was not removed again.
        contact_id: The contact (None for ``"read"``).
        detail: What was seen, in words.
    """

    kind: Literal["gone", "read", "left", "back"]
    contact_id: str | None
    detail: str


class ChangeLog:
    """The :class:`MembershipChange` records of one sync, the first :data:`CHANGES_KEPT` of
    each kind with their contact id; beyond, one record says how many more."""

    def __init__(self) -> None:
        self._kept: dict[ChangeKind, list[MembershipChange]] = {}
        self._counts: dict[ChangeKind, int] = {}

    def note(self, kind: ChangeKind, contact_id: str | None, detail: str) -> None:
        """Record one change."""
        kept = self._kept.setdefault(kind, [])
        self._counts[kind] = self._counts.get(kind, 0) + 1
        if len(kept) < CHANGES_KEPT:
            kept.append(MembershipChange(kind=kind, contact_id=contact_id, detail=detail))

    def kept(self) -> tuple[MembershipChange, ...]:
        """The changes recorded, by kind in the order each kind first came up."""
        out: list[MembershipChange] = []
        for kind, kept in self._kept.items():
            out.extend(kept)
            more = self._counts[kind] - len(kept)
            if more > 0:
                out.append(
                    MembershipChange(
                        kind=kind, contact_id=None, detail=f"and {more:,} more like these"
                    )
                )
        return tuple(out)


@attrs.frozen(kw_only=True)
class SegmentSyncPlan:
    """What ``sync_segment(..., dry_run=True)`` found: the work a real run would do.

    ``str(plan)`` reads like ``700,000 adds, 5,000 removes: 705,900 requests, 24.0 h at
    490/min``. Pass the plan back as ``sync_segment(..., plan=plan)`` to run it on the
    membership it read (no second read; changes made since by others are handled as in
    any run, and ``verify=True`` checks the outcome).

    Attributes:
        segment_id: The segment.
        org_id: The organisation of the client that made the plan.
        strategy: ``"diff"`` or ``"add-only"`` (see ``choose_strategy``).
        reason: Why that strategy, in words.
        remove_others: Whether members not in the input would be removed.
        members: Members of the segment now (the first page's ``pagination-count``, or the
            ids read when the server sent none).
        inputs: Input ids read (duplicates included).
        to_add: Input ids that would be added (with ``"add-only"``: every input id not seen
            on the first page, members or not).
        to_remove: Members that would be removed.
        unchanged: Input ids that are members already.
        duplicates: Input ids that repeat an earlier one.
        journal: Input ids and members the journal records as done by an earlier run.
        read_requests: Membership reads of a run that reads the membership itself (a run
            given this plan as ``plan=`` sends none: it uses the snapshot).
        write_requests: One request per add and per removal.
        verify_requests: Reads of the final membership (with ``verify=True``), estimated.
        requests: ``read_requests + write_requests + verify_requests``.
        requests_sent: Requests this dry run sent (its membership reads, retries included).
        rate_per_minute: The client's current pacing rate (None without a rate governor).
        estimated_seconds: ``requests`` at ``rate_per_minute`` (None without one).
        snapshot: The membership as read: a :class:`MemberTable` (all of it, or only the
            first page for ``"add-only"``), or None when the plan was made without one.
        imported: A sync by email: the plan of its import, which puts the rows' contacts
            into the segment (``to_add`` then counts the contacts the dry runs named that are
            not members yet, added by the import's requests, which ``requests`` counts in
            place of one add each); None for a sync by id.
    """

    segment_id: str
    org_id: str
    strategy: Strategy
    reason: str
    remove_others: bool
    members: int
    inputs: int
    to_add: int
    to_remove: int
    unchanged: int
    duplicates: int
    journal: int
    read_requests: int
    write_requests: int
    verify_requests: int
    requests: int
    requests_sent: int
    rate_per_minute: float | None
    estimated_seconds: float | None
    snapshot: MemberTable | None = attrs.field(default=None, eq=False, repr=False, hash=False)
    imported: ImportPlan | None = None

    def __str__(self) -> str:
        head = f"{self.to_add:,} adds, {self.to_remove:,} removes: {self.requests:,} requests"
        if self.estimated_seconds is None or self.rate_per_minute is None:
            return head + ", no time estimate (no rate limit)"
        return (
            f"{head}, {format_duration(self.estimated_seconds)} at {self.rate_per_minute:,.0f}/min"
        )


@attrs.frozen(kw_only=True)
class SegmentSyncProgress:
    """A progress snapshot given to ``sync_segment``'s ``on_progress`` callback.

    Attributes:
        phase: ``"reading"`` (the membership), ``"adding"`` (the input), ``"removing"``
            (members not in the input) or ``"verifying"`` (reading the result).
        done: Pages read (reading, verifying), input ids handled (adding: unchanged,
            duplicates and skipped ones included) or removals done (removing).
        total: What ``done`` counts up to, when known.
        added: Input ids added so far.
        unchanged: Input ids found to be members already.
        removed: Members removed so far.
        failed: Adds and removals that failed.
        skipped: Input ids and members skipped (duplicates, journal, cancelled).
        requests: Requests sent so far (reads and writes, retries included).
        retries: Retried attempts so far.
        rate_limited: 429 answers seen so far.
        elapsed: Seconds since the sync started.
        rate: ``done`` per second in this phase.
        eta: Estimated seconds left in this phase (None when ``total`` is unknown).
        finished: True on the last callback of the sync.
    """

    phase: Literal["reading", "adding", "removing", "verifying"]
    done: int
    total: int | None
    added: int
    unchanged: int
    removed: int
    failed: int
    skipped: int
    requests: int
    retries: int
    rate_limited: int
    elapsed: float
    rate: float
    eta: float | None
    finished: bool = False

    def __str__(self) -> str:
        total = f"/{self.total:,}" if self.total is not None else ""
        unit = "pages" if self.phase in ("reading", "verifying") else "ids"
        eta = f", eta {self.eta:.0f}s" if self.eta is not None else ""
        return (
            f"{self.phase}: {self.done:,}{total} {unit}; {self.added:,} added, "
            f"{self.unchanged:,} unchanged, {self.removed:,} removed, {self.failed:,} failed, "
            f"{self.skipped:,} skipped; {self.requests:,} requests{eta}"
        )


@attrs.frozen(kw_only=True)
class SegmentSyncReport:
    """The result of ``sync_segment``.

    Every input id ends in exactly one outcome: ``total == added + unchanged + failed +
    skipped``. Every member that was not in the input (with ``remove_others``) ends as
    removed, gone (a 404: see ``changed_meanwhile``), failed or skipped:
    ``removals == removed + gone + remove_failed + remove_skipped``.

    Attributes:
        segment_id: The segment.
        strategy: ``"diff"`` (the membership was read) or ``"add-only"``.
        reason: Why that strategy, in words (see ``choose_strategy``).
        remove_others: Whether members not in the input were removed.
        members_before: Members when the sync started (see :attr:`SegmentSyncPlan.members`).
        total: Input ids taken from the input (duplicates included).
        added: Input ids added. With ``"add-only"``, some may have been members already:
            an add does not tell.
        unchanged: Input ids that were members already (with ``"add-only"``: those on the
            first page only).
        failed: Input ids whose add failed; each is in :attr:`failures`.
        skipped: Input ids skipped: ``duplicates + journal`` and those cancelled in flight.
        duplicates: Input ids that repeated an earlier one.
        journal: Input ids the journal records as added by an earlier run (not sent).
        removals: Members not in the input (with ``remove_others``), as read.
        removed: Members removed; their ids are in :attr:`removed_ids`.
        gone: Removals answered 404: the contact had been deleted (or had left) meanwhile.
        remove_failed: Removals that failed; each is in :attr:`remove_failures`.
        remove_skipped: Members the journal records as removed by an earlier run (in the
            segment again: see ``changed_meanwhile``) and removals cancelled in flight.
        removed_ids: The removed members (a compact sequence of ids).
        failures: Every failed add, with its exception and attempts.
        remove_failures: Every failed removal, with its exception and attempts.
        changed_meanwhile: What was found changed by someone else (see
            :class:`MembershipChange`): none of it fails the job.
        cancelled_ids: Adds and removals in flight when the job was stopped.
        requests_sent: Every request the sync sent: membership reads, adds, removals and
            verify reads, retries included (counted as they are handed to the transport;
            aiohttp's own silent resend over a keep-alive connection the server had closed
            is not seen).
        read_requests: The membership reads among them (the verify read included).
        retries: Retried attempts (reads and writes).
        rate_limited: 429 answers seen.
        elapsed: Seconds the sync ran.
        rate_per_minute: The client's pacing rate at the start (None without a governor).
        cancelled: True when the sync was stopped before its end.
        verified: True when ``verify=True`` read the membership again after the job.
        missing: With ``verified``: input ids that are not members after the job (failed
            adds included).
        unexpected: With ``verified`` and ``remove_others``: members that are not in the
            input after the job.
        verify_error: The error that stopped the verify read (then ``verified`` is False).
        imported: A sync by email: the report of its import, which put the rows' contacts into
            the segment (the ids above are those the import's answers named; its requests are
            in :attr:`requests_sent`); None for a sync by id.
    """

    segment_id: str
    strategy: Strategy
    reason: str
    remove_others: bool
    members_before: int
    total: int
    added: int
    unchanged: int
    failed: int
    skipped: int
    duplicates: int
    journal: int
    removals: int
    removed: int
    gone: int
    remove_failed: int
    remove_skipped: int
    removed_ids: Sequence[str] = attrs.field(hash=False)
    failures: tuple[BulkFailure, ...]
    remove_failures: tuple[BulkFailure, ...]
    changed_meanwhile: tuple[MembershipChange, ...]
    cancelled_ids: tuple[str, ...]
    requests_sent: int
    read_requests: int
    retries: int
    rate_limited: int
    elapsed: float
    rate_per_minute: float | None
    cancelled: bool
    verified: bool
    missing: Sequence[str] = attrs.field(hash=False)
    unexpected: Sequence[str] = attrs.field(hash=False)
    verify_error: Exception | None = None
    imported: ImportReport | None = None

    @property
    def ideal_seconds(self) -> float | None:
        """The time :attr:`requests_sent` take at exactly :attr:`rate_per_minute`."""
        return estimate_seconds(self.requests_sent, self.rate_per_minute)

    @property
    def failed_ids(self) -> tuple[str, ...]:
        """The input ids whose add failed, in completion order."""
        return tuple(f.contact_id for f in self.failures)

    @property
    def remove_failed_ids(self) -> tuple[str, ...]:
        """The members whose removal failed, in completion order."""
        return tuple(f.contact_id for f in self.remove_failures)

    @property
    def ok(self) -> bool:
        """No add or removal failed, the sync ran to its end, a verify found nothing, and
        (by email) every row of the import was valid and answered (``imported.ok``)."""
        clean = not (self.failed or self.remove_failed or self.cancelled)
        imported = self.imported is None or self.imported.ok
        return clean and imported and not (self.missing or self.unexpected or self.verify_error)


class SegmentSyncAbortedError(BulkAbortedError):
    """A segment sync stopped early: an error affects every item (401/403, a 429 asking to
    wait longer than ``max_retry_after``, or the client closed).

    Attributes:
        report: The partial :class:`~invent_async.BulkReport` of the adds or the removals
            that stopped (as for any bulk job).
        sync_report: The partial :class:`SegmentSyncReport` of the whole sync.
        retry_after: The seconds the server asked to wait (None otherwise).
    """

    def __init__(
        self,
        message: str,
        report: BulkReport,
        retry_after: float | None = None,
        sync_report: SegmentSyncReport | None = None,
    ) -> None:
        super().__init__(message, report, retry_after)
        self.sync_report = sync_report


def partial_sync_report(exc: BaseException) -> SegmentSyncReport | None:
    """The partial :class:`SegmentSyncReport` of a sync that was cancelled or stopped.

    A cancelled ``sync_segment()`` re-raises ``asyncio.CancelledError`` with its report so
    far attached; this reads it back (also through ``asyncio.timeout()``'s ``TimeoutError``),
    or from a :class:`SegmentSyncAbortedError`.
    """
    return _attached_report(exc, (_ABORTED_SYNC_REPORT, _SYNC_REPORT), SegmentSyncReport)


def closed_mid_job(cancelled: BaseException, closed: BaseException) -> BulkAbortedError | None:
    """What a job cancelled because its client was closed raises instead, as when the client
    is closed under a running job on its own loop: a :class:`BulkAbortedError` (a
    :class:`SegmentSyncAbortedError` for a sync) with the report attached to ``cancelled``,
    caused by ``closed`` (the :class:`ClientClosedError`). None when ``cancelled`` carries no
    report (it was not a job)."""
    sync_report = partial_sync_report(cancelled)
    report = partial_report(cancelled)
    why = f"bulk job stopped early: {closed} (the client was closed while the job ran)"
    aborted: BulkAbortedError
    if sync_report is not None:
        bulk = report if report is not None else EMPTY_REPORT
        aborted = SegmentSyncAbortedError(
            f"segment sync stopped early: {why}", bulk, None, sync_report
        )
    elif report is not None:
        aborted = BulkAbortedError(why, report)
    else:
        return None
    aborted.__cause__ = closed
    return aborted


def attach_report(exc: BaseException, report: BulkReport | SegmentSyncReport) -> None:
    """Attach a cancelled job's report so far to its ``CancelledError`` (see the readers)."""
    name = _BULK_REPORT if isinstance(report, BulkReport) else _SYNC_REPORT
    setattr(exc, name, report)


def _attached_report(exc: BaseException, names: tuple[str, ...], kind: type[R]) -> R | None:
    """The first ``kind`` found under one of ``names`` along ``exc``'s chain (its cause, else
    its context, each exception once: ``asyncio.timeout()`` raises a ``TimeoutError`` from
    the ``CancelledError`` that carries the report)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for name in names:
            report = getattr(current, name, None)
            if isinstance(report, kind):
                return report
        current = current.__cause__ or current.__context__
    return None
