"""The segment sync job: the membership read, the adds and removals, the verify read.

``contacts.sync_segment`` builds a :class:`SegmentSyncJob` from three callables (read the
membership's pages, add one contact, remove one) and runs it. In order:

1. Read the first page of the membership: its ``pagination-count`` tells the member count;
   the worth-it rule (:func:`~.segment_sync_plan.choose_strategy`) decides whether to read
   the rest into a :class:`~.segment_sync_plan.MemberTable` (an input without ``len()`` is
   counted by reading a bounded number of ids ahead, :meth:`~.reader.IdReader.count_up_to`).
   The other pages are fetched up to :data:`~.segment_sync_plan.READS_IN_FLIGHT` at a time (a
   sequential walk would wait a round trip per page and stay below the rate limit), then on
   while the count grew meanwhile.
2. Stream the input through :meth:`~.segment_sync_plan.InputClassifier.classify`: a member
   is unchanged, a repeated member a duplicate, anything else goes to a
   :class:`~.engine.BulkStream` that adds it (duplicates, journal, retries, progress,
   cancellation and :class:`~.results.BulkAbortedError` as in ``bulk_add_segment``).
3. With ``remove_others``, once the input is exhausted: a second bulk stream removes the
   members no input id matched (its journal lines are ``removed\\t<id>``). A 404 means the
   contact left (or was deleted) meanwhile: reported in ``changed_meanwhile``, not failed.
4. With ``verify``, read the membership again and compare it with the input.

A dry run (:meth:`SegmentSyncJob.make_plan`) does step 1, then classifies the input and the
members exactly as the run would: the same ``InputClassifier``, then the bulk engine's own
:class:`~.engine.Precheck` (duplicates, journal) for the ids to add and to remove.

Every request goes through the callables, that is the client's one request path; the job
counts them with :class:`~._pipeline.CallStats` (``sent``: what reached the transport).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from itertools import compress
from typing import Final, Literal, cast

from .._exceptions import InventError, NotFoundError
from .._models import ContactRef
from .._pagination import Page
from .._pipeline import CallStats
from .engine import PROGRESS_INTERVAL, BulkStream, Precheck, check_concurrency
from .idset import CompactIds
from .journal import REMOVED, read_journal
from .reader import BatchedIds, IdReader, IdSource, contact_id_of
from .results import (
    EMPTY_REPORT,
    BulkAbortedError,
    BulkProgress,
    ChangeLog,
    ItemResult,
    Outcome,
    SegmentSyncAbortedError,
    SegmentSyncPlan,
    SegmentSyncProgress,
    SegmentSyncReport,
    attach_report,
)
from .segment_sync_plan import (
    ADD_ONLY,
    DIFF,
    MEMBER_PAGE_SIZE,
    PEEK_LIMIT,
    READS_IN_FLIGHT,
    TO_ADD_MASK,
    InputClassifier,
    MemberTable,
    Strategy,
    StrategyChoice,
    add_ids,
    choose_strategy,
    estimate_seconds,
    new_table,
    peek_limit,
    plan_requests,
    rate_and_eta,
    read_requests,
)

__all__ = [
    "FetchPage",
    "SegmentSyncJob",
    "MemberOperation",
    "SegmentSyncProgressCallback",
]

FetchPage = Callable[[int, CallStats], Awaitable[Page[ContactRef]]]
"""Fetches page ``n`` (1-based) of the segment's members, 100 a page, counting its attempts
into the stats."""
MemberOperation = Callable[[str, CallStats], Awaitable[object]]
"""Adds (or removes) one contact, counting its attempts into the stats."""
SegmentSyncProgressCallback = Callable[[SegmentSyncProgress], object]
Phase = Literal["reading", "adding", "removing", "verifying"]

_JUST_STR: Final = frozenset({str})  # the types of a batch of plain ids
READ_ALL: Final = (
    "a sync by email reads the whole membership: the import put the input's contacts into "
    "the segment, the read tells which members are not among them"
)


class _Counts:
    """The job's own tallies (the bulk streams keep theirs)."""

    def __init__(self) -> None:
        self.handled = 0  # input ids classified here (members and their duplicates)
        self.unchanged = 0
        self.duplicates = 0  # duplicates found here (the add stream reports its own)
        self.pages = 0  # membership pages read (both reads)
        self.verify_pages = 0
        self.write_sent = 0
        self.gone = 0
        self.removals = 0
        self.add_skips: Counter[str] = Counter()  # skipped adds by reason, as streamed
        self.planned: int | None = None  # a dry run's input ids classified so far


