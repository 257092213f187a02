"""Segment sync, the pure part: the member table, the worth-it rule, the plan and the reports.

``contacts.sync_segment`` makes a segment hold a list of contacts while sending as few
requests as it can: it reads the segment's membership (100 members a request), adds only the
input ids that are not members and, with ``remove_others``, removes the members that are not
in the input. Everything here is synchronous and I/O-free; the job that sends the requests
is ``_segment_job``.

- :class:`MemberTable`: the member ids as read, compactly: one UTF-8 blob, an array of end
  offsets and an open-addressing index of 8-byte slots (a 32-bit fingerprint and the entry's
  number), about 30 bytes a member for ids of 10 characters. Lookups are exact: a
  fingerprint match is confirmed against the stored bytes, so an input id is never taken for
  a member it merely collides with. :class:`CompactIds` keeps a list of ids (removed,
  missing) the same way.
- ``choose_strategy``: the worth-it rule. Reading costs ``ceil(members / 100)``
  requests and saves one add per input id that is already a member, at most one per input
  id; the membership is read when the reads left after the first page cost at most half
  the input (the full rule is in the function's docstring).
- :class:`SegmentSyncPlan` (a dry run), :class:`SegmentSyncReport` (a run),
  :class:`SegmentSyncProgress` (the ``on_progress`` snapshots), :class:`MembershipChange`
  (what was found changed by someone else meanwhile), :class:`SegmentSyncAbortedError` and
  :func:`partial_sync_report`.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from typing import Final, Literal, overload

import attrs

from ._bulk import BulkAbortedError, BulkFailure, BulkReport

__all__ = [
    "ADD_ONLY",
    "DIFF",
    "MEMBER_PAGE_SIZE",
    "PEEK_LIMIT",
    "READS_IN_FLIGHT",
    "CompactIds",
    "MemberTable",
    "MembershipChange",
    "SegmentSyncAbortedError",
    "SegmentSyncPlan",
    "SegmentSyncProgress",
    "SegmentSyncReport",
    "Strategy",
    "StrategyChoice",
    "choose_strategy",
    "contact_id_of",
    "encode_id",
    "estimate_seconds",
    "format_duration",
    "partial_sync_report",
    "peek_limit",
    "read_requests",
]

Strategy = Literal["diff", "add-only"]
"""How a sync finds what to do: ``"diff"`` reads the whole membership and sends only the
changes; ``"add-only"`` adds every input id (the membership was not worth reading)."""
DIFF: Final = "diff"
ADD_ONLY: Final = "add-only"
MEMBER_PAGE_SIZE: Final = 100
"""Members per membership read: the list endpoint's largest page (``take=100``)."""
READS_IN_FLIGHT: Final = 8
"""Most membership pages fetched at once. At 500 requests a minute a page is due every
0.12 s, so 8 cover round trips of up to a second; more only add memory (a page is ~75 KB and
100 parsed contacts) and, when reading is CPU-bound, slow it down (measured: 300 pages/s
with 64 in flight against a loopback fake, 500 with 8 or 1)."""
PEEK_LIMIT: Final = 100_000
"""Most input ids held back to count an input that has no ``len()`` (about 8 MB)."""

_EMPTY: Final = 0
_FP_SHIFT: Final = 32
_INDEX_MASK: Final = 0xFFFFFFFF
_MAX_ENTRIES: Final = _INDEX_MASK - 1


def contact_id_of(item: object) -> str:
    """The id of an input item: an id string, or anything with a string ``id`` (a contact).

    Raises:
        TypeError: neither.
    """
    if isinstance(item, str):
        return item
    contact_id = getattr(item, "id", None)
    if isinstance(contact_id, str):
        return contact_id
    raise TypeError(f"expected a contact id string, got {type(item).__name__}")


def _fingerprint(contact_id: str) -> int:
    """32 well-mixed bits of ``hash(contact_id)`` (never 0), stable within one process."""
    h = hash(contact_id) & 0xFFFFFFFFFFFFFFFF
    return ((h ^ (h >> 32)) & _INDEX_MASK) or 1


def encode_id(contact_id: str) -> bytes:
    """``contact_id`` as the tables store it: UTF-8, lone surrogates kept."""
    return contact_id.encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- compact ids


