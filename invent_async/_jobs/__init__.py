"""The bulk and segment-sync jobs (private): many requests for one call, each id accounted for.

Bottom up (imports go down this list; ``tests/test_architecture.py`` checks it):

- ``idset``: the one open-addressing core and the id sets and lists built on it.
- ``reader``: a job's input, read lazily and once (``len()`` when known, a bounded count-ahead).
- ``journal``: the resume journal file.
- ``segment_sync_plan``: segment sync's plan without I/O: the member table (the snapshot), the
  worth-it rule, the estimates, and the classification of one input id.
- ``results``: per-item results, progress snapshots, reports, the plan and the errors, and
  the one reader of a report attached to an exception.
- ``import_rows``: an import's rows without I/O: checked, keyed, chunked, matched to answers.
- ``import_results``: what an import reports: row results, progress, report, plan, error.
- ``engine``: the bulk engine, ``BulkStream``, behind ``bulk_*`` and ``stream_*``.
- ``segment_sync_job``: the segment-sync job: the membership read, the adds and removals
  through the engine, the verify read, and the dry run.
- ``import_job``: the bulk import, ``ImportJob``, behind ``contacts.import_contacts``.

"Sync" in these names is always *segment sync* (making a segment hold a list of contacts);
the blocking client lives in ``invent_async._sync``.

``invent_async`` exports the public names of this package, and loads it on first use (a bulk
job, a segment sync, or one of these names): a program that never runs a job does not pay for
the engine. Those names report ``invent_async`` as their module from the moment this package
loads (:func:`~invent_async._public.publish`), so an error a job raises says
``invent_async.BulkAbortedError`` even if the user never named it.
"""

from .._public import publish
from .engine import BulkOptions, BulkStream
from .import_results import (
    ImportAbortedError,
    ImportPlan,
    ImportProgress,
    ImportReport,
    ImportRowResult,
    ImportStatus,
    partial_import_report,
)
from .journal import JournalError
from .results import (
    BulkAbortedError,
    BulkFailure,
    BulkProgress,
    BulkReport,
    ItemResult,
    MembershipChange,
    Outcome,
    SegmentSyncAbortedError,
    SegmentSyncPlan,
    SegmentSyncProgress,
    SegmentSyncReport,
    partial_report,
    partial_sync_report,
)
from .segment_sync_plan import MemberTable

__all__ = [
    "BulkAbortedError",
    "BulkFailure",
    "BulkOptions",
    "BulkProgress",
    "BulkReport",
    "BulkStream",
    "ImportAbortedError",
    "ImportPlan",
    "ImportProgress",
    "ImportReport",
    "ImportRowResult",
    "ImportStatus",
    "ItemResult",
    "JournalError",
    "MemberTable",
    "MembershipChange",
    "Outcome",
    "SegmentSyncAbortedError",
    "SegmentSyncPlan",
    "SegmentSyncProgress",
    "SegmentSyncReport",
    "partial_import_report",
    "partial_report",
    "partial_sync_report",
]
"""What ``invent_async`` exports from here (loaded on first use there)."""

publish("invent_async", globals(), __all__)
