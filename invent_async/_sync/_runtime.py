"""The runtime behind one sync client: its event-loop thread, started on first use, and calls.

:class:`Runtime` is shared by an :class:`~invent_async.InventClient` and its views. On first use
it starts a :class:`~._loop.LoopThread`, which builds the client's *own*
:class:`~invent_async.AsyncInventClient` on its loop; the thread lives until ``close()`` (or the
atexit hook, or garbage collection of an unclosed client). :meth:`Runtime.call` runs a coroutine
factory there and blocks for its result: errors cross unchanged (the same SDK exception
objects), their tracebacks trimmed of the bridge's frames. A forked child drops the parent's
thread, loop and session without touching them and starts its own on next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, TypeVar, cast

from .._exceptions import ClientStateError
from .._jobs.results import closed_mid_job
from . import _process
from ._loop import ClientFactory, LoopThread, PortalThreadError, Waiter, closed_error, stopped_error
from ._traceback import trim

__all__ = ["CLOSE_TIMEOUT", "Runtime"]

T = TypeVar("T")

CLOSE_TIMEOUT: Final = 5.0
"""Seconds ``close()`` waits for in-flight work to be cancelled and the session closed."""


class _Holder:
    """The runtime's mutable state, shared with its GC finalizer (which must not hold it)."""

    __slots__ = ("closed", "lt")

    def __init__(self) -> None:
        self.lt: LoopThread | None = None
        self.closed = False


class Runtime:
    """The event-loop thread and async client behind one :class:`~invent_async.InventClient`.

    Thread-safe: any number of threads may call through one runtime at once; each call is its
    own task on the loop. The loop starts on first use, so a client created before a fork
    starts fresh in the child.
    """

    def __init__(self, make_client: ClientFactory) -> None:
        self._make_client = make_client
        self._lock = threading.Lock()
        self._holder = _Holder()
        self._finalizer = weakref.finalize(self, _collect_unclosed, self._holder)
        self._finalizer.atexit = False  # the atexit hook closes what is still open
        _process.register(self)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._holder.closed

    def current(self) -> LoopThread:
        """The running loop thread, started now if needed (ClientClosedError once closed)."""
        lt = self._holder.lt
        if lt is not None and lt.ready:
            return lt
        with self._lock:
            if self._holder.closed:
                raise closed_error()
            lt = self._holder.lt
            if lt is None:
                lt = self._holder.lt = LoopThread(self._make_client)
                lt.launch()
            try:
                lt.wait_ready()  # a Ctrl-C here leaves the thread starting for the next call
            except Exception:
                self._holder.lt = None  # it failed to start: try again next time
                raise
            return lt

    def call(self, factory: Callable[[], Awaitable[T]], lt: LoopThread | None = None) -> T:
        """Run ``factory()`` on the loop and block until it is done; return or raise its result.

        ``lt`` pins the call to one loop (iterators must stay on the loop they live on).
        """
        if lt is None:
            lt = self._holder.lt
            if lt is None or not lt.ready:
                lt = self.current()
        if lt.ident == threading.get_ident():
            raise PortalThreadError(
                "the blocking InventClient was called from its own event-loop thread (for "
                "example from a callback the SDK runs there); that would deadlock. Use the "
                "async API (AsyncInventClient) inside such callbacks, or call the blocking "
                "client from another thread."
            )
        if lt.abandoned:
            raise ClientStateError(
                "this object was created in the parent process before os.fork(); create it "
                "again in the child"
            )
        waiter = Waiter()
        waiters = lt.waiters
        waiters.add(waiter)
        try:
            try:
                lt.loop.call_soon_threadsafe(lt.spawn, waiter, factory, contextvars.copy_context())
            except RuntimeError:  # the loop closed under us
                waiter.finish(error=stopped_error(lt))
            waiter.wait(lt)
        finally:
            waiters.discard(waiter)
        error = waiter.error
        if error is None:
            return cast("T", waiter.value)
        waiter.error = None
        if isinstance(error, asyncio.CancelledError) and lt.stopping:
            closed = closed_error()  # a bulk job or sync ends as on the async client:
            aborted = closed_mid_job(error, closed)  # BulkAbortedError, with its report
            if aborted is None:
                raise closed from None
            raise aborted from closed
        raise error.with_traceback(trim(error))  # raised on the client's event loop:

    def close_iterator_soon(self, lt: LoopThread, ait: AsyncIterator[object]) -> None:
        """Close ``ait`` on its loop without waiting (from ``__del__`` or the loop thread)."""
        aclose = getattr(ait, "aclose", None)
        if aclose is None or lt.abandoned or lt.stopping:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to clean up
            lt.loop.call_soon_threadsafe(lt.spawn_background, aclose)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Cancel calls in flight, close the async client, stop the loop. Idempotent."""
        with self._lock:
            if self._holder.closed:
                return
            self._holder.closed = True
            lt, self._holder.lt = self._holder.lt, None
        self._finalizer.detach()
        _process.unregister(self)
        if lt is None or lt.abandoned:
            return
        if not lt.ready:  # still starting (a Ctrl-C interrupted its start): let it finish
            try:
                lt.wait_ready(timeout)
            except BaseException:  # it failed to start, or is stuck: nothing to stop
                return
        lt.stop(timeout)

    def after_fork_in_child(self) -> None:
        """Drop the parent's loop thread (do not close it); the next call starts a new one."""
        self._lock = threading.Lock()  # another thread may have held it at fork time
        lt, self._holder.lt = self._holder.lt, None
        if lt is not None:
            lt.abandon()


def _collect_unclosed(holder: _Holder) -> None:
    """GC finalizer of an unclosed :class:`Runtime`: warn and stop its loop, without waiting."""
    lt, holder.lt = holder.lt, None
    holder.closed = True
    if lt is None or lt.abandoned or not lt.ready:
        return
    warnings.warn(
        "InventClient was not closed: use 'with InventClient() as client:' or call client.close()",
        ResourceWarning,
        stacklevel=1,
    )
    lt.stop(0)