class CompactIds(Sequence[str]):
    """A list of ids kept as one UTF-8 blob and an array of end offsets (no str objects).

    About ``len(id) + 4`` bytes an id instead of ~60 for a list of strings. It compares equal
    to any sequence of the same ids (a tuple, a list), so reports read naturally in tests.
    """

    __slots__ = ("_blob", "_ends")

    def __init__(self, ids: Sequence[str] = ()) -> None:
        self._blob = bytearray()
        self._ends = array("I")
        for contact_id in ids:
            self.append(contact_id)

    def append(self, contact_id: str) -> None:
        """Add ``contact_id`` at the end."""
        self._blob += encode_id(contact_id)
        end = len(self._blob)
        if end > _INDEX_MASK and self._ends.typecode == "I":
            self._ends = array("Q", self._ends)  # past 4 GiB of ids: wider offsets
        self._ends.append(end)

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        count = len(self._ends)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("CompactIds index out of range")
        start = self._ends[index - 1] if index else 0
        return self._blob[start : self._ends[index]].decode("utf-8", "surrogatepass")

    def __iter__(self) -> Iterator[str]:
        blob, start = self._blob, 0
        for end in self._ends:
            yield blob[start:end].decode("utf-8", "surrogatepass")
            start = end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(repr(i) for i in self[:3])
        more = f", ... ({len(self):,} ids)" if len(self) > 3 else ""
        return f"CompactIds([{shown}{more}])"

    def nbytes(self) -> int:
        """Bytes held by the blob and the offsets (for memory figures)."""
        return len(self._blob) + self._ends.itemsize * len(self._ends)


# --------------------------------------------------------------------------- member table


class MemberTable:
    """A set of ids with a number per id (the order they were added), stored compactly.

    The ids are one UTF-8 blob cut by an array of end offsets; the index is an
    open-addressing table of 8-byte slots holding a 32-bit fingerprint and the entry number
    (kept at most 3/4 full), so a million ids of 10 characters take about 30 MB. Lookups are
    exact: a fingerprint match is confirmed against the stored bytes.

    A sync keeps its per-member state (seen in the input, found by the verify read) in a
    ``bytearray`` of its own, indexed by the entry number: the table itself only grows while
    the membership is read, so a plan's table can be reused by a later run.

    Attributes:
        complete: True once every page of the membership was read into it (False: only
            the first page, for an add-only sync).
    """

    __slots__ = ("_blob", "_count", "_ends", "_mask", "_slots", "_used", "complete")

    def __init__(self, capacity: int = 64, id_bytes: int = 0) -> None:
        """An empty table with room for ``capacity`` ids of ``id_bytes`` bytes in all.

        Sized right (a sync sizes it from the first page: the member count, the mean id
        length), nothing is ever grown: a grown blob or array is copied, which for a million
        ids briefly doubles the table's memory.
        """
        size = 8
        while size * 3 < capacity * 4:
            size *= 2
        self._slots = array("Q", [0]) * size
        self._mask = size - 1
        self._blob = bytearray(max(id_bytes, 64))
        self._used = 0
        self._ends = array("I", [0]) * max(capacity, 8)
        self._count = 0
        self.complete = False

    def __len__(self) -> int:
        return self._count

    def __contains__(self, contact_id: object) -> bool:
        return isinstance(contact_id, str) and self.find(contact_id) >= 0

    def __iter__(self) -> Iterator[str]:
        blob, start = self._blob, 0
        for index in range(self._count):
            end = self._ends[index]
            yield blob[start:end].decode("utf-8", "surrogatepass")
            start = end

    def id_at(self, index: int) -> str:
        """The id of entry ``index`` (0-based, in the order the ids were added)."""
        if not 0 <= index < self._count:
            raise IndexError("MemberTable index out of range")
        start = self._ends[index - 1] if index else 0
        return self._blob[start : self._ends[index]].decode("utf-8", "surrogatepass")

    def _probe(self, contact_id: str, data: bytes) -> tuple[int, int]:
        """(entry number or -1, the slot where it is or would go)."""
        fp = _fingerprint(contact_id)
        slots, mask, blob, ends = self._slots, self._mask, self._blob, self._ends
        size = len(data)
        i = fp & mask
        while found := slots[i]:
            if found >> _FP_SHIFT == fp:
                index = (found & _INDEX_MASK) - 1
                end = ends[index]
                start = ends[index - 1] if index else 0
                if end - start == size and blob.startswith(data, start):
                    return index, i
            i = (i + 1) & mask
        return -1, i

    def find(self, contact_id: str) -> int:
        """The entry number of ``contact_id``, or -1 when it is not in the table."""
        return self._probe(contact_id, encode_id(contact_id))[0]

    def add(self, contact_id: str) -> int:
        """Add ``contact_id``; return its entry number, or -1 when it was there already."""
        data = encode_id(contact_id)
        index, slot = self._probe(contact_id, data)
        if index >= 0:
            return -1
        index = self._count
        if index >= _MAX_ENTRIES:
            raise OverflowError("a MemberTable holds at most 2**32 - 2 ids")
        start = self._used
        end = start + len(data)
        blob = self._blob
        if end > len(blob):  # past the room reserved: double it (amortised, copied once)
            blob.extend(bytes(max(len(blob), len(data))))
        blob[start:end] = data
        self._used = end
        ends = self._ends
        if end > _INDEX_MASK and ends.typecode == "I":
            ends = self._ends = array("Q", ends)
        if index == len(ends):
            ends.extend(array(ends.typecode, [0]) * len(ends))
        ends[index] = end
        self._count = index + 1
        self._slots[slot] = (_fingerprint(contact_id) << _FP_SHIFT) | (index + 1)
        if (index + 1) * 4 > len(self._slots) * 3:
            self._grow()
        return index

    def _grow(self) -> None:
        old = self._slots
        size = len(old) * 2
        self._slots = slots = array("Q", [0]) * size
        self._mask = mask = size - 1
        for value in old:
            if value:
                i = (value >> _FP_SHIFT) & mask
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = value

    def nbytes(self) -> int:
        """Bytes held by the blob, the offsets and the index, room reserved included."""
        return len(self._blob) + self._ends.itemsize * len(self._ends) + 8 * len(self._slots)


