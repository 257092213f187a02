"""Async pagination: items across every page, one page in memory at a time.

A list method returns an :class:`AsyncPager` without doing any I/O. ``async for item in
pager`` walks every item of every page (a fresh walk each time); ``async for page in
pager.pages()`` gives :class:`Page` objects with the items and the ``pagination-*`` header
values; ``await pager.first_page()`` fetches just one page. The iterators are plain classes, not
async generators, so abandoning one early leaks nothing; ``aclose()`` exists for symmetry with
generators and for the sync bridge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import attrs

from ._protocol import PageInfo, has_next_page, validate_page, validate_take

__all__ = ["AsyncItemIterator", "AsyncPageIterator", "AsyncPager", "Page", "PageFetcher"]

T = TypeVar("T")

PageFetcher = Callable[[int, int], Awaitable[tuple[tuple[T, ...], PageInfo]]]
"""``fetch(page, take)`` -> the page's items and its pagination headers."""


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a list endpoint.

    Attributes:
        items: The items on this page.
        page: The 1-based page number requested.
        take: The page size requested.
        count: Total items across all pages (``pagination-count``), if the server sent it.
        server_page: ``pagination-page`` as sent by the server, if any.
        server_take: ``pagination-take`` as sent by the server, if any.
        has_next: Whether another page follows.
    """

    items: tuple[T, ...]
    page: int
    take: int
    count: int | None
    server_page: int | None
    server_take: int | None
    has_next: bool


class AsyncPageIterator(Generic[T]):
    """Iterates pages, requesting the next one only when asked for it."""

    def __init__(self, fetch: PageFetcher[T], page: int, take: int) -> None:
        self._fetch = fetch
        self._next_page: int | None = page
        self._take = take

    def __aiter__(self) -> AsyncPageIterator[T]:
        return self

    async def __anext__(self) -> Page[T]:
        number = self._next_page
        if number is None:
            raise StopAsyncIteration
        items, info = await self._fetch(number, self._take)
        more = has_next_page(info, number, self._take, len(items))
        self._next_page = number + 1 if more else None
        return Page(
            items=items,
            page=number,
            take=self._take,
            count=info.count,
            server_page=info.page,
            server_take=info.take,
            has_next=more,
        )

    async def aclose(self) -> None:
        """Stop the iteration; later ``__anext__`` calls raise StopAsyncIteration."""
        self._next_page = None


class AsyncItemIterator(Generic[T]):
    """Iterates items, fetching a page whenever the current one is used up."""

    def __init__(self, pages: AsyncPageIterator[T]) -> None:
        self._pages = pages
        self._buffer: tuple[T, ...] = ()
        self._index = 0

    def __aiter__(self) -> AsyncItemIterator[T]:
        return self

    async def __anext__(self) -> T:
        while self._index >= len(self._buffer):
            page = await self._pages.__anext__()  # StopAsyncIteration ends the walk
            self._buffer, self._index = page.items, 0
        item = self._buffer[self._index]
        self._index += 1
        return item

    async def aclose(self) -> None:
        """Stop the iteration and drop the buffered page."""
        self._buffer, self._index = (), 0
        await self._pages.aclose()


class AsyncPager(Generic[T]):
    """The result of a list method: async-iterable over items across every page.

    Nothing is requested until you iterate. Each ``async for`` starts again at the first page.
    """

    def __init__(self, fetch: PageFetcher[T], *, page: int = 1, take: int = 100) -> None:
        self._fetch = fetch
        self._page = validate_page(page)
        self._take = validate_take(take)

    def __repr__(self) -> str:
        page, take = getattr(self, "_page", "?"), getattr(self, "_take", "?")  # half-built too
        return f"<AsyncPager page={page} take={take}>"

    def __aiter__(self) -> AsyncItemIterator[T]:
        return AsyncItemIterator(self.pages())

    def pages(self) -> AsyncPageIterator[T]:
        """Iterate page by page (each :class:`Page` has the items and the header values)."""
        return AsyncPageIterator(self._fetch, self._page, self._take)

    async def first_page(self) -> Page[T]:
        """Fetch only the first requested page."""
        return await self.pages().__anext__()

    async def collect(self) -> list[T]:
        """Fetch every page and return all items in one list (memory grows with the result)."""
        return [item async for item in self]
