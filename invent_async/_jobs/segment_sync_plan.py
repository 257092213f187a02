"""Segment sync's plan, without I/O: the snapshot, the worth-it rule, one input id's verdict.

``contacts.sync_segment`` makes a segment hold a list of contacts while sending as few
requests as it can: it reads the segment's membership (100 members a request), adds only the
input ids that are not members and, with ``remove_others``, removes the members that are not
in the input. Everything here is synchronous and I/O-free; the job that sends the requests
is ``segment_sync_job``, the reports are in ``results``.

- :class:`MemberTable`: the member ids as read (the plan's snapshot), compactly: one UTF-8
  blob, an array of end offsets and an index on the jobs' open-addressing core
  (:class:`~.idset.SlotTable`) whose 8-byte slots hold a 32-bit fingerprint and the entry's
  number, about 30 bytes a member for ids of 10 characters. Lookups are exact: a fingerprint
  match is confirmed against the stored bytes, so an input id is never taken for a member it
  merely collides with.
- ``choose_strategy``: the worth-it rule. Reading costs ``ceil(members / 100)``
  requests and saves one add per input id that is already a member, at most one per input
  id; the membership is read when the reads left after the first page cost at most half
  the input (the full rule is in the function's docstring). ``peek_limit``: how far an
  input without ``len()`` is read ahead to count it. ``estimate_seconds``,
  ``format_duration``, ``plan_requests``: the plan's arithmetic.
- :class:`InputClassifier`: the verdicts on input ids against the snapshot (a member, a
  duplicate, or an id to add), a batch at a time, the one classification both a run and a
  dry run use; it remembers the members the input matched, so the others are the removals.
"""

from __future__ import annotations

import enum
import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, Literal

import attrs

from .idset import OFFSET_MAX, SlotTable, encode_id, id_at, iter_ids

__all__ = [
    "ADD_ONLY",
    "DIFF",
    "MEMBER_PAGE_SIZE",
    "PEEK_LIMIT",
    "READS_IN_FLIGHT",
    "TO_ADD_MASK",
    "VERDICT_CODES",
    "InputClassifier",
    "InputVerdict",
    "MemberTable",
    "Strategy",
    "StrategyChoice",
    "add_ids",
    "choose_strategy",
    "estimate_seconds",
    "format_duration",
    "new_table",
    "peek_limit",
    "plan_requests",
    "rate_and_eta",
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

_FP_SHIFT: Final = 32
_INDEX_MASK: Final = 0xFFFFFFFF
_MAX_ENTRIES: Final = _INDEX_MASK - 1


def _fingerprint(contact_id: str) -> int:
    """The low 32 bits of ``hash(contact_id)`` (never 0), stable within one process (a
    string's hash is SipHash: its low bits are as well mixed as any)."""
    return (hash(contact_id) & _INDEX_MASK) or 1


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

    __slots__ = ("_blob", "_ends", "_index", "_used", "complete")

    def __init__(self, capacity: int = 64, id_bytes: int = 0) -> None:
        """An empty table with room for ``capacity`` ids of ``id_bytes`` bytes in all.

        Sized right (a sync sizes it from the first page: the member count, the mean id
        length), nothing is ever grown: a grown blob or array is copied, which for a million
        ids briefly doubles the table's memory.
        """
        self._index = SlotTable(capacity, shift=_FP_SHIFT)
        self._blob = bytearray(max(id_bytes, 64))
        self._used = 0
        self._ends = array("I", [0]) * max(capacity, 8)
        self.complete = False

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, contact_id: object) -> bool:
        return isinstance(contact_id, str) and self.find(contact_id) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter_ids(self._blob, self._ends, len(self._index))

    def id_at(self, index: int) -> str:
        """The id of entry ``index`` (0-based, in the order the ids were added)."""
        if not 0 <= index < len(self._index):
            raise IndexError("MemberTable index out of range")
        return id_at(self._blob, self._ends, index)

    def _holds(self, value: int, data: bytes) -> bool:
        """Whether the entry of index slot ``value`` is the id encoded as ``data``."""
        index = (value & _INDEX_MASK) - 1
        ends = self._ends
        end = ends[index]
        start = ends[index - 1] if index else 0
        return end - start == len(data) and self._blob.startswith(data, start)

    def find(self, contact_id: str) -> int:
        """The entry number of ``contact_id``, or -1 when it is not in the table."""
        value = self._index.lookup(_fingerprint(contact_id), self._holds, encode_id(contact_id))[0]
        return (value & _INDEX_MASK) - 1 if value else -1

    def find_each(self, contact_ids: Sequence[str]) -> list[int]:
        """:meth:`find` of each of ``contact_ids`` at once (an id that is no member costs a
        probe of the index, and no call)."""
        if not len(self._index):
            return [-1] * len(contact_ids)
        mask = _INDEX_MASK
        fps = list(map(_fingerprint, contact_ids))
        holds = self._holds

        def same(value: int, position: int) -> bool:
            return holds(value, encode_id(contact_ids[position]))

        return [(value & mask) - 1 for value in self._index.find_each(fps, same)]

    def add(self, contact_id: str) -> int:
        """Add ``contact_id``; return its entry number, or -1 when it was there already."""
        data = encode_id(contact_id)
        fp = _fingerprint(contact_id)
        found, slot = self._index.lookup(fp, self._holds, data)
        if found:
            return -1
        index = len(self._index)
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
        if end > OFFSET_MAX and ends.typecode == "I":
            ends = self._ends = array("Q", ends)
        if index == len(ends):
            ends.extend(array(ends.typecode, [0]) * len(ends))
        ends[index] = end
        self._index.insert(slot, (fp << _FP_SHIFT) | (index + 1))
        return index

    def nbytes(self) -> int:
        """Bytes held by the blob, the offsets and the index, room reserved included."""
        return len(self._blob) + self._ends.itemsize * len(self._ends) + self._index.nbytes()


