"""One event loop in a thread of its own, and the blocking calls that wait on it.

:class:`LoopThread` is a daemon thread running ``anyio.run(..., backend="asyncio")`` with a
:class:`~anyio.from_thread.BlockingPortal` inside; it builds its own
:class:`~invent_async.AsyncInventClient` on that loop. A blocking call is a :class:`Waiter`:
the caller schedules its coroutine factory with ``loop.call_soon_threadsafe``; on the loop it
becomes a task that stores its outcome and releases a ``threading.Lock`` the caller blocks on.
That is one wake-up each way. anyio's ``portal.start_task_soon`` costs an extra round trip per
call (it waits for the task to be scheduled, then for its result); measured on the 2-core
reference machine against FakeInvent, it brings the sync/async throughput ratio down from
about 0.79 to 0.59, so calls bypass it. The portal still owns the loop's lifetime.

The lock wait is interruptible: Ctrl-C cancels the task on the loop (aborting the HTTP
request), waits briefly for it to unwind and re-raises :class:`KeyboardInterrupt`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Final, cast

import anyio
import anyio.from_thread

from .._client import AsyncInventClient, abandon
from .._exceptions import ClientClosedError, ClientStateError

__all__ = [
    "ClientFactory",
    "LoopThread",
    "PortalThreadError",
    "Waiter",
    "closed_error",
    "stopped_error",
]

CANCEL_GRACE: Final = 1.0
"""Seconds a Ctrl-C'd call waits for its cancelled task to unwind before re-raising."""

TASK_CANCEL_TIMEOUT: Final = 2.0
"""Seconds the loop-side shutdown waits for cancelled tasks before closing the session."""

ClientFactory = Callable[[], AsyncInventClient]


class PortalThreadError(ClientStateError):
    """The sync client was called from its own event-loop thread, which would deadlock.

    This happens when code the SDK runs on its loop (a callback such as a bulk progress hook)
    calls the blocking client. Use the async API there, or call from another thread.
    """


def closed_error() -> ClientClosedError:
    """The error of a call on a closed sync client."""
    return ClientClosedError(
        "this InventClient is closed; create a new client (or keep using it inside 'with')"
    )


def stopped_error(lt: LoopThread) -> ClientStateError:
    """The error of a call whose loop thread has stopped (closed, or crashed)."""
    if lt.crash is None:
        return closed_error()
    error = ClientStateError(
        f"the InventClient's event-loop thread stopped unexpectedly ({lt.crash!r}); create a "
        "new client"
    )
    error.__cause__ = lt.crash
    return error


