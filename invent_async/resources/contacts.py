"""``client.contacts``: every contacts endpoint, each one declared once and called as build ->
send -> parse (the endpoint builds the request, the pipeline sends it, the converter parses).

The chat endpoints are in ``_contact_chats`` and the bulk import in ``_contact_import`` (base
classes). The segment jobs (``bulk_*``,
``stream_*``, ``sync_segment``) import their engine when they start (``_segment_jobs``, then
``_jobs``): a program that never runs one does not load it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Literal, Unpack, overload

from .._endpoints import Endpoint
from .._models import (
    Channel,
    ChannelUpdate,
    Contact,
    ContactCreate,
    ContactField,
    ContactMemory,
    ContactMerge,
    ContactNote,
    ContactStatus,
    ContactUpdate,
    MergeResult,
    NewChannel,
    Segment,
)
from .._pagination import AsyncPager
from .._pipeline import Pipeline
from .._protocol import path_segment
from .._types import UNSET, Unset
from ._contact_chats import ContactChats
from ._contact_import import ContactImports

if TYPE_CHECKING:
    from .._jobs.engine import BulkOptions, BulkStream
    from .._jobs.import_results import ImportPlan, ImportReport
    from .._jobs.results import (
        BulkReport,
        SegmentSyncPlan,
        SegmentSyncProgress,
        SegmentSyncReport,
    )

__all__ = ["AsyncContacts"]

ADD_SEGMENT = Endpoint(
    "POST", "/orgs/{org_id}/contacts/{contact_id}/segments/{segment_id}", "contacts.add_segment"
)
REMOVE_SEGMENT = Endpoint(
    "DELETE",
    "/orgs/{org_id}/contacts/{contact_id}/segments/{segment_id}",
    "contacts.remove_segment",
    inferred=True,
)
LIST_SEGMENTS = Endpoint(
    "GET", "/orgs/{org_id}/contacts/{contact_id}/segments", "contacts.list_segments"
)
LIST = Endpoint("GET", "/orgs/{org_id}/contacts", "contacts.list")
GET = Endpoint("GET", "/orgs/{org_id}/contacts/{contact_id}", "contacts.get", inferred=True)
CREATE = Endpoint("POST", "/orgs/{org_id}/contacts", "contacts.create", idempotent=False)
UPDATE = Endpoint("PATCH", "/orgs/{org_id}/contacts/{contact_id}", "contacts.update")
DELETE = Endpoint(
    "DELETE", "/orgs/{org_id}/contacts/{contact_id}", "contacts.delete", inferred=True
)
MERGE = Endpoint(
    "POST", "/orgs/{org_id}/contacts/{contact_id}/merge", "contacts.merge", idempotent=False
)
LIST_FIELDS = Endpoint("GET", "/orgs/{org_id}/contacts/fields", "contacts.list_fields")
LIST_NOTES = Endpoint("GET", "/orgs/{org_id}/contacts/{contact_id}/notes", "contacts.list_notes")
LIST_MEMORIES = Endpoint(
    "GET", "/orgs/{org_id}/contacts/{contact_id}/memories", "contacts.list_memories"
)
UPDATE_CHANNEL = Endpoint(
    "PATCH",
    "/orgs/{org_id}/contacts/{contact_id}/channels/{channel_id}",
    "contacts.update_channel",
)


class AsyncContacts(ContactChats, ContactImports):
    """Contacts of the client's organisation: ``client.contacts``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._prefix = pipeline.prefix  # "/orgs/{org}", encoded once

    # ------------------------------------------------------------------ segments

    @ADD_SEGMENT.documents
    async def add_segment(self, contact_id: str, segment_id: str) -> Contact:
        """Add a contact to a segment.

        Adding a segment the contact already has changes nothing, so the call is retried
        like any idempotent one.

        Args:
            contact_id: The contact.
            segment_id: The segment to add the contact to.

        Returns:
            The updated contact, with its segments.
        """
        request = ADD_SEGMENT.request(self._prefix, contact_id, segment_id)
        return await self._pipeline.call(request, Contact)

    @REMOVE_SEGMENT.documents
    async def remove_segment(self, contact_id: str, segment_id: str) -> Contact:
        """Remove a contact from a segment.

        Inferred endpoint: the published docs do not show it; it mirrors
        :meth:`add_segment` following the API's conventions.

        Args:
            contact_id: The contact.
            segment_id: The segment to take the contact out of.

        Returns:
            The updated contact.
        """
        request = REMOVE_SEGMENT.request(self._prefix, contact_id, segment_id)
        return await self._pipeline.call(request, Contact)

    @LIST_SEGMENTS.documents
    def list_segments(
        self, contact_id: str, *, take: int = 100, page: int = 1
    ) -> AsyncPager[Segment]:
        """The segments a contact belongs to.

        Args:
            contact_id: The contact.
            take: Page size, 1 to 100.
            page: First page to fetch (1-based).

        Returns:
            An async-iterable pager over the segments (no request is made until you iterate).
        """
        first = LIST_SEGMENTS.request(self._prefix, contact_id)
        return self._pipeline.paginate(first, {}, Segment, take=take, page=page)

    # ------------------------------------------------------------------ contacts

    @LIST.documents
    def list(
        self,
        *,
        search: str | None = None,
        unsubscribed: bool | None = None,
        user_id: str | None = None,
        name: str | None = None,
        username: str | None = None,
        email: str | None = None,
        segment_id: str | None = None,
        exclude_admins: bool | None = None,
        exclude_board_id: str | None = None,
        status: ContactStatus | str | None = None,
        take: int = 100,
        page: int = 1,
    ) -> AsyncPager[Contact]:
        """List contacts, walking every page.

        Filters left at None are not sent.

        Args:
            search: Search by contact name (the filter's name is inferred; the docs do not
                render it).
            unsubscribed: Only contacts with this unsubscribed flag.
            user_id: Match a channel user id (phone number, platform user id, ...).
            name: Match the contact's name.
            username: Match a channel username.
            email: Match a channel email address.
            segment_id: Only contacts in this segment.
            exclude_admins: Leave out admin contacts.
            exclude_board_id: Leave out contacts already on this board.
            status: ``ALL``, ``SUBSCRIBED``, ``UNSUBSCRIBED``, ``BLOCKED`` or
                ``AI_REPLIES_DISABLED`` (see :class:`ContactStatus`).
            take: Page size, 1 to 100.
            page: First page to fetch (1-based).

        Returns:
            An async-iterable pager over the contacts (no request is made until you iterate).
        """
        params = {
            "search": search,
            "unsubscribed": unsubscribed,
            "user_id": user_id,
            "name": name,
            "username": username,
            "email": email,
            "segment_id": segment_id,
            "exclude_admins": exclude_admins,
            "exclude_board_id": exclude_board_id,
            "status": None if status is None else str(status),
        }
        first = LIST.request(self._prefix)
        return self._pipeline.paginate(first, params, Contact, take=take, page=page)

    @GET.documents
    async def get(self, contact_id: str) -> Contact:
        """Fetch one contact.

        Inferred endpoint: the published docs do not show it; it follows the API's REST
        conventions.

        Args:
            contact_id: The contact.
        """
        return await self._pipeline.call(GET.request(self._prefix, contact_id), Contact)

    @CREATE.documents
    async def create(
        self,
        *,
        name: str | Unset = UNSET,
        email: str | Unset = UNSET,
        phone: str | Unset = UNSET,
        user_id: str | Unset = UNSET,
        segment_ids: Sequence[str] | Unset = UNSET,
    ) -> Contact:
        """Create a contact with its first channel.

        The API needs an email or a phone (or a channel user id) for the channel. Creating is
        not idempotent, so it is retried only when the request certainly did not reach the
        server (the connection could not be opened, or a 429).

        Args:
            name: Display name of the contact.
            email: Email address of the first channel.
            phone: Phone number of the first channel.
            user_id: Channel-specific user id of the first channel.
            segment_ids: Segments to put the new contact into.

        Returns:
            The created contact.
        """
        if isinstance(segment_ids, str):
            raise TypeError("segment_ids must be a sequence of ids, not a single string")
        body = ContactCreate(
            channel=NewChannel(user_id=user_id, name=name, email=email, phone=phone),
            segment_ids=UNSET if segment_ids is UNSET else tuple(segment_ids),
        )
        request = CREATE.request(self._prefix, body=body)
        return await self._pipeline.call(request, Contact)

    @UPDATE.documents
    async def update(
        self,
        contact_id: str,
        *,
        name: str | Unset | None = UNSET,
        blocked: bool | Unset = UNSET,
        unsubscribed: bool | Unset = UNSET,
    ) -> Contact:
        """Change a contact.

        Only the arguments you pass are sent. This is the API's way to block/unblock and to
        unsubscribe/resubscribe a contact.

        Args:
            contact_id: The contact.
            name: New display name (up to 512 characters); None clears it.
            blocked: Block (True) or unblock (False).
            unsubscribed: Unsubscribe (True) or resubscribe (False).

        Returns:
            The updated contact.
        """
        body = ContactUpdate(name=name, blocked=blocked, unsubscribed=unsubscribed)
        if body == ContactUpdate():
            raise ValueError("update() needs at least one of name, blocked, unsubscribed")
        request = UPDATE.request(self._prefix, contact_id, body=body)
        return await self._pipeline.call(request, Contact)

    @DELETE.documents
    async def delete(self, contact_id: str) -> None:
        """Delete a contact.

        Inferred endpoint: the published docs do not show it; it follows the API's REST
        conventions. The response body is not relied on.

        Args:
            contact_id: The contact.
        """
        await self._pipeline.send(DELETE.request(self._prefix, contact_id))

    @MERGE.documents
    async def merge(
        self, contact_id: str, source_contact_ids: Sequence[str] | None = None
    ) -> MergeResult:
        """Fold other contacts into a primary one.

        Not idempotent: retried only when the request certainly did not reach the server.

        Args:
            contact_id: The primary contact, which survives.
            source_contact_ids: 1 to 50 contacts to fold in. None lets the server merge every
                duplicate it detects.

        Returns:
            The merged contact and the ids folded into it.
        """
        if isinstance(source_contact_ids, str):
            raise TypeError("source_contact_ids must be a sequence of ids, not a single string")
        sources: tuple[str, ...] | Unset = UNSET
        if source_contact_ids is not None:
            sources = tuple(source_contact_ids)
            if not 1 <= len(sources) <= 50:
                raise ValueError("source_contact_ids must hold 1 to 50 ids")
        body = ContactMerge(source_contact_ids=sources)
        request = MERGE.request(self._prefix, contact_id, body=body)
        return await self._pipeline.call(request, MergeResult)

    # ------------------------------------------------------------------ sub-resources

    @LIST_FIELDS.documents
    def list_fields(self, *, take: int = 100, page: int = 1) -> AsyncPager[ContactField]:
        """The organisation's contact field definitions.

        Args:
            take: Page size, 1 to 100.
            page: First page to fetch (1-based).
        """
        first = LIST_FIELDS.request(self._prefix)
        return self._pipeline.paginate(first, {}, ContactField, take=take, page=page)

    @LIST_NOTES.documents
    def list_notes(
        self, contact_id: str, *, take: int = 100, page: int = 1
    ) -> AsyncPager[ContactNote]:
        """The notes on a contact.

        Args:
            contact_id: The contact.
            take: Page size, 1 to 100.
            page: First page to fetch (1-based).
        """
        first = LIST_NOTES.request(self._prefix, contact_id)
        return self._pipeline.paginate(first, {}, ContactNote, take=take, page=page)

    @LIST_MEMORIES.documents
    def list_memories(
        self, contact_id: str, *, take: int = 100, page: int = 1
    ) -> AsyncPager[ContactMemory]:
        """What is remembered about a contact: facts, preferences, goals and experiences.

        Legacy page only: the endpoint appears on one older docs page and on no current one,
        so whether the API still serves it is unknown. That page typed the timestamps as plain
        dates; :class:`ContactMemory` reads dates and date-times.

        Args:
            contact_id: The contact.
            take: Page size, 1 to 100.
            page: First page to fetch (1-based).
        """
        first = LIST_MEMORIES.request(self._prefix, contact_id)
        return self._pipeline.paginate(first, {}, ContactMemory, take=take, page=page)

    @UPDATE_CHANNEL.documents
    async def update_channel(
        self,
        contact_id: str,
        channel_id: str,
        *,
        avatar: str | Unset | None = UNSET,
        name: str | Unset | None = UNSET,
        phone: str | Unset | None = UNSET,
        username: str | Unset | None = UNSET,
        email: str | Unset | None = UNSET,
    ) -> Channel:
        """Change a contact's *custom* channel.

        Only channels of type ``custom`` can be changed. Only the arguments you pass are sent;
        None clears a field.

        Args:
            contact_id: The contact.
            channel_id: The channel.
            avatar: Avatar URL (up to 2048 characters).
            name: Full name (up to 256 characters).
            phone: Phone number (up to 256 characters).
            username: Username (up to 256 characters).
            email: Email address (up to 256 characters).

        Returns:
            The updated channel.
        """
        body = ChannelUpdate(avatar=avatar, name=name, phone=phone, username=username, email=email)
        if body == ChannelUpdate():
            raise ValueError("update_channel() needs at least one field to change")
        request = UPDATE_CHANNEL.request(self._prefix, contact_id, channel_id, body=body)
        return await self._pipeline.call(request, Channel)

    # ------------------------------------------------------------------ bulk

    async def bulk_add_segment(
        self,
        contact_ids: Iterable[str | Contact] | AsyncIterable[str | Contact],
        segment_id: str,
        **options: Unpack[BulkOptions],
    ) -> BulkReport:
        """Add many contacts to a segment, concurrently, accounting for every id.

        Ids are read lazily from any iterable or async iterable (a list, a generator, a file, a
        ``contacts.list()`` pager), by a bounded pool of workers: memory follows the
        concurrency, not the input size. Requests share the client's rate governor, so the job
        runs at the API's limit and a 429 pauses every worker together. Transient failures are
        retried per item; permanent ones (404, 400, ...) are reported in ``failures``.

        Args:
            contact_ids: The contacts to tag (ids, or contacts with an ``id``). Duplicates
                are processed once (later copies are reported as skipped).
            segment_id: The segment to add them to.
            **options: ``concurrency``, ``on_progress``, ``journal``, ``total`` and
                ``max_retries``, described in :class:`BulkOptions`.

        Returns:
            A :class:`BulkReport`: counts of succeeded, failed and skipped items, every
            failure with its exception and attempt count, retries and 429s seen.

        Raises:
            BulkAbortedError: a 401/403, or a 429 asking to wait longer than the client's
                ``RateLimit.max_retry_after``, would make every remaining item fail; the job
                stops early and the exception carries the partial report (and the server's
                ``retry_after``). Ids not taken yet are not in it; a journal resumes them.
            asyncio.CancelledError: the job was cancelled; in-flight items are reported as
                skipped in the partial report attached to it (:func:`partial_report`).
        """
        from ._segment_jobs import segment_change_job

        job = segment_change_job(
            self._pipeline, ADD_SEGMENT, contact_ids, segment_id, options, streaming=False
        )
        return await job.run()

    async def bulk_remove_segment(
        self,
        contact_ids: Iterable[str | Contact] | AsyncIterable[str | Contact],
        segment_id: str,
        **options: Unpack[BulkOptions],
    ) -> BulkReport:
        """Remove many contacts from a segment, concurrently, accounting for every id.

        The same engine as :meth:`bulk_add_segment` (read its notes), applying
        :meth:`remove_segment` to each id.

        Args:
            contact_ids: The contacts to untag (ids, or contacts with an ``id``).
            segment_id: The segment to remove them from.
            **options: As for :meth:`bulk_add_segment` (:class:`BulkOptions`).

        Returns:
            A :class:`BulkReport`.
        """
        from ._segment_jobs import segment_change_job

        job = segment_change_job(
            self._pipeline, REMOVE_SEGMENT, contact_ids, segment_id, options, streaming=False
        )
        return await job.run()

    def stream_add_segment(
        self,
        contact_ids: Iterable[str | Contact] | AsyncIterable[str | Contact],
        segment_id: str,
        **options: Unpack[BulkOptions],
    ) -> BulkStream:
        """Like :meth:`bulk_add_segment`, but yield each item's result as it completes.

        Use it as ``async with client.contacts.stream_add_segment(ids, sg) as results:`` then
        ``async for result in results:``; leaving the block early stops the job. Each
        :class:`ItemResult` has the id, its outcome, the attempts and the contact or error;
        ``results.report`` is the report so far.

        Args:
            contact_ids: The contacts to tag (ids, or contacts with an ``id``).
            segment_id: The segment to add them to.
            **options: As for :meth:`bulk_add_segment` (:class:`BulkOptions`).
        """
        from ._segment_jobs import segment_change_job

        return segment_change_job(
            self._pipeline, ADD_SEGMENT, contact_ids, segment_id, options, streaming=True
        )

    def stream_remove_segment(
        self,
        contact_ids: Iterable[str | Contact] | AsyncIterable[str | Contact],
        segment_id: str,
        **options: Unpack[BulkOptions],
    ) -> BulkStream:
        """Like :meth:`bulk_remove_segment`, but yield each item's result as it completes.

        Args:
            contact_ids: The contacts to untag (ids, or contacts with an ``id``).
            segment_id: The segment to remove them from.
            **options: As for :meth:`bulk_add_segment` (:class:`BulkOptions`).
        """
        from ._segment_jobs import segment_change_job

        return segment_change_job(
            self._pipeline, REMOVE_SEGMENT, contact_ids, segment_id, options, streaming=True
        )

    # ------------------------------------------------------------------ segment sync

    @overload
    async def sync_segment(
        self,
        segment_id: str,
        contact_ids: Iterable[str | Contact] | AsyncIterable[str | Contact] | None = None,
        *,
        emails: Iterable[object] | AsyncIterable[object] | None = None,
        create_missing: bool = False,
        remove_others: bool = False,
        dry_run: Literal[False] = False,
        verify: bool = False,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        on_progress: Callable[[SegmentSyncProgress], object] | None = None,
        plan: SegmentSyncPlan | None = None,
    ) -> SegmentSyncReport: ...

    @overload
    async def sync_segment(
        self,
        segment_id: str,
        contact_ids: Iterable[str | Contact] | AsyncIterable[str | Contact] | None = None,
        *,
        emails: Iterable[object] | AsyncIterable[object] | None = None,
        create_missing: bool = False,
        remove_others: bool = False,
        dry_run: Literal[True],
        verify: bool = False,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        on_progress: Callable[[SegmentSyncProgress], object] | None = None,
        plan: SegmentSyncPlan | None = None,
    ) -> SegmentSyncPlan: ...

    @overload
    async def sync_segment(
        self,
        segment_id: str,
        contact_ids: Iterable[str | Contact] | AsyncIterable[str | Contact] | None = None,
        *,
        emails: Iterable[object] | AsyncIterable[object] | None = None,
        create_missing: bool = False,
        remove_others: bool = False,
        dry_run: bool,
        verify: bool = False,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        on_progress: Callable[[SegmentSyncProgress], object] | None = None,
        plan: SegmentSyncPlan | None = None,
    ) -> SegmentSyncPlan | SegmentSyncReport: ...

    async def sync_segment(
        self,
        segment_id: str,
        contact_ids: Iterable[str | Contact] | AsyncIterable[str | Contact] | None = None,
        *,
        emails: Iterable[object] | AsyncIterable[object] | None = None,
        create_missing: bool = False,
        remove_others: bool = False,
        dry_run: bool = False,
        verify: bool = False,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        on_progress: Callable[[SegmentSyncProgress], object] | None = None,
        plan: SegmentSyncPlan | None = None,
    ) -> SegmentSyncPlan | SegmentSyncReport:
        """Make a segment hold ``contact_ids`` (or the contacts of ``emails``), sending only
        the requests that change it.

        Reads the segment's membership (``GET /contacts?segment_id=...``, 100 members a
        request, up to 8 pages at a time, on the rate governor's bulk lane) into a
        compact table, then streams the input: an id that is a member already
        is ``unchanged``, any other is added through the bulk engine (as
        :meth:`bulk_add_segment`: concurrency, retries, the rate governor's bulk lane,
        progress, the journal, cancellation, :class:`BulkAbortedError`). With
        ``remove_others``, once the input is exhausted, the members that no input id matched
        are removed. Membership is a snapshot: contacts added or removed by someone else
        meanwhile do not fail the job (adds and removals are idempotent; a removal answered
        404 is reported in ``changed_meanwhile``).

        Worth it or not: reading costs ``ceil(members / 100)`` requests and saves one add per
        input id that is a member already. The first page tells the member count; the rest
        is read when it costs at most half the number of input ids, else the sync only adds
        (``strategy="add-only"``, the ids on the first page excepted). An input without
        ``len()`` is counted by reading ahead as many ids as the rule needs (at most
        100,000). ``remove_others`` always reads the whole membership. The plan and the
        report say which way was chosen, and why.

        By email: ``emails=`` (emails, or import rows: see :meth:`import_contacts`) in place
        of ``contact_ids``. The rows are imported into the segment first, 10,000 a request
        (with ``create_missing=False``, the default here, each request preceded by its dry
        run, and a row matching no contact skipped: nothing is created); the answers name
        the rows' contacts, and the sync then runs on those ids, reading the whole
        membership (which finds them members: no add) to remove the others and verify. For
        ``N`` rows and ``M`` members: ``2 * ceil(N / 10,000)`` requests (``ceil(N /
        10,000)`` with ``create_missing=True``), ``ceil(M / 100)`` reads, and one request
        per removal. The report's ``imported`` is the import's report (rows created,
        updated, invalid, failed, skipped); a dry run sends only dry runs and reads.

        Args:
            segment_id: The segment.
            contact_ids: The contacts it should hold (ids, or contacts with an ``id``), from
                any iterable or async iterable, read lazily and once; duplicates count once.
            emails: Instead of ``contact_ids``: the emails (or rows) of the contacts it should
                hold, imported into the segment first (see above).
            create_missing: With ``emails``: create a contact for a row that matches none
                (default False: such a row is skipped, and counted in ``imported``).
            remove_others: Also remove the members that are not in ``contact_ids``, making
                the segment exactly the input.
            dry_run: Send only the membership reads and return a :class:`SegmentSyncPlan`:
                what would be added and removed, the requests the run would send and the
                time they take at the client's current rate. Pass it back as ``plan=`` to run
                it on the same snapshot without reading the membership again.
            verify: After the job, read the membership again and report the input ids that
                are not members (``missing``) and, with ``remove_others``, the members that
                are not in the input (``unexpected``). Costs ``ceil(members / 100)`` more
                requests.
            concurrency: Requests in flight for the adds and the removals (default 32).
            journal: A file recording the adds and the removals done; a re-run with the same
                journal does not redo them (adds are plain ids, as in
                :meth:`bulk_add_segment`'s journal; removals are ``removed<TAB><id>`` lines).
            on_progress: Called with a :class:`SegmentSyncProgress` a few times a second
                and once at the end (from the event loop: keep it quick).
            plan: A plan from ``dry_run=True`` for this segment: its membership snapshot is
                used instead of reading the membership again (it is as old as the plan). Not
                with ``emails``.

        Returns:
            A :class:`SegmentSyncPlan` with ``dry_run=True``; else a
            :class:`SegmentSyncReport`: added, unchanged, removed, failed (each failure with
            its exception), skipped, the changes found meanwhile, the strategy and every
            request sent (``requests_sent``: reads, writes and retries).

        Raises:
            InventError: a membership read failed after its retries (nothing was written).
            SegmentSyncAbortedError: a 401/403, a 429 asking to wait longer than
                ``RateLimit.max_retry_after``, or the client's close stopped the writes; it
                carries the partial report (``sync_report``).
            JournalError: the journal cannot be read or written.
            asyncio.CancelledError: the sync was cancelled; :func:`partial_sync_report`
                reads the partial report from it.
        """
        path_segment(segment_id, "segment_id")
        if not isinstance(dry_run, bool):
            raise TypeError(f"dry_run must be True or False, got {dry_run!r}")
        if (contact_ids is None) == (emails is None):
            raise TypeError("sync_segment takes contact_ids or emails= (one of them)")
        from .._jobs import import_results as results
        from .._jobs.segment_sync_job import SegmentSyncJob
        from ._segment_jobs import (
            ImportedIds,
            by_email_plan,
            by_email_report,
            importing,
            segment_sync_io,
        )

        imported: ImportReport | ImportPlan | None = None
        collect: ImportedIds | None = None
        if emails is not None:
            if plan is not None:
                raise TypeError("plan= is for a sync by contact ids, not by emails")
            collect = ImportedIds()
            contact_ids = collect.ids
            imported = await self.import_contacts(
                emails,
                segment_id=segment_id,
                dry_run=dry_run,
                create_missing=create_missing,
                on_row=collect,
                on_progress=None if on_progress is None else importing(on_progress),
            )
        io = segment_sync_io(
            self._pipeline, segment_id, add=ADD_SEGMENT, remove=REMOVE_SEGMENT, members=LIST
        )
        assert contact_ids is not None  # (checked above: given, or collected by the import)
        unknown = 0 if collect is None else collect.unknown  # rows whose contact is unknown
        job = SegmentSyncJob(
            segment_id=segment_id,
            source=contact_ids,
            remove_others=remove_others and not unknown,
            verify=verify,
            concurrency=concurrency,
            journal=journal,
            on_progress=on_progress,
            plan=plan,
            read_all=emails is not None,
            **io,
        )
        if dry_run:
            made = await job.make_plan()
            if imported is None:
                return made
            assert isinstance(imported, results.ImportPlan)
            return by_email_plan(made, imported, unknown=unknown if remove_others else 0)
        report = await job.run()
        if imported is None:
            return report
        assert isinstance(imported, results.ImportReport)
        return by_email_report(report, imported, unknown=unknown if remove_others else 0)