# --------------------------------------------------------------------------- the rule


def read_requests(members: int) -> int:
    """Requests to read a membership of ``members``: one per 100, and one even when empty."""
    return max(1, math.ceil(members / MEMBER_PAGE_SIZE))


@attrs.frozen(kw_only=True)
class StrategyChoice:
    """What ``choose_strategy`` decided, and why (in words for the plan and report)."""

    strategy: Strategy
    reason: str


def choose_strategy(
    members: int | None, inputs: int | None, *, remove_others: bool, at_least: bool = False
) -> StrategyChoice:
    """The worth-it rule: read the whole membership (``"diff"``) or only add (``"add-only"``).

    The first page of the membership is read in any case (it tells the member count ``M`` in
    its ``pagination-count`` header). Reading the rest costs ``ceil(M / 100) - 1`` more
    requests; it saves one add for each input id that is already a member, which is at most
    ``N``, the number of input ids. How many are members is not known before reading, so the
    rule bounds the risk both ways: the rest is read when it costs at most half the input,
    ``2 * (ceil(M / 100) - 1) <= N``. A read that turns out useless then costs at most 50%
    more requests than plain adds; a read of an input that mostly overlaps the segment (a
    re-sync) saves nearly all of its adds. Beyond that (a huge segment, a handful of ids) the
    sync adds every input id (``add-only``), except those it saw on the first page.

    - ``remove_others`` always reads everything: the members to remove must be known.
    - A membership that fits on the first page is known already: ``diff``.
    - ``members`` None (the server sent no ``pagination-count``): ``diff``.
    - An input without ``len()`` is counted by reading ahead as far as the rule needs (see
      :func:`peek_limit`); ``at_least`` says ``inputs`` is only a lower bound. ``inputs``
      None (more than :data:`PEEK_LIMIT` ids, which were not all read ahead): ``diff``,
      assuming a long input re-syncs the segment rather than adding to it.
    """
    if remove_others:
        return StrategyChoice(strategy=DIFF, reason="remove_others needs the whole membership")
    if members is None:
        return StrategyChoice(
            strategy=DIFF, reason="the member count is unknown (no pagination-count header)"
        )
    more = read_requests(members) - 1
    if more == 0:
        return StrategyChoice(
            strategy=DIFF, reason=f"the first page holds the whole membership ({members:,})"
        )
    if inputs is None:
        return StrategyChoice(
            strategy=DIFF,
            reason=(
                f"the input has no len() and more than {PEEK_LIMIT:,} ids: reading "
                f"{members:,} members ({more:,} more requests) is assumed to pay off"
            ),
        )
    if 2 * more <= inputs:
        counted = f"{inputs:,} or more" if at_least else f"{inputs:,}"
        return StrategyChoice(
            strategy=DIFF,
            reason=(
                f"reading {members:,} members costs {more:,} more requests, at most half "
                f"of the {counted} adds it can save"
            ),
        )
    return StrategyChoice(
        strategy=ADD_ONLY,
        reason=(
            f"reading {members:,} members would cost {more:,} more requests, more than half "
            f"of the {inputs:,} adds it could save"
        ),
    )


def peek_limit(members: int | None) -> int:
    """How many input ids to read ahead, when the input has no ``len()``, to count it.

    The rule only needs to know whether ``N >= 2 * (ceil(M / 100) - 1)``: reading that many
    ids (at most :data:`PEEK_LIMIT`) answers it.
    """
    if members is None:
        return 0
    return min(2 * (read_requests(members) - 1), PEEK_LIMIT)


def estimate_seconds(requests: int, rate_per_minute: float | None) -> float | None:
    """Seconds ``requests`` take at ``rate_per_minute`` (None: no rate, no estimate)."""
    if not rate_per_minute:
        return None
    return requests / rate_per_minute * 60


def format_duration(seconds: float) -> str:
    """``45 s``, ``12.5 min``, ``23.5 h``: the unit that keeps the number readable."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------- results


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
        """No add or removal failed, the sync ran to its end, and a verify found nothing."""
        clean = not (self.failed or self.remove_failed or self.cancelled)
        return clean and not (self.missing or self.unexpected or self.verify_error)


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
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SegmentSyncAbortedError) and current.sync_report is not None:
            return current.sync_report
        report = getattr(current, "invent_sync_report", None)
        if isinstance(report, SegmentSyncReport):
            return report
        current = current.__cause__ or current.__context__
    return None