class SegmentSyncJob:
    """One ``sync_segment`` call: a plan (dry run) or a run, then its report.

    Args:
        segment_id: The segment.
        org_id: The organisation (recorded in a plan, checked when a plan is reused).
        source: The input ids or contacts (any iterable or async iterable, read once).
        remove_others: Remove the members that are not in the input.
        verify: Read the membership again after the job and compare.
        concurrency: Requests in flight for the adds and the removals (default 32).
        journal: The resume journal (adds as plain ids, removals as ``removed\\t<id>``).
        on_progress: Called with a :class:`SegmentSyncProgress` a few times a second.
        plan: A dry run's plan whose membership snapshot this run reuses.
        fetch_page: Fetches one page of the membership (see :data:`FetchPage`).
        add: Adds one contact to the segment.
        remove: Removes one contact from the segment.
        rate_per_minute: The client's pacing rate, for estimates (None: no governor).
        max_retry_after: The longest ``Retry-After`` a write waits for (the bulk engine stops
            the job on a longer one).
        read_all: Read the whole membership whatever the worth-it rule says (a sync by email:
            the import has just put the input into the segment, so only the membership read
            tells which members to keep).
    """

    def __init__(
        self,
        *,
        segment_id: str,
        org_id: str,
        source: IdSource,
        remove_others: bool,
        verify: bool,
        concurrency: int | None,
        journal: str | os.PathLike[str] | None,
        on_progress: SegmentSyncProgressCallback | None,
        plan: SegmentSyncPlan | None,
        fetch_page: FetchPage,
        add: MemberOperation,
        remove: MemberOperation,
        rate_per_minute: float | None,
        max_retry_after: float | None,
        read_all: bool = False,
    ) -> None:
        for name, flag in (("remove_others", remove_others), ("verify", verify)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        if concurrency is not None:
            check_concurrency(concurrency)
        if plan is not None:
            if not isinstance(plan, SegmentSyncPlan):
                raise TypeError("plan must be a SegmentSyncPlan from a dry run")
            if (plan.segment_id, plan.org_id) != (segment_id, org_id):
                raise ValueError(
                    f"the plan is for segment {plan.segment_id!r} of organisation "
                    f"{plan.org_id!r}, not {segment_id!r} of {org_id!r}"
                )
        self._segment_id = segment_id
        self._org_id = org_id
        self._input = IdReader(source)
        self._remove_others = remove_others
        self._verify = verify
        self._concurrency = concurrency
        self._journal = journal
        self._on_progress = on_progress
        self._plan = plan
        self._read_all = read_all
        self._fetch_page = fetch_page
        self._add = add
        self._remove = remove
        self._rate = rate_per_minute
        self._max_retry_after = max_retry_after
        self._table = MemberTable()
        self._inputs = InputClassifier(self._table, keep_others=False)  # set once read
        self._strategy: Strategy = DIFF
        self._reason = ""
        self._members = 0
        self._read_stats = CallStats()
        self._counts = _Counts()
        self._input_error: TypeError | None = None  # an input item that is not an id
        self._changes = ChangeLog()
        self._removed_ids = CompactIds()
        self._missing = CompactIds()
        self._unexpected = CompactIds()
        self._verified = False
        self._verify_error: Exception | None = None
        self._adds: BulkStream | None = None
        self._removes: BulkStream | None = None
        self._stopped = False
        self._start = time.monotonic()
        self._end: float | None = None
        self._phase: Phase = "reading"
        self._phase_total: int | None = None
        self._phase_start = self._start
        self._last_progress = 0.0

    # ------------------------------------------------------------------ entry points

    async def make_plan(self) -> SegmentSyncPlan:
        """The dry run: read the membership (as a run would) and the input; send no write.

        Raises:
            InventError: a membership read failed (after its retries).
            JournalError: the journal cannot be read.
        """
        try:
            await self._read_membership()
            plan = await self._classify_for_plan()
        except asyncio.CancelledError:
            self._stopped = True
            raise
        self._end = time.monotonic()
        return plan

    async def run(self) -> SegmentSyncReport:
        """Read, add, remove, verify; return the report.

        Raises:
            InventError: a membership read failed (nothing was written yet).
            SegmentSyncAbortedError: an error that affects every write stopped the job.
            asyncio.CancelledError: the job was cancelled; the partial report is attached
                (``partial_sync_report(exc)``).
        """
        try:
            await self._read_membership()
            await self._add_phase()
            if self._remove_others:
                await self._remove_phase()
            if self._verify:
                await self._verify_phase()
        except asyncio.CancelledError as exc:
            self._stopped = True
            attach_report(exc, self.report)
            raise
        self._end = time.monotonic()
        self._emit(force=True, finished=True)
        return self.report

    # ------------------------------------------------------------------ 1. the membership

    async def _read_membership(self) -> None:
        plan = self._plan
        snapshot = plan.snapshot if plan is not None else None
        # a plan's snapshot serves unless it is only the first page and removals need it all
        if (
            plan is not None
            and snapshot is not None
            and (snapshot.complete or not self._remove_others)
        ):
            self._table = snapshot
            self._members = plan.members
            self._strategy = DIFF if snapshot.complete else ADD_ONLY
            self._reason = f"{plan.reason} (the plan's snapshot, not read again)"
            self._inputs = InputClassifier(snapshot, keep_others=self._verify)
            return
        self._set_phase("reading")
        first = await self._fetch(1)
        members = first.count
        if members is None and not first.has_next:
            members = len(first.items)
        self._phase_total = None if members is None else read_requests(members)
        inputs, at_least = await self._count_input(members)
        choice = (
            StrategyChoice(strategy=DIFF, reason=READ_ALL)
            if self._read_all
            else choose_strategy(
                members, inputs, remove_others=self._remove_others, at_least=at_least
            )
        )
        self._strategy, self._reason = choice.strategy, choice.reason
        # sized for the whole membership at once: its index is never grown (nor copied)
        first_ids = [c.id for c in first.items]
        table = self._table = new_table(members if self._strategy == DIFF else None, first_ids)
        repeats = add_ids(table, first_ids)
        self._emit()
        if self._strategy == DIFF:
            counts: list[int] = []

            def take(page: Page[ContactRef]) -> None:
                nonlocal repeats
                repeats += add_ids(table, (c.id for c in page.items))
                if page.count is not None:
                    counts.append(page.count)

            await self._walk(first, take)
            table.complete = True
            moved = [c for c in counts if c != first.count]
            if moved:
                self._note_read_drift(first.count, moved[-1])
        self._members = members if members is not None else len(table)
        if repeats:
            self._changes.note(
                "read",
                None,
                f"{repeats:,} ids came up on two pages: the membership changed while it was read",
            )
        self._inputs = InputClassifier(table, keep_others=self._verify)

    async def _fetch(self, number: int) -> Page[ContactRef]:
        page = await self._fetch_page(number, self._read_stats)
        self._counts.pages += 1
        if self._phase == "verifying":
            self._counts.verify_pages += 1
        return page

    async def _walk(
        self, first: Page[ContactRef], take: Callable[[Page[ContactRef]], None]
    ) -> None:
        """Read every page after ``first``, ``concurrency`` at a time, handing each to
        ``take`` (as it arrives, in any order), then on while the count grew meanwhile."""
        if not first.has_next:
            return
        last = 0 if first.count is None else read_requests(first.count)
        numbers = iter(range(2, last + 1))
        full = first.count  # the highest count seen: read on while it asks for more pages

        async def worker() -> None:
            nonlocal full
            for number in numbers:  # one shared iterator: each page is taken once
                page = await self._fetch(number)
                take(page)
                if page.count is not None and (full is None or page.count > full):
                    full = page.count
                self._emit()

        workers = min(self._concurrency or READS_IN_FLIGHT, READS_IN_FLIGHT, max(last - 1, 0))
        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        try:
            if tasks:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
        number = max(last, 1) + 1  # pages the count did not announce: until a short one
        while full is None or (number - 1) * MEMBER_PAGE_SIZE < full:
            page = await self._fetch(number)
            take(page)
            self._emit()
            if len(page.items) < MEMBER_PAGE_SIZE:
                break
            if page.count is not None:
                full = page.count
            number += 1

    def _note_read_drift(self, before: int | None, now: int) -> None:
        was = "unknown" if before is None else f"{before:,}"
        self._changes.note(
            "read",
            None,
            f"the member count went from {was} to {now:,} while it was read: members may "
            "have been missed (verify=True checks the outcome)",
        )

    async def _count_input(self, members: int | None) -> tuple[int | None, bool]:
        """How many input ids there are, for the worth-it rule, and whether that is only a
        lower bound: ``len()``, or reading ahead as far as the rule needs (``peek_limit``)."""
        if self._input.total is not None or self._remove_others:
            return self._input.total, False
        limit = peek_limit(members)
        if limit == 0:
            return None, False
        counted = await self._input.count_up_to(limit)
        if counted is not None:
            return counted, False
        if limit < PEEK_LIMIT:  # not capped: at least as many as the rule needs to read
            return limit, True
        return None, False

    # ------------------------------------------------------------------ 2. the input

    def _classify(self, items: list[object]) -> list[str]:
        """A batch of input items, as the run and the dry run both see it: the members
        (unchanged) and duplicates are counted here; the other ids are returned, to add."""
        if set(map(type, items)) <= _JUST_STR:
            contact_ids = cast("list[str]", items)
        else:  # contacts, or an item that is neither: the ids before it go first
            contact_ids = []
            try:
                for item in items:
                    contact_ids.append(contact_id_of(item))
            except TypeError as exc:
                self._input_error = exc  # raised once the ids before it are handled
        codes = self._inputs.verdicts(contact_ids)
        members, duplicates = codes.count(1), codes.count(2)
        if not members and not duplicates:
            return contact_ids
        counts = self._counts
        counts.handled += members + duplicates
        counts.unchanged += members
        counts.duplicates += duplicates
        return list(compress(contact_ids, codes.translate(TO_ADD_MASK)))

    async def _next_to_add(self) -> list[str]:
        """The next input ids that need an add (empty: the input is exhausted), classifying
        the others on the way, a batch at a time: the bulk engine takes them as a list."""
        while True:
            self._raise_input_error()
            if not (batch := await self._input.next_batch()):
                return []
            to_add = self._classify(batch)
            self._emit()
            if to_add:
                return to_add
            await asyncio.sleep(0)  # a long run of members: let the loop breathe

    def _raise_input_error(self) -> None:
        """Raise what an input item that is not an id raised (see :meth:`_classify`)."""
        if self._input_error is not None:
            error, self._input_error = self._input_error, None
            raise error

    async def _add_phase(self) -> None:
        self._set_phase("adding", self._input.total)
        source = BatchedIds(self._next_to_add)
        stream = self._adds = BulkStream(
            self._counted(self._add),
            source,
            concurrency=self._concurrency,
            on_progress=self._bulk_progress,
            journal=self._journal,
            max_retry_after=self._max_retry_after,
        )
        await self._drive(stream, self._after_add)
        self._emit(force=True)

    def _after_add(self, result: ItemResult) -> None:
        assert result.reason is not None
        self._counts.add_skips[result.reason] += 1
        if result.reason == "journal" and self._strategy == DIFF:
            self._changes.note(
                "left",
                result.contact_id,
                "the journal records it as added by an earlier run, but it is not a member "
                "now: not added again",
            )

    # ------------------------------------------------------------------ 3. the removals

    async def _remove_phase(self) -> None:
        removals = self._counts.removals = self._inputs.unmatched_count()
        self._set_phase("removing", removals)
        stream = self._removes = BulkStream(
            self._counted(self._remove_one),
            self._inputs.unmatched(),
            concurrency=self._concurrency,
            on_progress=self._bulk_progress,
            journal=self._journal,
            journal_kind=REMOVED,
            total=removals,
            max_retry_after=self._max_retry_after,
        )
        await self._drive(stream, self._after_remove)
        self._emit(force=True)

    async def _remove_one(self, contact_id: str, stats: CallStats) -> None:
        try:
            await self._remove(contact_id, stats)
        except NotFoundError as exc:
            self._counts.gone += 1
            self._changes.note(
                "gone", contact_id, f"the removal answered 404 ({exc.status}): {exc}"
            )
            return
        self._removed_ids.append(contact_id)

    def _after_remove(self, result: ItemResult) -> None:
        if result.reason == "journal":
            self._changes.note(
                "back",
                result.contact_id,
                "the journal records it as removed by an earlier run, but it is a member "
                "again: not removed again",
            )

    # ------------------------------------------------------------------ the bulk streams

    def _counted(self, operation: MemberOperation) -> Callable[[str, CallStats], Awaitable[None]]:
        counts = self._counts

        async def counted(contact_id: str, stats: CallStats) -> None:
            try:
                await operation(contact_id, stats)
            finally:
                counts.write_sent += stats.sent

        return counted

    async def _drive(self, stream: BulkStream, after: Callable[[ItemResult], None]) -> None:
        try:
            async with stream:
                async for result in stream:
                    if result.outcome is Outcome.SKIPPED and result.reason is not None:
                        after(result)
        except asyncio.CancelledError as exc:
            attach_report(exc, stream.report)  # the phase's, beside the whole sync's
            raise
        except BulkAbortedError as exc:
            self._stopped = True
            self._end = time.monotonic()
            raise SegmentSyncAbortedError(
                f"segment sync stopped early: {exc}", exc.report, exc.retry_after, self.report
            ) from exc.__cause__

    # ------------------------------------------------------------------ 4. verify

    async def _verify_phase(self) -> None:
        self._set_phase("verifying")
        inputs = self._inputs
        table, extra = inputs.table, inputs.others
        assert extra is not None
        present = bytearray(len(table))
        extra_present = bytearray(len(extra))
        unexpected = self._unexpected

        def check(page: Page[ContactRef]) -> None:
            for contact in page.items:
                index = table.find(contact.id)
                if index >= 0 and inputs.matched(index):
                    present[index] = 1
                    continue
                other = extra.find(contact.id) if index < 0 else -1
                if other >= 0:
                    extra_present[other] = 1
                elif self._remove_others:
                    unexpected.append(contact.id)

        try:
            first = await self._fetch(1)
            if first.count is not None:
                self._phase_total = read_requests(first.count)
            check(first)
            self._emit()
            await self._walk(first, check)
        except InventError as exc:
            self._verify_error = exc
            return
        for index in range(len(table)):
            if inputs.matched(index) and not present[index]:
                self._missing.append(table.id_at(index))
        for index in range(len(extra)):
            if not extra_present[index]:
                self._missing.append(extra.id_at(index))
        self._verified = True

    # ------------------------------------------------------------------ the plan

    async def _classify_for_plan(self) -> SegmentSyncPlan:
        """Classify the input and the members as the run would, without sending: the run's
        ``_classify``, then the checks its bulk streams make (:class:`Precheck`)."""
        capacity = min(self._input.total or 1024, 1 << 20)  # as the engine sizes its filter
        adds, removes = Precheck(capacity), Precheck()
        if self._journal is not None:
            adds = Precheck(capacity, done=read_journal(self._journal))
            removes = Precheck(done=read_journal(self._journal, REMOVED))
        self._set_phase("adding")
        inputs = 0
        skips = [0, 0, 0]  # the ids to add, by the code of the engine's skip reason
        counts = self._counts
        counts.planned = 0
        while batch := await self._input.next_batch():
            inputs += len(batch)
            counts.planned = inputs
            codes = adds.reasons(self._classify(batch))
            skips[0] += len(codes) - codes.count(1) - codes.count(2)
            skips[1] += codes.count(1)
            skips[2] += codes.count(2)
            self._raise_input_error()
            self._emit()
            await asyncio.sleep(0)
        self._emit(force=True)
        removals: Counter[str | None] = Counter()
        if self._remove_others:
            for contact_id in self._inputs.unmatched():
                removals[removes.reason(contact_id)] += 1
        to_add, to_remove = skips[0], removals[None]
        journal = skips[2] + removals["journal"]
        reads, writes, verify_reads = plan_requests(
            strategy=self._strategy,
            members=self._members,
            to_add=to_add,
            to_remove=to_remove,
            unchanged=counts.unchanged,
            journal=journal,
            verify=self._verify,
            remove_others=self._remove_others,
        )
        requests = reads + writes + verify_reads
        return SegmentSyncPlan(
            segment_id=self._segment_id,
            org_id=self._org_id,
            strategy=self._strategy,
            reason=self._reason,
            remove_others=self._remove_others,
            members=self._members,
            inputs=inputs,
            to_add=to_add,
            to_remove=to_remove,
            unchanged=counts.unchanged,
            duplicates=counts.duplicates + skips[1],
            journal=journal,
            read_requests=reads,
            write_requests=writes,
            verify_requests=verify_reads,
            requests=requests,
            requests_sent=self._read_stats.sent,
            rate_per_minute=self._rate,
            estimated_seconds=estimate_seconds(requests, self._rate),
            snapshot=self._table,
        )

    # ------------------------------------------------------------------ the report

    @property
    def report(self) -> SegmentSyncReport:
        """The report so far (final once :meth:`run` has returned or raised)."""
        counts = self._counts
        adds = self._adds.report if self._adds is not None else EMPTY_REPORT
        removes = self._removes.report if self._removes is not None else EMPTY_REPORT
        end = self._end if self._end is not None else time.monotonic()
        read = self._read_stats
        return SegmentSyncReport(
            segment_id=self._segment_id,
            strategy=self._strategy,
            reason=self._reason,
            remove_others=self._remove_others,
            members_before=self._members,
            total=counts.handled + adds.total,
            added=adds.succeeded,
            unchanged=counts.unchanged,
            failed=adds.failed,
            skipped=counts.duplicates + adds.skipped,
            duplicates=counts.duplicates + counts.add_skips["duplicate"],
            journal=counts.add_skips["journal"],
            removals=counts.removals,
            removed=len(self._removed_ids),
            gone=counts.gone,
            remove_failed=removes.failed,
            remove_skipped=removes.skipped,
            removed_ids=self._removed_ids,
            failures=adds.failures,
            remove_failures=removes.failures,
            changed_meanwhile=self._changes.kept(),
            cancelled_ids=(*adds.cancelled_ids, *removes.cancelled_ids),
            requests_sent=read.sent + counts.write_sent,
            read_requests=read.sent,
            retries=max(read.attempts - counts.pages, 0) + adds.retries + removes.retries,
            rate_limited=read.rate_limited + adds.rate_limited + removes.rate_limited,
            elapsed=end - self._start,
            rate_per_minute=self._rate,
            cancelled=self._stopped or adds.cancelled or removes.cancelled,
            verified=self._verified,
            missing=self._missing,
            unexpected=self._unexpected,
            verify_error=self._verify_error,
        )

    # ------------------------------------------------------------------ progress

    def _set_phase(self, phase: Phase, total: int | None = None) -> None:
        self._phase = phase
        self._phase_total = total
        self._phase_start = time.monotonic()

    def _bulk_progress(self, progress: BulkProgress) -> None:
        self._emit()

    def _emit(self, *, force: bool = False, finished: bool = False) -> None:
        """Call ``on_progress`` (at most every ``PROGRESS_INTERVAL`` unless ``force``)."""
        callback = self._on_progress
        if callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        report = self.report
        phase = self._phase
        done = {
            "reading": self._counts.pages,
            "verifying": self._counts.verify_pages,
            "adding": report.total if self._counts.planned is None else self._counts.planned,
            "removing": report.removed + report.gone + report.remove_failed + report.remove_skipped,
        }[phase]
        total = self._phase_total
        if phase == "adding" and self._input.total is not None:
            total = self._input.total  # known once counted by reading ahead
        rate, eta = rate_and_eta(done, total, now - self._phase_start)
        callback(
            SegmentSyncProgress(
                phase=phase,
                done=done,
                total=total,
                added=report.added,
                unchanged=report.unchanged,
                removed=report.removed,
                failed=report.failed + report.remove_failed,
                skipped=report.skipped + report.remove_skipped,
                requests=report.requests_sent,
                retries=report.retries,
                rate_limited=report.rate_limited,
                elapsed=now - self._start,
                rate=rate,
                eta=eta,
                finished=finished,
            )
        )
