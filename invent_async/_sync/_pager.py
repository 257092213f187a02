"""Blocking pagination: :class:`Pager`, the sync twin of :class:`~invent_async.AsyncPager`.

A list method of the sync client returns a :class:`Pager` at once (arguments are checked, no
request is made). Iterating it walks every item of every page, fetching one page per hop to
the client's event loop; ``pages()`` iterates :class:`~invent_async.Page` objects;
``first_page()`` and ``collect()`` are one blocking call each. The async pager itself lives on
the loop; this module only drives it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Self, TypeVar, cast

from .._pagination import AsyncPager, Page
from ._bridge import Bridge, SyncIterator

__all__ = ["ItemIterator", "Pager", "for_loop"]

T = TypeVar("T")


class Pager(Generic[T]):
    """The result of a list method: iterable over items across every page.

    Nothing is requested until you iterate, and each ``for`` loop starts again at the first
    page. Leaving a loop early (``break``) closes the underlying async pager: no further page
    is requested.
    """

    __slots__ = ("_bridge", "_factory", "_repr")

    def __init__(self, bridge: Bridge, factory: Callable[[], AsyncPager[T]]) -> None:
        self._bridge = bridge
        self._factory = factory
        # Building it checks the arguments now, like the async list method. The repr is kept:
        # it must not fail later (a closed client), or a traceback with locals would.
        self._repr = repr(factory()).replace("AsyncPager", "Pager", 1)

    def _pager(self) -> AsyncPager[T]:
        # A fresh async pager per use: cheap (no I/O), and bound to the current loop's client
        # (which is a new one in a forked child).
        return self._factory()

    def __repr__(self) -> str:
        return getattr(self, "_repr", "<Pager>")  # "<Pager>" if its constructor raised

    def __iter__(self) -> ItemIterator[T]:
        return ItemIterator(self.pages())

    def pages(self) -> SyncIterator[Page[T]]:
        """Iterate page by page (each :class:`Page` has the items and the header values)."""
        return self._bridge.iterate(lambda: self._pager().pages())

    def first_page(self) -> Page[T]:
        """Fetch only the first requested page."""
        return self._bridge.call(lambda: self._pager().first_page())

    def collect(self) -> list[T]:
        """Fetch every page and return all items in one list (memory grows with the result)."""
        return self._bridge.call(lambda: self._pager().collect())


class ItemIterator(Generic[T]):
    """Iterates items, fetching the next page (one hop to the loop) when a page is used up.

    ``close()``, leaving a ``with`` block or dropping the iterator closes the page iterator.
    """

    __slots__ = ("_buffer", "_index", "_pages")

    def __init__(self, pages: SyncIterator[Page[T]]) -> None:
        self._pages = pages
        self._buffer: tuple[T, ...] = ()
        self._index = 0

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        while self._index >= len(self._buffer):
            page = next(self._pages)  # StopIteration ends the walk
            self._buffer, self._index = page.items, 0
        item = self._buffer[self._index]
        self._index += 1
        return item

    def close(self) -> None:
        """Stop iterating and close the page iterator (idempotent)."""
        self._buffer, self._index = (), 0
        self._pages.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def for_loop(value: T) -> T:
    """``value`` as code on the client's loop should see it: a sync :class:`Pager` becomes its
    async pager (a blocking iterator cannot be consumed on the loop); anything else as is.

    The generated methods apply it to arguments that accept an ``AsyncIterable``, so that, for
    example, ``contacts.bulk_add_segment(contacts.list(...), ...)`` works from sync code.
    """
    if isinstance(value, Pager):
        return cast("T", value._pager())  # a fresh async pager on the current loop's client
    return value
