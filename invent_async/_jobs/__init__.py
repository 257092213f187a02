"""The bulk and segment-sync jobs (private): many requests for one call, each id accounted for.

Bottom up (imports go down this list; ``tests/test_architecture.py`` checks it):

- ``idset``: the one open-addressing core and the id sets and lists built on it.
- ``reader``: a job's input, read lazily and once (``len()`` when known, a bounded count-ahead).
- ``journal``: the resume journal file.
- ``segment_sync_plan``: segment sync's plan without I/O: the member table (the snapshot), the
  worth-it rule, the estimates, and the classification of one input id.
- ``results``: per-item results, progress snapshots, reports, the plan and the errors, and
  the one reader of a report attached to an exception.
- ``engine``: the bulk engine, ``BulkStream``, behind ``bulk_*`` and ``stream_*``.
- ``segment_sync_job``: the segment-sync job: the membership read, the adds and removals
  through the engine, the verify read, and the dry run.

"Sync" in these names is always *segment sync* (making a segment hold a list of contacts);
the blocking client lives in ``invent_async._sync``. Nothing is imported here: the package
exports its public names from ``invent_async``.
"""
