"""The jobs' id sets and lists, kept without a ``str`` object per id.

- :class:`SlotTable`: the one open-addressing core: an array of 64-bit slots (0 is empty),
  linear probing from a key's home slot, doubled when more than 3/4 full. A slot's value
  carries its key in the bits from ``shift`` up. The bulk engine's duplicate filter
  (:class:`FingerprintSet`, here) and segment sync's exact member table
  (:class:`~.segment_sync_plan.MemberTable`) both build on it.
- :class:`FingerprintSet`: a set of 64-bit fingerprints of ids, about 16 bytes an id: the
  duplicate filter and the journal's set of done ids. Two ids sharing a fingerprint are taken
  for one (see the class).
- :class:`CompactIds`: a list of ids kept as one UTF-8 blob and an array of end offsets, about
  ``len(id) + 4`` bytes an id (the removed, missing and unexpected ids of a sync report).
- ``encode_id``, ``id_at``, ``iter_ids``: the blob-and-offsets layout that ``CompactIds`` and
  the member table share.

Nothing here does I/O or knows about jobs.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Final, overload

__all__ = [
    "OFFSET_MAX",
    "CompactIds",
    "FingerprintSet",
    "SlotTable",
    "encode_id",
    "id_at",
    "iter_ids",
]

OFFSET_MAX: Final = 0xFFFFFFFF
"""The largest end offset an ``array("I")`` holds; past it (4 GiB of ids) offsets widen."""


def encode_id(contact_id: str) -> bytes:
    """``contact_id`` as the tables store it: UTF-8, lone surrogates kept."""
    return contact_id.encode("utf-8", "surrogatepass")


def id_at(blob: bytes | bytearray, ends: array[int], index: int) -> str:
    """Id number ``index`` of a blob cut by ``ends`` (no bounds check: the caller's)."""
    start = ends[index - 1] if index else 0
    return blob[start : ends[index]].decode("utf-8", "surrogatepass")


def iter_ids(blob: bytes | bytearray, ends: array[int], count: int) -> Iterator[str]:
    """The first ``count`` ids of a blob cut by ``ends``, in order."""
    start = 0
    for index in range(count):
        end = ends[index]
        yield blob[start:end].decode("utf-8", "surrogatepass")
        start = end


# --------------------------------------------------------------------------- the core


class SlotTable:
    """Open addressing over an array of 64-bit slots (``"Q"``, or ``"q"`` for signed values),
    kept at most 3/4 full.

    A slot holds 0 (empty) or a value whose bits from ``shift`` up are its key; a key's home
    slot is ``key & mask`` and a collision probes the next slot. The owner decides what the
    rest of a value means (nothing for fingerprints; an entry number for the member table).
    Nothing is ever removed, so a probe stops at the first empty slot.
    """

    __slots__ = ("_filled", "_mask", "_shift", "_slots")

    def __init__(self, capacity: int, *, shift: int = 0, typecode: str = "Q") -> None:
        """Room for ``capacity`` keys before the first doubling (at least 8 slots)."""
        size = 8
        while size * 3 < capacity * 4:
            size *= 2
        self._slots = array(typecode, [0]) * size
        self._mask = size - 1
        self._shift = shift
        self._filled = 0

    def __len__(self) -> int:
        return self._filled

    def lookup(
        self, key: int, same: Callable[[int, bytes], bool] | None = None, data: bytes = b""
    ) -> tuple[int, int]:
        """(the value stored under ``key``, or 0; its slot, or the empty slot it would take).

        A value is ``key``'s when its bits from ``shift`` up are ``key`` and ``same(value,
        data)`` (when given) confirms it: an exact table compares the stored id there. With
        ``shift`` 0 the value is the key itself (a fingerprint): nothing else is asked.
        """
        slots, mask, shift = self._slots, self._mask, self._shift
        i = key & mask
        if not shift:  # no shift of a 64-bit value per probe: it would make a new int
            while found := slots[i]:
                if found == key:
                    return found, i
                i = (i + 1) & mask
            return 0, i
        while found := slots[i]:
            if found >> shift == key and (same is None or same(found, data)):
                return found, i
            i = (i + 1) & mask
        return 0, i

    def find_each(self, keys: Sequence[int], same: Callable[[int, int], bool]) -> list[int]:
        """:meth:`lookup` of each of ``keys`` at once: the value stored under each (0: none).

        ``same(value, position)`` confirms a value whose key bits match (``position``: the
        key's index in ``keys``); it is asked only on such a match, so a batch of ids that are
        not in the table costs a probe each and no call. Only for a table with a ``shift``.
        """
        slots, mask, shift = self._slots, self._mask, self._shift
        found_values: list[int] = []
        append = found_values.append
        for position, key in enumerate(keys):
            i = key & mask
            while found := slots[i]:
                if found >> shift == key and same(found, position):
                    append(found)
                    break
                i = (i + 1) & mask
            else:
                append(0)
        return found_values

    def insert(self, slot: int, value: int) -> None:
        """Store ``value`` in the empty ``slot`` a :meth:`lookup` returned; double past 3/4."""
        self._slots[slot] = value
        self._filled += 1
        if self._filled * 4 > len(self._slots) * 3:
            self._grow()

    def _grow(self) -> None:
        self._rehash(len(self._slots) * 2)

    def _grow_to(self, count: int) -> None:
        """Double until ``count`` keys fit at most 3/4 full."""
        size = len(self._slots)
        while size * 3 < count * 4:
            size *= 2
        if size != len(self._slots):
            self._rehash(size)

    def _rehash(self, size: int) -> None:
        old = self._slots
        self._slots = slots = array(old.typecode, [0]) * size
        self._mask = mask = size - 1
        shift = self._shift
        for value in old:
            if value:
                i = (value >> shift if shift else value) & mask
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = value

    def nbytes(self) -> int:
        """Bytes held by the slots."""
        return self._slots.itemsize * len(self._slots)


# --------------------------------------------------------------------------- fingerprints


class FingerprintSet(SlotTable):
    """A set of 64-bit fingerprints of strings, about 16 bytes per entry.

    Fingerprints are ``hash(str)`` (stable within one process; 0, which marks an empty slot,
    is taken as 1), kept as signed 64-bit values; two different ids share a
    fingerprint with probability ~N^2/2^65 (about 3e-8 for a million ids), in which case the
    second is reported as a skipped duplicate, never silently dropped.
    """

    __slots__ = ()

    def __init__(self, capacity: int = 1024) -> None:
        super().__init__(capacity, typecode="q")

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self.lookup(hash(key) or 1)[0] != 0

    def add(self, key: str) -> bool:
        """Add ``key``; return False when it (or its fingerprint) was already present."""
        fp = hash(key) or 1
        slots = self._slots
        slot = fp & self._mask
        if slots[slot]:  # not the usual empty home slot: probe
            found, slot = self.lookup(fp)
            if found:
                return False
        slots[slot] = fp  # (insert, inlined)
        self._filled = filled = self._filled + 1
        if filled * 4 > len(slots) * 3:
            self._grow()
        return True

    def add_each(self, keys: Sequence[str]) -> list[int]:
        """:meth:`add` of each of ``keys`` in order, at once; return the positions (in
        ``keys``) of those that were present already (an earlier key of ``keys`` included).

        The common case, a key whose home slot is empty, costs one probe and one store.
        """
        fps = [fp or 1 for fp in map(hash, keys)]
        if self._filled + len(fps) > (len(self._slots) * 3) // 4:  # room for them all first
            self._grow_to(self._filled + len(fps))
        slots, mask = self._slots, self._mask
        present: list[int] = []
        for position, fp in enumerate(fps):
            i = fp & mask
            if not slots[i]:
                slots[i] = fp
                continue
            while found := slots[i]:
                if found == fp:
                    present.append(position)
                    break
                i = (i + 1) & mask
            else:
                slots[i] = fp
        self._filled += len(fps) - len(present)
        return present


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
        if end > OFFSET_MAX and self._ends.typecode == "I":
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
        return id_at(self._blob, self._ends, index)

    def __iter__(self) -> Iterator[str]:
        return iter_ids(self._blob, self._ends, len(self._ends))

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
