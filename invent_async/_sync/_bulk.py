"""Blocking bulk streams: :class:`SyncBulkStream`, the sync twin of ``BulkStream``.

``client.contacts.stream_add_segment(...)`` on the sync client returns one. The job itself
(workers, rate governor, journal) runs on the client's event loop exactly as in the async
client; this module only hands its results to blocking code, one per hop.
"""

from __future__ import annotations

from collections.abc import Callable

from .._bulk import BulkReport, BulkStream, ItemResult
from ._runtime import Bridge, SyncIterator

__all__ = ["SyncBulkStream"]


async def _make(factory: Callable[[], BulkStream]) -> BulkStream:
    return factory()


async def _report(stream: BulkStream) -> BulkReport:
    return stream.report


class SyncBulkStream(SyncIterator[ItemResult]):
    """Runs a bulk job on the client's loop; iterate it for each item's :class:`ItemResult`.

    Use it as a context manager so that leaving early stops the job::

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
