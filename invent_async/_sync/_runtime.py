"""The machinery under the sync client: one event-loop thread per client, and the bridges.

What lives here (and nothing else):

- :class:`Runtime`: one per :class:`~invent_async.InventClient` (shared by its views). On first
  use it starts a daemon thread that runs ``anyio.run(..., backend="asyncio")`` with a
  :class:`~anyio.from_thread.BlockingPortal` inside, and builds the client's *own*
  :class:`~invent_async.AsyncInventClient` on that loop. The thread lives until ``close()``
  (or the atexit hook, or garbage collection of an unclosed client). A forked child drops the
  parent's thread, loop and session without touching them and starts its own on next use.
- :class:`Bridge`: what a generated sync resource holds: the runtime plus the steps that turn
  the root async client into a view (``for_org``/``with_options``), re-applied after a fork.
- :class:`SyncIterator` and :class:`SyncContextManager`: an async iterator / async context
  manager living on the loop, driven from blocking code one hop at a time.

How a call crosses threads. The caller schedules the coroutine factory with
``loop.call_soon_threadsafe``; on the loop it becomes a task that stores its outcome and
releases a ``threading.Lock`` the caller blocks on. That is one wake-up each way. anyio's
``portal.start_task_soon`` costs an extra round trip per call (it waits for the task to be
scheduled, then for its result); measured on the 2-core reference machine against FakeInvent,
it brings the sync/async throughput ratio down from about 0.79 to 0.59, below the 0.7 target,
so calls bypass it. The portal still owns the loop's lifetime. The lock wait is interruptible:
Ctrl-C cancels the task on the loop (aborting the HTTP request), waits briefly for it to
unwind and re-raises :class:`KeyboardInterrupt`; the client stays usable.

Errors cross unchanged (the same SDK exception objects); their tracebacks are trimmed of
asyncio, anyio, concurrent.futures, threading and this module's frames.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import os
import threading
import types
import warnings
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Final, Generic, Protocol, Self, TypeVar, cast

import anyio
import anyio.from_thread

from .._client import AsyncInventClient
from .._exceptions import ClientClosedError, ClientStateError

__all__ = [
    "Bridge",
    "for_loop",
    "PortalThreadError",
    "Runtime",
    "SyncContextManager",
    "SyncIterator",
]

T = TypeVar("T")
U = TypeVar("U")

CANCEL_GRACE: Final = 1.0
"""Seconds a Ctrl-C'd call waits for its cancelled task to unwind before re-raising."""

CLOSE_TIMEOUT: Final = 5.0
"""Seconds ``close()`` waits for in-flight work to be cancelled and the session closed."""

EXIT_TIMEOUT: Final = 1.0
"""Seconds the atexit hook gives each unclosed client to shut down."""

TASK_CANCEL_TIMEOUT: Final = 2.0
"""Seconds the loop-side shutdown waits for cancelled tasks before closing the session."""

ClientFactory = Callable[[], AsyncInventClient]
ViewStep = Callable[[AsyncInventClient], AsyncInventClient]


class PortalThreadError(ClientStateError):
    """The sync client was called from its own event-loop thread, which would deadlock.

    This happens when code the SDK runs on its loop (a callback such as a bulk progress hook)
    calls the blocking client. Use the async API there, or call from another thread.
    """


def _closed_error() -> ClientClosedError:
    return ClientClosedError(
        "this InventClient is closed; create a new client (or keep using it inside 'with')"
    )


def _stopped_error(lt: _LoopThread) -> ClientStateError:
    if lt.crash is None:
        return _closed_error()
    error = ClientStateError(
        f"the InventClient's event-loop thread stopped unexpectedly ({lt.crash!r}); create a "
        "new client"
    )
    error.__cause__ = lt.crash
    return error


# ---------------------------------------------------------------------- the loop thread


class _Waiter:
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

    def wait(self, lt: _LoopThread) -> None:
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