def new_table(members: int | None, sample: Sequence[str]) -> MemberTable:
    """A table for a membership of ``members`` (None: unknown, or not read in full): sized
    from the count and the mean length of the ``sample`` ids (the first page), with 1/64 to
    spare for members who join, so that nothing is grown (nor copied) while it is read."""
    if members is None or not sample:
        return MemberTable()
    capacity = members + members // 64 + 1
    mean = sum(len(encode_id(i)) for i in sample) / len(sample)
    return MemberTable(capacity, int(capacity * mean * 1.05) + 64)


def add_ids(table: MemberTable, ids: Iterable[str]) -> int:
    """Add ``ids`` (a page of members) to ``table``; return how many were there already."""
    repeats = 0
    for contact_id in ids:
        if table.add(contact_id) < 0:
            repeats += 1
    return repeats


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


def rate_and_eta(done: int, total: int | None, elapsed: float) -> tuple[float, float | None]:
    """Items per second over ``elapsed`` seconds, and the seconds left (None: no total)."""
    rate = done / max(elapsed, 1e-9)
    eta = max(total - done, 0) / rate if total is not None and rate > 0 else None
    return rate, eta


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


# --------------------------------------------------------------------------- one input id


class InputVerdict(enum.Enum):
    """What :meth:`InputClassifier.verdicts` makes of one input id."""

    MEMBER = "member"
    """A member the input had not named yet: unchanged, nothing to send."""
    DUPLICATE = "duplicate"
    """A repeat of an earlier input id (a member's, or, when non-members are kept, any)."""
    TO_ADD = "to-add"
    """Not a member as far as the snapshot tells (an add-only snapshot is the first page):
    to add, unless the bulk engine skips it (a duplicate it saw, or done in the journal)."""


VERDICT_CODES: Final = (InputVerdict.TO_ADD, InputVerdict.MEMBER, InputVerdict.DUPLICATE)
"""The verdict of each code :meth:`InputClassifier.verdicts` gives (0, 1, 2)."""
TO_ADD_MASK: Final = bytes([1, 0, 0]) + bytes(253)
"""``codes.translate(TO_ADD_MASK)``: 1 where a verdict is to add (for ``itertools.compress``)."""


class InputClassifier:
    """The input ids against a membership snapshot: a run and a dry run both ask it.

    Args:
        table: The snapshot (a plan's may be reused: the classifier keeps its own state).
        keep_others: Also keep the input ids that are not members, exactly (a verify read
            needs them); a repeat of one is then a duplicate here, not in the bulk engine.

    Attributes:
        table: The snapshot.
        others: The input ids that are not members (with ``keep_others``), else None.
    """

    __slots__ = ("_matched", "others", "table")

    def __init__(self, table: MemberTable, *, keep_others: bool) -> None:
        self.table = table
        self.others = MemberTable() if keep_others else None
        self._matched = bytearray(len(table))  # 1: an input id named this member

    def verdicts(self, contact_ids: Sequence[str]) -> bytearray:
        """The verdict on each of ``contact_ids``, in order (the first naming of a member
        matches it), as the codes of :data:`VERDICT_CODES`: 0 to add, 1 a member, 2 a
        duplicate. At once: an id costs a probe of the table, and no call of its own."""
        others = self.others
        table = self.table
        codes = bytearray(len(contact_ids))  # 0: to add
        if not len(table) and others is None:  # nothing to look up: every id is to add
            return codes
        matched = self._matched
        for position, index in enumerate(table.find_each(contact_ids)):
            if index >= 0:
                if matched[index]:
                    codes[position] = 2
                else:
                    matched[index] = 1
                    codes[position] = 1
            elif others is not None and others.add(contact_ids[position]) < 0:
                codes[position] = 2
        return codes

    def matched(self, index: int) -> bool:
        """Whether an input id named member ``index`` of the table."""
        return bool(self._matched[index])

    def unmatched_count(self) -> int:
        """How many members no input id named (the removals of an exact sync)."""
        return self._matched.count(0)

    def unmatched(self) -> Iterator[str]:
        """The members no input id named, in table order."""
        table, matched = self.table, self._matched
        for index in range(len(table)):
            if not matched[index]:
                yield table.id_at(index)


def plan_requests(
    *,
    strategy: Strategy,
    members: int,
    to_add: int,
    to_remove: int,
    unchanged: int,
    journal: int,
    verify: bool,
    remove_others: bool,
) -> tuple[int, int, int]:
    """(membership reads, writes, verify reads) that a run of a plan sends.

    A diff reads the whole membership, an add-only sync its first page; one write per add and
    removal; a verify reads the membership the run leaves: with ``remove_others`` the input's
    members (``unchanged``, the adds and what the ``journal`` says was done), else the members
    and the adds.
    """
    reads = read_requests(members) if strategy == DIFF else 1
    verify_reads = 0
    if verify:
        after = unchanged + to_add + journal if remove_others else members + to_add
        verify_reads = read_requests(after)
    return reads, to_add + to_remove, verify_reads
