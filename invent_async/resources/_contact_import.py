"""The contacts' bulk import: the dry run of one batch (``preview_import``), the import of one
batch (``import_batch``), and the import of any number of rows as a job
(``import_contacts``). A base class of :class:`AsyncContacts`, so that they are
``client.contacts.import_contacts(...)`` and so on, kept here to keep ``contacts.py`` about
contacts themselves. The job's engine (``_jobs.import_job``) loads when a job starts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Literal, overload

from .._endpoints import Endpoint
from .._models import ContactChannelOption, ContactImport, ContactImportResult
from .._pipeline import CallStats, Pipeline
from .._protocol import RawResponse, path_segment
from .._types import UNSET

if TYPE_CHECKING:
    from .._jobs.import_results import ImportPlan, ImportProgress, ImportReport, ImportRowResult

__all__ = ["ContactImports"]

PREVIEW_IMPORT = Endpoint("POST", "/orgs/{org_id}/contacts/bulk/dry", "contacts.preview_import")
IMPORT_BATCH = Endpoint(
    "POST", "/orgs/{org_id}/contacts/bulk", "contacts.import_batch", idempotent=False, inferred=True
)


def _import_body(channels: Iterable[ContactChannelOption], segment_id: str | None) -> ContactImport:
    """The body of an import or its dry run, checked: TypeError/ValueError before sending."""
    if isinstance(channels, str | bytes | Mapping) or not isinstance(channels, Iterable):
        raise TypeError(
            f"channels must be an iterable of ContactChannelOption rows, "
            f"not {type(channels).__name__}"
        )
    rows = tuple(channels)
    for index, row in enumerate(rows):
        if not isinstance(row, ContactChannelOption):
            raise TypeError(
                f"channels[{index}] must be a ContactChannelOption, got {type(row).__name__}"
            )
    if not 1 <= len(rows) <= 10_000:
        raise ValueError(f"channels must hold 1 to 10,000 rows, got {len(rows)}")
    if segment_id is not None and not isinstance(segment_id, str):
        raise TypeError(f"segment_id must be a string, got {type(segment_id).__name__}")
    if segment_id is not None and not segment_id.strip():
        raise ValueError("segment_id must be a non-empty string")
    return ContactImport(channels=rows, segment_id=UNSET if segment_id is None else segment_id)


class ContactImports:
    """The import endpoints and job of :class:`AsyncContacts` (its base class)."""

    _pipeline: Pipeline
    _prefix: str

    @PREVIEW_IMPORT.documents
    async def preview_import(
        self, channels: Iterable[ContactChannelOption], *, segment_id: str | None = None
    ) -> ContactImportResult:
        """Dry-run a bulk import: what importing these rows would do, writing nothing.

        The answer sorts the rows into ``created`` (they would create a contact), ``updated``
        (they would update one) and ``invalid`` (rejected); the docs say no more than those
        names. Nothing is written, so the call is retried like any idempotent one. Documented
        on a legacy docs page only; the import itself is not in the docs.

        Args:
            channels: The rows, 1 to 10,000 of them, each a :class:`ContactChannelOption`
                (``ContactChannelOption(type="email", email="jane@example.com")``).
            segment_id: A segment to put the imported contacts into.

        Returns:
            The rows, sorted into created, updated and invalid.

        Raises:
            TypeError: ``channels`` is not an iterable of :class:`ContactChannelOption`, or
                ``segment_id`` is not a string (nothing is sent).
            ValueError: fewer than 1 or more than 10,000 rows, or a blank ``segment_id``.
        """
        body = _import_body(channels, segment_id)
        request = PREVIEW_IMPORT.request(self._prefix, body=body)
        return await self._pipeline.call(request, ContactImportResult)

    @IMPORT_BATCH.documents
    async def import_batch(
        self, channels: Iterable[ContactChannelOption], *, segment_id: str | None = None
    ) -> ContactImportResult:
        """Import one batch of rows in one request: create or update their contacts.

        Inferred endpoint: the docs show only the dry run (:meth:`preview_import`); this is
        its live counterpart as the API's shape suggests it, with the same body and the same
        answer. Verify it against the live API before relying on it. One request of at most
        10,000 rows; an import of any size, in batches, with progress and resumption, is a
        job of its own. Not idempotent: retried only when the request certainly did not
        reach the server.

        Args:
            channels: The rows, 1 to 10,000 of them, each a :class:`ContactChannelOption`.
            segment_id: A segment to put the imported contacts into.

        Returns:
            The rows, sorted into created, updated and invalid.

        Raises:
            TypeError: ``channels`` is not an iterable of :class:`ContactChannelOption`, or
                ``segment_id`` is not a string (nothing is sent).
            ValueError: fewer than 1 or more than 10,000 rows, or a blank ``segment_id``.
        """
        body = _import_body(channels, segment_id)
        request = IMPORT_BATCH.request(self._prefix, body=body)
        return await self._pipeline.call(request, ContactImportResult)

    # ------------------------------------------------------------------ the import job

    @overload
    async def import_contacts(
        self,
        rows: Iterable[object] | AsyncIterable[object],
        *,
        segment_id: str | None = None,
        dry_run: Literal[False] = False,
        create_missing: bool = True,
        journal: str | os.PathLike[str] | None = None,
        on_progress: Callable[[ImportProgress], object] | None = None,
        on_row: Callable[[ImportRowResult], object] | None = None,
        total: int | None = None,
        chunk_size: int = 10_000,
        max_chunk_bytes: int = 1_000_000,
        concurrency: int | None = None,
        max_retries: int = 8,
    ) -> ImportReport: ...

    @overload
    async def import_contacts(
        self,
        rows: Iterable[object] | AsyncIterable[object],
        *,
        segment_id: str | None = None,
        dry_run: Literal[True],
        create_missing: bool = True,
        journal: str | os.PathLike[str] | None = None,
        on_progress: Callable[[ImportProgress], object] | None = None,
        on_row: Callable[[ImportRowResult], object] | None = None,
        total: int | None = None,
        chunk_size: int = 10_000,
        max_chunk_bytes: int = 1_000_000,
        concurrency: int | None = None,
        max_retries: int = 8,
    ) -> ImportPlan: ...

    @overload
    async def import_contacts(
        self,
        rows: Iterable[object] | AsyncIterable[object],
        *,
        segment_id: str | None = None,
        dry_run: bool,
        create_missing: bool = True,
        journal: str | os.PathLike[str] | None = None,
        on_progress: Callable[[ImportProgress], object] | None = None,
        on_row: Callable[[ImportRowResult], object] | None = None,
        total: int | None = None,
        chunk_size: int = 10_000,
        max_chunk_bytes: int = 1_000_000,
        concurrency: int | None = None,
        max_retries: int = 8,
    ) -> ImportReport | ImportPlan: ...

    async def import_contacts(
        self,
        rows: Iterable[object] | AsyncIterable[object],
        *,
        segment_id: str | None = None,
        dry_run: bool = False,
        create_missing: bool = True,
        journal: str | os.PathLike[str] | None = None,
        on_progress: Callable[[ImportProgress], object] | None = None,
        on_row: Callable[[ImportRowResult], object] | None = None,
        total: int | None = None,
        chunk_size: int = 10_000,
        max_chunk_bytes: int = 1_000_000,
        concurrency: int | None = None,
        max_retries: int = 8,
    ) -> ImportReport | ImportPlan:
        """Import any number of rows: create or update their contacts, 10,000 a request, and
        put them into ``segment_id``.

        Reads ``rows`` lazily, once, a batch at a time (memory holds the requests in flight,
        not the input: 10,000,000 rows stream through). Each row is checked before it is sent;
        an invalid one (an email that is not an address, a name over 256 characters, no
        email, user id or contact id, an unknown field) is reported with its reason and never
        costs its request a 400. A request closes at ``chunk_size`` rows or before its body
        would pass ``max_chunk_bytes``; each is one request of the rate budget, on the bulk
        lane. The answer is matched back to every row: created, updated or invalid.

        The import request is not idempotent: it is retried only when it certainly did not
        reach the server (a 429, a connection that did not open). A request that failed
        otherwise fails its rows; importing them again is safe: a row whose email or user id
        matches a contact updates it, so a re-run never creates a contact twice, and puts
        it into the segment again (no change). Within one request, a row repeating an earlier
        row's email (case-folded), user id or contact id is skipped as a duplicate; a later
        request sends it (after the earlier one is answered), and it updates the contact.
        The inferred endpoint (``POST /contacts/bulk``, see :meth:`import_batch`) is the one
        assumption here.

        Args:
            rows: The rows, from any iterable or async iterable: email strings, mappings of
                ``type``, ``email``, ``user_id``, ``name``, ``contact_id`` (strings; None or
                ``""``: not given), or :class:`ContactChannelOption` rows. A row with an email
                and no type gets ``type="email"``.
            segment_id: The segment to put every imported contact into.
            dry_run: Send only dry runs (``POST /contacts/bulk/dry``, which write nothing)
                and return an :class:`ImportPlan`: what the import would create, update and
                refuse, and the requests it takes.
            create_missing: Create a contact for a row that matches none (the default).
                False: add only contacts that exist (to a segment, say, from a list of
                emails): each request is preceded by its dry run, and a row that would
                create a contact is skipped (``no contact ...``), so it costs two requests a
                chunk instead of one.
            journal: A file recording every row created or updated (``imported<TAB><key>``
                lines); a re-run with the same journal skips them, and sends again only what
                was not answered. A dry run reads it without writing. Resuming loads the
                journal's keys into memory: about 25 bytes a row done.
            on_progress: Called with an :class:`ImportProgress` a few times a second and once
                more when the job ends normally (from the event loop: keep it quick).
            on_row: Called with each row's :class:`ImportRowResult` as soon as it is known
                (every row: the report keeps only the first 1,000 invalid and failed ones).
                What it raises stops the job: the rows taken are accounted for (and
                journaled) first, then the exception is raised with the partial report.
            total: The number of rows, for progress and ETA, when ``rows`` has no ``len()``.
            chunk_size: Rows per request, 1 to 10,000.
            max_chunk_bytes: The largest request body (default 1,000,000 bytes: a chunk of
                typical rows closes at 10,000 rows; see ``docs/import.md``). A 413 answer
                splits a request in two.
            concurrency: Requests in flight (default 2), never two with a row for the same
                contact.
            max_retries: Retries of a request for transient errors (default 8).

        Returns:
            An :class:`ImportReport` (an :class:`ImportPlan` with ``dry_run=True``): every row
            counted as created, updated, invalid, failed or skipped, and the requests sent.

        Raises:
            TypeError: ``rows`` is a string or not iterable, or an argument has the wrong type.
            ValueError: ``chunk_size``, ``max_chunk_bytes`` or ``concurrency`` is out of
                range, or ``segment_id`` is blank.
            ImportAbortedError: a 401/403, a 404 (no such segment), a 429 asking to wait longer
                than ``RateLimit.max_retry_after``, or the client's close stopped the job; it
                carries the partial report.
            JournalError: the journal cannot be read or written.
            asyncio.CancelledError: the job was cancelled; :func:`partial_import_report`
                reads the partial report from it.
        """
        if segment_id is not None:
            path_segment(segment_id, "segment_id")
        for flag, value in (("dry_run", dry_run), ("create_missing", create_missing)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be True or False, got {value!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        from .._jobs.import_job import ImportJob

        bulk = self._pipeline.with_options(self._pipeline.options.for_bulk(max_retries))
        prefix = bulk.prefix

        def send(body: bytes, dry: bool, stats: CallStats) -> Awaitable[RawResponse]:
            endpoint = PREVIEW_IMPORT if dry else IMPORT_BATCH
            return bulk.send(endpoint.request(prefix, body=body), stats)

        governor = bulk.governor_stats()
        job = ImportJob(
            rows,
            send=send,
            segment_id=segment_id,
            dry_run=dry_run,
            create_missing=create_missing,
            chunk_size=chunk_size,
            max_chunk_bytes=max_chunk_bytes,
            concurrency=concurrency,
            journal=journal,
            on_progress=on_progress,
            on_row=on_row,
            total=total,
            max_retry_after=bulk.max_retry_after,
            rate_per_minute=None if governor is None else governor.rate_per_minute,
            paths=(IMPORT_BATCH.path(prefix), PREVIEW_IMPORT.path(prefix)),
            name="contacts.import_contacts",
            org_id=bulk.options.org_id,
        )
        return await job.run()