class _LoopThread:
    """A started event loop: the thread, the portal, the async client and the calls in flight.

    Holds no reference to its :class:`Runtime`, so an unclosed client can be collected.
    """

    def __init__(self, make_client: ClientFactory) -> None:
        self._make_client = make_client
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.ready = False
        self.stopping = False
        self.abandoned = False  # set in a forked child: never touch this loop again
        self.crash: BaseException | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.waiters: set[_Waiter] = set()
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
            error = _closed_error()
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
        self, waiter: _Waiter, factory: Callable[[], Awaitable[object]], ctx: contextvars.Context
    ) -> None:
        """Loop side of a call: run ``factory()`` as a task in the caller's context."""
        if self.stopping:
            waiter.finish(error=_closed_error())
            return
        task = self.loop.create_task(self._run(waiter, factory), context=ctx)
        waiter.task = task
        self.tasks.add(task)

    async def _run(self, waiter: _Waiter, factory: Callable[[], Awaitable[object]]) -> None:
        try:
            waiter.finish(await factory())
        except BaseException as exc:  # everything crosses back to the caller, as is
            waiter.finish(error=exc)
        finally:
            self.tasks.discard(cast("asyncio.Task[None]", waiter.task))

    def cancel(self, waiter: _Waiter) -> None:
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
        background. When it does not finish in time, the async client's unclosed-session
        warning is switched off: the process is giving up on it.
        """
        done = threading.Event()
        try:
            self.loop.call_soon_threadsafe(self.spawn_shutdown, done)
        except RuntimeError:  # loop already closed
            return
        if timeout <= 0 or threading.get_ident() == self.ident:
            return
        if done.wait(timeout):
            self.thread.join(timeout)
        else:
            _silence(self.aclient)

    def spawn_shutdown(self, done: threading.Event) -> None:
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
        _silence(self.aclient)
        _ABANDONED.append(self)  # keep the parent's objects alive: their finalizers would
        # close sockets and loops the parent still uses, or warn about them


def _silence(aclient: AsyncInventClient | None) -> None:
    """Switch off the async client's unclosed-session warning (we are giving up on it)."""
    if aclient is not None:
        aclient._transport._finalizer.detach()


_ABANDONED: list[_LoopThread] = []
"""Loops inherited from the parent process over a fork, kept alive and never used."""


# ---------------------------------------------------------------------- the runtime


class _Holder:
    """The runtime's mutable state, shared with its GC finalizer (which must not hold it)."""

    __slots__ = ("closed", "lt")

    def __init__(self) -> None:
        self.lt: _LoopThread | None = None
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
        _RUNTIMES.add(self)
        _register_atexit_once()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._holder.closed

    def current(self) -> _LoopThread:
        """The running loop thread, started now if needed (ClientClosedError once closed)."""
        lt = self._holder.lt
        if lt is not None and lt.ready:
            return lt
        with self._lock:
            if self._holder.closed:
                raise _closed_error()
            lt = self._holder.lt
            if lt is None:
                lt = self._holder.lt = _LoopThread(self._make_client)
                lt.launch()
            try:
                lt.wait_ready()  # a Ctrl-C here leaves the thread starting for the next call
            except Exception:
                self._holder.lt = None  # it failed to start: try again next time
                raise
            return lt

    def call(self, factory: Callable[[], Awaitable[T]], lt: _LoopThread | None = None) -> T:
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
        waiter = _Waiter()
        waiters = lt.waiters
        waiters.add(waiter)
        try:
            try:
                lt.loop.call_soon_threadsafe(lt.spawn, waiter, factory, contextvars.copy_context())
            except RuntimeError:  # the loop closed under us
                waiter.finish(error=_stopped_error(lt))
            waiter.wait(lt)
        finally:
            waiters.discard(waiter)
        error = waiter.error
        if error is None:
            return cast("T", waiter.value)
        waiter.error = None
        if isinstance(error, asyncio.CancelledError) and lt.stopping:
            raise _closed_error() from None
        raise error.with_traceback(_trim(error))  # raised on the client's event loop:

    def close_iterator_soon(self, lt: _LoopThread, ait: AsyncIterator[object]) -> None:
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
        _RUNTIMES.discard(self)
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


_RUNTIMES: weakref.WeakSet[Runtime] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    """atexit: close clients still open, briefly and silently, so exit never hangs."""
    for runtime in list(_RUNTIMES):
        with contextlib.suppress(BaseException):  # nothing may be printed at exit
            runtime.close(timeout=EXIT_TIMEOUT)


def _after_fork_in_child() -> None:
    for runtime in list(_RUNTIMES):
        runtime.after_fork_in_child()


_atexit_registered = False


def _register_atexit_once() -> None:
    # Called after the first weakref.finalize exists, so weakref's own atexit hook (which
    # would warn about the async client's open session) is older and runs after this one.
    global _atexit_registered
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(_close_all_at_exit)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------------- the bridges


class _Call(Protocol):
    def __call__(self, factory: Callable[[], Awaitable[T]], /) -> T: ...