class Waiter:
    """One blocking call in flight: its outcome and the lock its caller waits on."""

    __slots__ = ("_lock", "done", "error", "task", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.done = False
        self.value: object = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None

    def finish(self, value: object = None, error: BaseException | None = None) -> None:
        """Store the outcome and wake the caller (first outcome wins)."""
        if not self.done:
            self.done = True
            self.value, self.error = value, error
            self._lock.release()

    def wait(self, lt: LoopThread) -> None:
        """Block until finished; on Ctrl-C cancel the task, wait briefly, re-raise."""
        try:
            self._lock.acquire()
        except BaseException as interrupt:  # KeyboardInterrupt, or a signal handler's error
            with contextlib.suppress(RuntimeError):  # RuntimeError: the loop is closed
                lt.loop.call_soon_threadsafe(lt.cancel, self)
            with contextlib.suppress(BaseException):  # a second Ctrl-C: stop waiting
                self._lock.acquire(timeout=CANCEL_GRACE)
            if self.error is not None and interrupt.__context__ is None:
                # How the task ended, e.g. a bulk job's CancelledError carrying its partial
                # report (``partial_report(exc)`` finds it); not shown in the traceback.
                interrupt.__context__ = self.error
                interrupt.__suppress_context__ = True
            raise


class LoopThread:
    """A started event loop: the thread, the portal, the async client and the calls in flight.

    Holds no reference to the runtime that started it, so an unclosed client can be collected.
    """

    def __init__(self, make_client: ClientFactory) -> None:
        self._make_client = make_client
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.ready = False
        self.stopping = False
        self.abandoned = False  # set in a forked child: never touch this loop again
        self.crash: BaseException | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.waiters: set[Waiter] = set()
        self.ident: int | None = None
        self.loop: asyncio.AbstractEventLoop = cast("asyncio.AbstractEventLoop", None)
        self.portal: anyio.from_thread.BlockingPortal | None = None
        self.aclient: AsyncInventClient = cast("AsyncInventClient", None)
        self.thread = threading.Thread(target=self._main, name="invent-sync-loop", daemon=True)

    def launch(self) -> None:
        """Start the thread (then call :meth:`wait_ready`)."""
        self.thread.start()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the loop and the async client are up (raise if they failed to start)."""
        self._ready.result(timeout)
        self.ready = True

    # -- on the loop thread

    def _main(self) -> None:
        try:
            anyio.run(self._serve, backend="asyncio")
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            self.crash = exc  # reported by the next call instead of dying silently
        finally:
            self.stopping = True
            error = closed_error()
            for waiter in list(self.waiters):  # scheduled too late to run: fail them
                waiter.finish(error=error)

    async def _serve(self) -> None:
        async with anyio.from_thread.BlockingPortal() as portal:
            self.loop = asyncio.get_running_loop()
            self.ident = threading.get_ident()
            self.portal = portal
            self.aclient = self._make_client()
            self._ready.set_result(None)
            await portal.sleep_until_stopped()

    def spawn(
        self, waiter: Waiter, factory: Callable[[], Awaitable[object]], ctx: contextvars.Context
    ) -> None:
        """Loop side of a call: run ``factory()`` as a task in the caller's context."""
        if self.stopping:
            waiter.finish(error=closed_error())
            return
        task = self.loop.create_task(self._run(waiter, factory), context=ctx)
        waiter.task = task
        self.tasks.add(task)

    async def _run(self, waiter: Waiter, factory: Callable[[], Awaitable[object]]) -> None:
        try:
            waiter.finish(await factory())
        except BaseException as exc:  # everything crosses back to the caller, as is
            waiter.finish(error=exc)
        finally:
            self.tasks.discard(cast("asyncio.Task[None]", waiter.task))

    def cancel(self, waiter: Waiter) -> None:
        """Loop side of Ctrl-C: cancel the waiter's task (scheduled after its spawn)."""
        if waiter.task is not None:
            waiter.task.cancel()

    def spawn_background(self, factory: Callable[[], Awaitable[object]]) -> None:
        """Run ``factory()`` on the loop, nobody waiting; errors are dropped (cleanup work)."""
        if not self.stopping:
            task = self.loop.create_task(self._quietly(factory))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    @staticmethod
    async def _quietly(factory: Callable[[], Awaitable[object]]) -> None:
        with contextlib.suppress(BaseException):  # best-effort cleanup, nobody to tell
            await factory()

    async def shutdown(self) -> None:
        """Cancel calls in flight, close the async client, stop the portal (ends the loop)."""
        self.stopping = True
        tasks = [task for task in self.tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=TASK_CANCEL_TIMEOUT)
        try:
            await self.aclient.aclose()
        finally:
            assert self.portal is not None
            await self.portal.stop()

    # -- from any thread

    def stop(self, timeout: float) -> None:
        """Shut down and join, waiting at most about ``timeout`` seconds (never raises).

        With ``timeout=0``, or from the loop thread itself, the shutdown runs in the
        background. When it does not finish in time, the async client's unclosed-client
        warning is switched off: the process is giving up on it.
        """
        done = threading.Event()
        try:
            self.loop.call_soon_threadsafe(self._spawn_shutdown, done)
        except RuntimeError:  # loop already closed
            return
        if timeout <= 0 or threading.get_ident() == self.ident:
            return
        if done.wait(timeout):
            self.thread.join(timeout)
        elif self.aclient is not None:
            abandon(self.aclient)

    def _spawn_shutdown(self, done: threading.Event) -> None:
        async def shutdown() -> None:
            try:
                await self.shutdown()
            finally:
                done.set()

        self.stopping = True
        self.loop.create_task(shutdown())

    def abandon(self) -> None:
        """In a forked child: forget this loop without closing or touching anything."""
        self.abandoned = True
        self.stopping = True
        if self.aclient is not None:
            abandon(self.aclient)
        _ABANDONED.append(self)  # keep the parent's objects alive: their finalizers would
        # close sockets and loops the parent still uses, or warn about them


_ABANDONED: list[LoopThread] = []
"""Loops inherited from the parent process over a fork, kept alive and never used."""
