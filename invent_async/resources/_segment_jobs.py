"""The segment jobs of ``client.contacts`` wired to the request path.

``contacts.bulk_*``/``stream_*`` (one segment change per id, through the bulk engine) and
``contacts.sync_segment`` (segment sync) are documented where users look, on
:class:`~invent_async.AsyncContacts`; their bodies are here: a view of the pipeline on the bulk
lane, the per-item calls built from the resource's endpoints, and the job of ``_jobs`` that
runs them (for a segment sync, the callables the resource passes to the job it builds). The
jobs themselves know nothing of the pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TypedDict

import attrs

from .._endpoints import Endpoint
from .._jobs.engine import DEFAULT_MAX_RETRIES, BulkOptions, BulkStream, check_options
from .._jobs.idset import CompactIds
from .._jobs.import_results import (
    ImportPlan,
    ImportProgress,
    ImportReport,
    ImportRowResult,
    ImportStatus,
)
from .._jobs.results import SegmentSyncPlan, SegmentSyncProgress, SegmentSyncReport
from .._jobs.segment_sync_job import FetchPage, MemberOperation
from .._jobs.segment_sync_plan import MEMBER_PAGE_SIZE, estimate_seconds
from .._models import Contact, ContactRef
from .._pagination import Page
from .._pipeline import CallStats, Pipeline
from .._protocol import Request, path_segment

__all__ = [
    "SegmentSyncIO",
    "by_email_plan",
    "by_email_report",
    "ImportedIds",
    "importing",
    "segment_change_job",
    "segment_sync_io",
]

Ids = Iterable[str | Contact] | AsyncIterable[str | Contact]


def segment_change_job(
    pipeline: Pipeline,
    change: Endpoint,
    contact_ids: Ids,
    segment_id: str,
    options: BulkOptions,
    *,
    streaming: bool,
) -> BulkStream:
    """The bulk job behind ``stream_*`` and ``bulk_*``: ``change`` (adding or removing the
    segment) for each id.

    Streaming jobs hand each updated contact to the caller; the others only need the status
    (nobody reads the contacts), so they skip building them.
    """
    check_options(options)
    path_segment(segment_id, "segment_id")
    retries = options.get("max_retries", DEFAULT_MAX_RETRIES)
    bulk = pipeline.with_options(pipeline.options.for_bulk(retries))
    prefix = bulk.prefix
    verb = change.operation.removeprefix("contacts.")  # add_segment, remove_segment

    def one(contact_id: str, stats: CallStats) -> Awaitable[object]:
        """The request of one id (a plain function: the pipeline's coroutine is the item's
        only frame)."""
        request = change.request(prefix, contact_id, segment_id)
        if streaming:
            return bulk.call(request, Contact, stats)
        return bulk.send(request, stats)

    return BulkStream(
        one,
        contact_ids,
        streaming=streaming,
        concurrency=options.get("concurrency"),
        on_progress=options.get("on_progress"),
        journal=options.get("journal"),
        total=options.get("total"),
        max_retry_after=bulk.max_retry_after,
        name=f"contacts.{'stream' if streaming else 'bulk'}_{verb}",
        org_id=bulk.options.org_id,
    )


class SegmentSyncIO(TypedDict):
    """What a :class:`SegmentSyncJob` needs of the request path (its other arguments are the
    caller's): ``SegmentSyncJob(..., **segment_sync_io(...))``."""

    org_id: str
    fetch_page: FetchPage
    add: MemberOperation
    remove: MemberOperation
    rate_per_minute: float | None
    max_retry_after: float


def segment_sync_io(
    pipeline: Pipeline, segment_id: str, *, add: Endpoint, remove: Endpoint, members: Endpoint
) -> SegmentSyncIO:
    """The request path of a segment sync, on the bulk lane: the membership read through
    ``members`` (the contacts list filtered by the segment, only the ids parsed), the writes
    through ``add`` and ``remove``. The caller has checked ``segment_id``."""
    bulk = pipeline.with_options(pipeline.options.for_bulk(DEFAULT_MAX_RETRIES))
    prefix = bulk.prefix
    listing = Request(method="GET", path=members.path(prefix))  # unnamed: not traced as a list

    async def fetch_page(number: int, stats: CallStats) -> Page[ContactRef]:
        query = {"segment_id": segment_id}  # only the ids are read (ContactRef)
        pager = bulk.paginate(
            listing, query, ContactRef, take=MEMBER_PAGE_SIZE, page=number, stats=stats
        )
        return await pager.first_page()

    async def add_one(contact_id: str, stats: CallStats) -> None:
        await bulk.send(add.request(prefix, contact_id, segment_id), stats)

    async def remove_one(contact_id: str, stats: CallStats) -> None:
        await bulk.send(remove.request(prefix, contact_id, segment_id), stats)

    governor = bulk.governor_stats()
    return SegmentSyncIO(
        org_id=bulk.options.org_id,
        fetch_page=fetch_page,
        add=add_one,
        remove=remove_one,
        rate_per_minute=None if governor is None else governor.rate_per_minute,
        max_retry_after=bulk.max_retry_after,
    )


# --------------------------------------------------------------------------- sync by email

_NAMED = frozenset({ImportStatus.CREATED, ImportStatus.UPDATED})
_UNSURE = (
    "; removals skipped: the contact is unknown for {unknown:,} of the rows imported (their "
    "request failed, or the answer did not name it), and a member among them would be removed"
)


class ImportedIds:
    """The ``on_row`` of a sync by email's import: collects the contacts its answers name
    (created or updated rows; about ``len(id) + 4`` bytes each) and counts the rows whose
    contact stays unknown: failed, answered without a ``contact_id``, or invalid (a row
    refused for its name may still name a member by its email), but for a string the client
    found is not an email address (it names no contact). While there is one, the sync must not
    remove members."""

    __slots__ = ("ids", "unknown")

    def __init__(self) -> None:
        self.ids = CompactIds()
        self.unknown = 0

    def __call__(self, result: ImportRowResult) -> None:
        if result.status in _NAMED:
            if result.contact_id is None:
                self.unknown += 1
            else:
                self.ids.append(result.contact_id)
        elif result.status is ImportStatus.FAILED or (
            result.status is ImportStatus.INVALID
            and not (result.row is None and isinstance(result.item, str))
        ):
            self.unknown += 1


def importing(
    on_progress: Callable[[SegmentSyncProgress], object],
) -> Callable[[ImportProgress], object]:
    """A sync's ``on_progress`` fed from its import: the ``adding`` phase, counted in rows."""

    def progress(snapshot: ImportProgress) -> object:
        return on_progress(
            SegmentSyncProgress(
                phase="adding",
                done=snapshot.done,
                total=snapshot.total,
                added=snapshot.created + snapshot.updated,
                unchanged=0,
                removed=0,
                failed=snapshot.failed + snapshot.invalid,
                skipped=snapshot.skipped,
                requests=snapshot.requests,
                retries=0,
                rate_limited=snapshot.rate_limited,
                elapsed=snapshot.elapsed,
                rate=snapshot.rate,
                eta=snapshot.eta,
            )
        )

    return progress


def by_email_plan(plan: SegmentSyncPlan, imported: ImportPlan, *, unknown: int) -> SegmentSyncPlan:
    """The plan of a sync by email: its import's plan, and the sync's on the ids the dry runs
    named, whose adds the import makes (its requests count in place of one add each)."""
    requests = imported.import_requests + plan.read_requests + plan.to_remove + plan.verify_requests
    reason = plan.reason + (_UNSURE.format(unknown=unknown) if unknown else "")
    return attrs.evolve(
        plan,
        reason=reason,
        write_requests=imported.import_requests + plan.to_remove,
        requests=requests,
        requests_sent=plan.requests_sent + imported.requests,
        estimated_seconds=estimate_seconds(requests, plan.rate_per_minute),
        imported=imported,
    )


def by_email_report(
    report: SegmentSyncReport, imported: ImportReport, *, unknown: int
) -> SegmentSyncReport:
    """The report of a sync by email: the sync's on the ids its import named, the import's
    report and requests with it."""
    reason = report.reason + (_UNSURE.format(unknown=unknown) if unknown else "")
    return attrs.evolve(
        report,
        reason=reason,
        requests_sent=report.requests_sent + imported.requests,
        retries=report.retries + imported.retries,
        rate_limited=report.rate_limited + imported.rate_limited,
        imported=imported,
    )