class Bridge:
    """How a sync resource reaches its async twin: a runtime and the view steps to apply.

    The async client (view) is derived lazily from the runtime's current root client and
    cached per loop thread, so a rebuilt loop (after a fork) gets a rebuilt view.
    """

    __slots__ = ("_cache", "_steps", "call", "runtime")

    call: _Call
    """Run a coroutine factory on the loop and block for its result (:meth:`Runtime.call`)."""

    def __init__(self, runtime: Runtime, steps: tuple[ViewStep, ...] = ()) -> None:
        self.runtime = runtime
        self.call = runtime.call  # bound once: one frame less in every traceback
        self._steps = steps
        self._cache: tuple[_LoopThread, AsyncInventClient] | None = None

    def derive(self, step: ViewStep) -> Bridge:
        """A bridge to a view of this bridge's client (same runtime)."""
        return Bridge(self.runtime, (*self._steps, step))

    def async_client(self) -> AsyncInventClient:
        """The async client (or view) calls go to, on the runtime's current loop."""
        lt = self.runtime.current()
        cache = self._cache
        if cache is not None and cache[0] is lt:
            return cache[1]
        client = lt.aclient
        for step in self._steps:
            client = step(client)
        self._cache = (lt, client)
        return client

    def iterate(self, factory: Callable[[], AsyncIterable[T]]) -> SyncIterator[T]:
        """Create the async iterable on the loop now; iterate it from blocking code."""
        lt = self.runtime.current()
        ait = self.runtime.call(lambda: _open(factory), lt)
        return SyncIterator(self.runtime, lt, ait)

    def enter(
        self, factory: Callable[[], AbstractAsyncContextManager[T]]
    ) -> SyncContextManager[T, T]:
        """A context manager entering and exiting ``factory()`` on the loop."""
        return SyncContextManager(self.runtime, factory, _identity)

    def enter_iterator(
        self, factory: Callable[[], AbstractAsyncContextManager[AsyncIterable[T]]]
    ) -> SyncContextManager[AsyncIterable[T], SyncIterator[T]]:
        """Like :meth:`enter`, for a context manager whose value is an async iterable."""
        runtime = self.runtime

        def convert(lt: _LoopThread, value: AsyncIterable[T]) -> SyncIterator[T]:
            return SyncIterator(runtime, lt, aiter(value))

        return SyncContextManager(runtime, factory, convert)


def for_loop(value: T) -> T:
    """``value`` as code on the client's loop should see it: a sync :class:`Pager` becomes its
    async pager (a blocking iterator cannot be consumed on the loop); anything else as is.

    The generated methods apply it to arguments that accept an ``AsyncIterable``, so that, for
    example, ``contacts.bulk_add_segment(contacts.list(...), ...)`` works from sync code.
    """
    to_async = getattr(value, "_for_loop", None)
    return cast("T", to_async()) if to_async is not None else value


async def _open(factory: Callable[[], AsyncIterable[T]]) -> AsyncIterator[T]:
    return aiter(factory())


def _identity(_: _LoopThread, value: T) -> T:
    return value


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

    def __init__(self, runtime: Runtime, lt: _LoopThread, ait: AsyncIterator[T]) -> None:
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


class SyncContextManager(Generic[U, T]):
    """A blocking context manager around an async one that lives on the client's loop."""

    __slots__ = ("_acm", "_convert", "_factory", "_lt", "_runtime")

    def __init__(
        self,
        runtime: Runtime,
        factory: Callable[[], AbstractAsyncContextManager[U]],
        convert: Callable[[_LoopThread, U], T],
    ) -> None:
        self._runtime = runtime
        self._factory = factory
        self._convert = convert
        self._acm: AbstractAsyncContextManager[U] | None = None
        self._lt: _LoopThread | None = None

    def __enter__(self) -> T:
        if self._acm is not None:
            raise RuntimeError("this context manager is already entered")
        lt = self._runtime.current()
        factory = self._factory

        async def enter() -> tuple[AbstractAsyncContextManager[U], U]:
            acm = factory()
            return acm, await acm.__aenter__()

        acm, value = self._runtime.call(enter, lt)
        self._acm, self._lt = acm, lt
        return self._convert(lt, value)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool | None:
        acm, lt = self._acm, self._lt
        self._acm = self._lt = None
        if acm is None or lt is None:
            return None
        return self._runtime.call(lambda: acm.__aexit__(exc_type, exc, tb), lt)


# ---------------------------------------------------------------------- tracebacks


def _module_dir(module: types.ModuleType) -> str:
    return str(Path(cast("str", module.__file__)).parent) + os.sep


_INTERNAL_DIRS: Final = (_module_dir(asyncio), _module_dir(anyio), _module_dir(concurrent.futures))
_INTERNAL_FILES: Final = frozenset({threading.__file__, __file__})


def _is_internal(tb: types.TracebackType) -> bool:
    filename = tb.tb_frame.f_code.co_filename
    return filename in _INTERNAL_FILES or filename.startswith(_INTERNAL_DIRS)


def _trim(error: BaseException) -> types.TracebackType | None:
    """``error``'s traceback without bridge internals (its chained errors are trimmed too)."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        if exc is not error:
            exc.__traceback__ = _trimmed(exc.__traceback__)
        todo.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
        if isinstance(exc, BaseExceptionGroup):
            todo.extend(exc.exceptions)
    return _trimmed(error.__traceback__)


def _trimmed(tb: types.TracebackType | None) -> types.TracebackType | None:
    entries: list[types.TracebackType] = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    if not any(_is_internal(entry) for entry in entries):
        return entries[0] if entries else None
    keep = [e for e in entries[:-1] if not _is_internal(e)] + entries[-1:]  # keep the raiser
    rebuilt: types.TracebackType | None = None
    for entry in reversed(keep):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt
