"""How sync objects reach their async twins on the client's loop: bridges and iterators.

- :class:`Bridge`: what a generated sync resource holds: the runtime, and the settings of the
  view it belongs to. The async client (or view) is derived lazily from the runtime's current
  root client and cached per loop thread, so a rebuilt loop (after a fork) gets a rebuilt view.
- :class:`SyncIterator`: an async iterator living on the loop, driven from blocking code one
  hop per item; leaving early closes it. :class:`SyncBulkStream` is one over a bulk job's
  results, with the job's report.
"""

from __future__ import annotations

import threading
import types
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final, Generic, Protocol, Self, TypeVar, cast

from .._client import AsyncInventClient, recording_view_of, view_of
from .._jobs.engine import BulkStream
from .._jobs.results import BulkReport, ItemResult
from .._raw import Recorder
from .._settings import Settings
from ._loop import LoopThread, PortalThreadError
from ._runtime import Runtime

__all__ = ["Bridge", "SyncBulkStream", "SyncIterator"]

T = TypeVar("T")


class _Call(Protocol):
    def __call__(self, factory: Callable[[], Awaitable[T]], /) -> T: ...


class Bridge:
    """A runtime, and the settings of the view whose calls go through it (None: the root)."""

    __slots__ = ("_cache", "_recorder", "_settings", "call", "runtime")

    call: _Call
    """Run a coroutine factory on the loop and block for its result (:meth:`Runtime.call`)."""

    def __init__(
        self, runtime: Runtime, settings: Settings | None = None, recorder: Recorder | None = None
    ) -> None:
        self.runtime = runtime
        self.call = runtime.call  # bound once: one frame less in every traceback
        self._settings = settings
        self._recorder = recorder
        self._cache: tuple[LoopThread, AsyncInventClient] | None = None

    def derive(self, settings: Settings) -> Bridge:
        """A bridge to the view of this runtime's client with ``settings`` (recording, if
        this one records)."""
        return Bridge(self.runtime, settings, self._recorder)

    def recording(self, recorder: Recorder) -> Bridge:
        """A bridge to this one's view, recording each call's response (with_raw_response)."""
        return Bridge(self.runtime, self._settings, recorder)

    def async_client(self) -> AsyncInventClient:
        """The async client (or view) calls go to, on the runtime's current loop."""
        lt = self.runtime.current()
        cache = self._cache
        if cache is not None and cache[0] is lt:
            return cache[1]
        client = lt.aclient if self._settings is None else view_of(lt.aclient, self._settings)
        if self._recorder is not None:
            client = recording_view_of(client, self._recorder)
        self._cache = (lt, client)
        return client

    def iterate(self, factory: Callable[[], AsyncIterable[T]]) -> SyncIterator[T]:
        """Create the async iterable on the loop now; iterate it from blocking code."""
        lt = self.runtime.current()
        ait = self.runtime.call(lambda: _open(factory), lt)
        return SyncIterator(self.runtime, lt, ait)


async def _open(factory: Callable[[], AsyncIterable[T]]) -> AsyncIterator[T]:
    return aiter(factory())


class _End:
    """Marks the end of an async iteration crossing back to the blocking side."""


_END: Final = _End()


async def _anext(ait: AsyncIterator[T]) -> T | _End:
    try:
        return await anext(ait)
    except StopAsyncIteration:
        return _END


class SyncIterator(Generic[T]):
    """A blocking iterator over an async iterator that lives on the client's loop.

    Each ``next()`` is one hop to the loop. Leaving early (``break``, an exception, ``close()``,
    leaving a ``with`` block, or dropping the iterator) closes the async iterator, so nothing
    more is fetched. If the async object is also an async context manager, ``with`` enters
    and exits it on the loop. An iterator belongs to the loop it was created on: after the
    client is closed, or in a forked child, it raises instead of iterating.
    """

    __slots__ = ("__weakref__", "_ait", "_entered", "_lt", "_runtime")

    def __init__(self, runtime: Runtime, lt: LoopThread, ait: AsyncIterator[T]) -> None:
        self._runtime = runtime
        self._lt = lt
        self._ait: AsyncIterator[T] | None = ait
        self._entered: AbstractAsyncContextManager[object] | None = None

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        ait = self._ait
        if ait is None:
            raise StopIteration
        if self._lt.ident == threading.get_ident():
            raise PortalThreadError(
                "a blocking iterator of the InventClient was consumed on the client's own "
                "event-loop thread (for example a sync Pager used inside a callback); that "
                "would deadlock. Pass a list, or collect() the pager first."
            )
        item = self._runtime.call(lambda: _anext(ait), self._lt)
        if isinstance(item, _End):
            self._ait = None  # exhausted: nothing left to close
            raise StopIteration
        return item

    def _on_live_loop(self) -> bool:
        """Whether a hop to this iterator's loop can be made from here (and is needed)."""
        lt = self._lt
        return not (lt.stopping or lt.abandoned or lt.ident == threading.get_ident())

    def close(self) -> None:
        """Stop iterating and close the async iterator (idempotent)."""
        ait, self._ait = self._ait, None
        if ait is None or getattr(ait, "aclose", None) is None:
            return
        if self._on_live_loop():
            self._runtime.call(cast("AsyncGenerator[T, None]", ait).aclose, self._lt)
        else:
            self._runtime.close_iterator_soon(self._lt, ait)

    def __enter__(self) -> Self:
        ait = self._ait
        if ait is not None and hasattr(ait, "__aenter__"):
            acm = cast("AbstractAsyncContextManager[object]", ait)
            self._runtime.call(acm.__aenter__, self._lt)
            self._entered = acm
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool | None:
        acm, self._entered = self._entered, None
        if acm is None or not self._on_live_loop():
            self.close()
            return None
        self._ait = None
        return self._runtime.call(lambda: acm.__aexit__(exc_type, exc, tb), self._lt)

    def __del__(self) -> None:
        # No module globals here: this may run while the interpreter shuts down.
        try:
            ait = self._ait
            if ait is not None:
                self._ait = None
                self._runtime.close_iterator_soon(self._lt, ait)
        except BaseException:  # noqa: S110 - a finalizer must not raise
            pass


async def _make(factory: Callable[[], BulkStream]) -> BulkStream:
    return factory()


async def _report(stream: BulkStream) -> BulkReport:
    return stream.report


class SyncBulkStream(SyncIterator[ItemResult]):
    """Runs a bulk job on the client's loop; iterate it for each item's :class:`ItemResult`.

    ``client.contacts.stream_add_segment(...)`` on the sync client returns one. The job itself
    (workers, rate governor, journal) runs on the client's event loop exactly as in the async
    client. Use it as a context manager so that leaving early stops the job::

        with client.contacts.stream_add_segment(ids, "sg_vip") as results:
            for result in results:
                ...

    Nothing starts before the first ``next()``. :attr:`report` is the report so far.
    """

    __slots__ = ("_stream",)

    _stream: BulkStream

    @classmethod
    def open(cls, bridge: Bridge, factory: Callable[[], BulkStream]) -> SyncBulkStream:
        """Create the async stream on the loop (its arguments are checked now)."""
        lt = bridge.runtime.current()
        stream = bridge.runtime.call(lambda: _make(factory), lt)
        opened = cls(bridge.runtime, lt, stream)
        opened._stream = stream
        return opened

    @property
    def report(self) -> BulkReport:
        """The report so far (final once the iteration has ended or the stream was closed)."""
        stream = self._stream
        if not self._on_live_loop():
            return stream.report  # the loop is gone: nothing changes it any more
        return self._runtime.call(lambda: _report(stream), self._lt)
