"""The input of a job: ids or contacts from any iterable or async iterable, read lazily, once.

:class:`IdReader` is what the bulk engine's workers pull from and what segment sync streams
through its classification: a list, a generator, a file being read, a ``contacts.list()``
pager. Its ``total`` is the input's ``len()`` when it has one (or the count the caller gives);
:meth:`IdReader.count_up_to` reads a bounded number of items ahead to count an input that has
none (segment sync's worth-it rule), and hands them out first afterwards.
``contact_id_of`` turns an item into its id.

:meth:`IdReader.next_batch` hands out many items at once, for a consumer that works in
batches (segment sync's classification): a list or a generator is sliced, and an async source
that has a ``next_batch()`` coroutine of its own (the CLI's file reader) hands over what it
has read; any other async source gives one item at a time, as it comes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from itertools import islice
from typing import Final

from .._models import Contact

__all__ = ["BATCH", "END", "BatchedIds", "IdReader", "IdSource", "contact_id_of"]

IdSource = Iterable[str | Contact] | AsyncIterable[str | Contact]
"""What a job reads: ids, or contacts (their ``id`` is used), from any (async) iterable."""
END: Final = object()
"""What :meth:`IdReader.next` returns once the input is exhausted."""
BATCH: Final = 4096
"""Most items :meth:`IdReader.next_batch` hands out at once."""


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


class BatchedIds:
    """An async iterable of ids made by a coroutine that returns them in lists (an empty list
    at the end), with the ``next_batch()`` that :class:`IdReader` and the bulk engine take
    whole: segment sync hands its adds to the engine this way, a classified batch at a time.
    """

    __slots__ = ("_at", "_batch", "next_batch")

    def __init__(self, next_batch: Callable[[], Awaitable[list[str]]]) -> None:
        self.next_batch = next_batch
        self._batch: list[str] = []
        self._at = 0

    def __aiter__(self) -> BatchedIds:
        return self

    async def __anext__(self) -> str:
        if self._at >= len(self._batch):
            self._batch, self._at = await self.next_batch(), 0
            if not self._batch:
                raise StopAsyncIteration
        self._at += 1
        return self._batch[self._at - 1]


class IdReader:
    """One pass over a job's input; the first items may be read ahead to count them.

    Args:
        source: The ids or contacts: an iterable or an async iterable (not a single string).
        total: The number of items when the caller knows it (default: the input's ``len()``,
            or None when it has none).

    Attributes:
        total: The number of items, when known (also once :meth:`count_up_to` reached the end).
        is_async: Whether items come from an async iterable (then one consumer at a time).
        batched: Whether they come from an async source that hands out lists of them
            (``next_batch()``); known once :meth:`open` has run.

    Raises:
        TypeError: ``source`` is a string, or not iterable.
    """

    __slots__ = (
        "_ahead",
        "_async",
        "_batches",
        "_ended",
        "_failed",
        "_source",
        "_sync",
        "batched",
        "is_async",
        "total",
    )

    def __init__(self, source: IdSource, total: int | None = None) -> None:
        if isinstance(source, str | bytes):
            raise TypeError("contact_ids must be an iterable of ids, not a single string")
        if not isinstance(source, Iterable | AsyncIterable):
            raise TypeError("contact_ids must be an iterable or an async iterable of ids")
        self._source = source
        self.is_async = isinstance(source, AsyncIterable)
        self._sync: Iterator[object] | None = None
        self._async: AsyncIterator[object] | None = None
        self._ahead: deque[object] = deque()
        self._ended = False
        self._batches: Callable[[], Awaitable[list[object]]] | None = None
        self._failed: BaseException | None = None  # raised by the next next_batch()
        self.batched = False
        if total is None:
            try:
                total = len(source)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total: int | None = total

    def open(self) -> None:
        """Start the iteration (``iter()`` or ``aiter()`` of the source), if not yet done."""
        if self._sync is None and self._async is None:
            if isinstance(self._source, AsyncIterable):  # (narrows the type: is_async)
                self._async = aiter(self._source)
                self._batches = getattr(self._async, "next_batch", None)
                self.batched = self._batches is not None
            else:
                self._sync = iter(self._source)

    async def next(self) -> object:
        """The next item (first those read ahead), or :data:`END`."""
        if self._ahead:
            return self._ahead.popleft()
        return await self._pull()

    def next_now(self) -> object:
        """:meth:`next` of an input that is not async, without a coroutine (the bulk engine's
        workers call it for every item)."""
        if self._ahead or self._sync is None or self._ended:
            return self._ahead.popleft() if self._ahead else self._pull_now()
        try:
            return next(self._sync)
        except StopIteration:
            self._ended = True
            return END

    async def next_batch(self, limit: int = BATCH) -> list[object]:
        """The next items, at most ``limit`` (first those read ahead), in order; an empty list
        once the input is exhausted.

        An exception of the source is raised after the items read before it were handed out
        (by this call, then by the next one).
        """
        ahead = self._ahead
        if ahead:
            return [ahead.popleft() for _ in range(min(limit, len(ahead)))]
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed
        if self._ended:
            return []
        self.open()
        if self._sync is not None:
            batch: list[object] = []
            try:
                batch.extend(islice(self._sync, limit))
            except BaseException as exc:
                if not batch:
                    raise
                self._failed = exc
                return batch
            if len(batch) < limit:
                self._ended = True
            return batch
        if self._batches is not None:
            batch = await self._batches()
            if not batch:
                self._ended = True
            return batch
        item = await self._pull()
        return [] if item is END else [item]

    async def count_up_to(self, limit: int) -> int | None:
        """Read ahead until the input ends (return its length, now :attr:`total`) or
        ``limit`` items are held (return None: at least that many)."""
        ahead = self._ahead
        while len(ahead) < limit:
            item = await self._pull()
            if item is END:
                self.total = len(ahead)
                return self.total
            ahead.append(item)
        return None

    async def _pull(self) -> object:
        """The next item of the source itself, or :data:`END` (for good, once it ended)."""
        if self._ended:
            return END
        self.open()
        if self._async is None:
            return self._pull_now()
        try:
            return await anext(self._async)
        except StopAsyncIteration:
            self._ended = True
            return END

    def _pull_now(self) -> object:
        """:meth:`_pull` of an input that is not async."""
        if self._ended:
            return END
        if self._sync is None:
            self.open()
            assert self._sync is not None
        try:
            return next(self._sync)
        except StopIteration:
            self._ended = True
            return END
