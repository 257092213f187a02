"""Lifecycle of the async client: opening, closing, views, event loops, sessions, leaks.

The sync client's lifecycle (portal, threads, fork) is tested with the sync client. Tests that
need a second event loop run it with ``asyncio.run`` in a thread and talk to a
:class:`ThreadedFake`, which lives on a third loop and so is reachable from both.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import anyio.to_thread
import pytest
from _harness import API_KEY, ThreadedFake

from invent_async import (
    AsyncInventClient,
    ClientClosedError,
    ClientStateError,
    Segment,
    WrongEventLoopError,
)
from invent_async.testing import FakeInvent


@pytest.fixture
def threaded_fake() -> Iterator[FakeInvent]:
    with ThreadedFake(api_key=API_KEY) as fake:
        yield fake


class OwnerLoop:
    """Runs ``main`` with ``asyncio.run`` in a thread and keeps that loop alive until
    :meth:`finish`, which runs ``cleanup`` on it; the test's loop meanwhile does its part."""

    def __init__(
        self, main: Callable[[], Awaitable[None]], cleanup: Callable[[], Awaitable[None]]
    ) -> None:
        self._main = main
        self._cleanup = cleanup
        self.ready = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="OwnerLoop", daemon=True)

    def _run(self) -> None:
        async def body() -> None:
            try:
                await self._main()
                self.ready.set()
                await asyncio.to_thread(self.release.wait, 20)
            finally:
                await self._cleanup()

        try:
            asyncio.run(body())
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()

    def start(self) -> None:
        self._thread.start()
        assert self.ready.wait(10), "the owner loop did not get going"
        if self.error is not None:
            raise self.error

    def finish(self) -> None:
        self.release.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the owner loop did not finish"
        if self.error is not None:
            raise self.error


# --------------------------------------------------------------------------- open and close


async def test_async_with_closes_the_client_and_closing_again_is_harmless(
    fake: FakeInvent,
) -> None:
    segment = fake.add_segment("VIP")

    async with AsyncInventClient(API_KEY, base_url=fake.url) as client:
        open_inside = not client.closed
        await client.segments.get(segment.id)

    assert open_inside
    assert client.closed
    await client.aclose()
    await client.aclose()
    assert client.closed


async def test_a_client_never_used_can_be_closed(fake: FakeInvent) -> None:
    client = AsyncInventClient(API_KEY, base_url=fake.url)

    await client.aclose()

    assert client.closed
    assert fake.requests == []


async def test_calls_after_close_raise_client_closed_error(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    segment = fake.add_segment("VIP")
    await client.segments.get(segment.id)
    await client.aclose()

    with pytest.raises(ClientClosedError) as caught:
        await client.segments.get(segment.id)

    assert isinstance(caught.value, ClientStateError)
    assert isinstance(caught.value, RuntimeError)
    assert "closed" in str(caught.value)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("lent_session", [False, True], ids=["own-session", "lent-session"])
async def test_closing_stops_a_call_waiting_to_retry_and_opens_no_new_session(
    fake: FakeInvent, lent_session: bool
) -> None:
    segment = fake.add_segment("VIP")
    fake.fail_next(1, status=503, retry_after=0.5)
    async with contextlib.AsyncExitStack() as stack:
        session = None
        if lent_session:
            session = await stack.enter_async_context(aiohttp.ClientSession())
        client = AsyncInventClient(API_KEY, base_url=fake.url, deadline=20, session=session)
        call = asyncio.create_task(client.segments.get(segment.id))
        for _ in range(200):  # until the 503 is in: the call now waits 0.5 s to retry
            if fake.requests:
                break
            await asyncio.sleep(0.01)

        with garbage_warnings() as leftovers:
            await client.aclose()
            with pytest.raises(ClientClosedError):
                await call
            del client, call

    assert [r.status for r in fake.requests] == [503]  # nothing sent after close
    assert leftovers == []  # no session opened after close, none left unclosed


async def test_a_pager_made_before_close_raises_client_closed_error(
    fake: FakeInvent, client: AsyncInventClient
) -> None:
    fake.add_contacts(3)
    pager = client.contacts.list()
    await client.aclose()

    with pytest.raises(ClientClosedError):
        [c async for c in pager]

    assert fake.requests == []


async def test_reentering_a_closed_client_raises_client_closed_error(
    client: AsyncInventClient,
) -> None:
    await client.aclose()

    with pytest.raises(ClientClosedError):
        async with client:
            pass


@pytest.mark.parametrize(
    "make_view",
    [
        lambda c: c.for_org("org_abc"),
        lambda c: c.with_options(max_retries=0),
        lambda c: c.with_options(timeout=1).for_org("org_abc"),
    ],
    ids=["for_org", "with_options", "both"],
)
async def test_a_view_is_closed_when_its_parent_is(
    fake: FakeInvent,
    client: AsyncInventClient,
    make_view: Callable[[AsyncInventClient], AsyncInventClient],
) -> None:
    fake.add_org("org_abc")
    view = make_view(client)
    await view.segments.list().first_page()

    await client.aclose()

    assert view.closed
    with pytest.raises(ClientClosedError):
        await view.segments.list().first_page()
    assert len(fake.requests) == 1


async def test_views_send_through_the_parents_session_and_connection(fake: FakeInvent) -> None:
    fake.add_org("org_abc")
    starts: list[str] = []
    connections: list[object] = []

    async def on_request_start(
        session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        starts.append(params.url.path)

    async def on_connection_create_end(
        session: aiohttp.ClientSession,
        context: object,
        params: aiohttp.TraceConnectionCreateEndParams,
    ) -> None:
        connections.append(params)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    trace.on_connection_create_end.append(on_connection_create_end)
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        AsyncInventClient(API_KEY, base_url=fake.url, session=session) as client,
    ):
        await client.segments.list().first_page()
        await client.for_org("org_abc").segments.list().first_page()
        await client.with_options(max_retries=0).segments.list().first_page()

    assert starts == ["/orgs/c/segments", "/orgs/org_abc/segments", "/orgs/c/segments"]
    assert len(connections) == 1


# --------------------------------------------------------------------------- sessions


async def test_an_injected_session_is_used_and_stays_open_after_the_client_closes(
    fake: FakeInvent,
) -> None:
    segment = fake.add_segment("VIP")
    async with aiohttp.ClientSession(headers={"X-Caller": "mine"}) as session:
        async with AsyncInventClient(API_KEY, base_url=fake.url, session=session) as client:
            await client.segments.get(segment.id)

        assert client.closed
        assert not session.closed
        async with session.get(f"{fake.url}/orgs/c/segments/{segment.id}") as response:
            assert response.status == 401  # still usable (our own request has no key)

    assert fake.requests[0].headers.get("X-Caller") == "mine"


def test_a_client_can_be_created_outside_any_event_loop(threaded_fake: FakeInvent) -> None:
    segment = threaded_fake.add_segment("VIP")
    client = AsyncInventClient(API_KEY, base_url=threaded_fake.url)

    async def use() -> Segment:
        async with client:
            return await client.segments.get(segment.id)

    assert asyncio.run(use()).id == segment.id
    assert client.closed


async def test_a_client_made_in_another_loop_but_not_used_there_works_here(
    threaded_fake: FakeInvent,
) -> None:
    segment = threaded_fake.add_segment("VIP")

    async def make() -> AsyncInventClient:
        return AsyncInventClient(API_KEY, base_url=threaded_fake.url)

    client = await anyio.to_thread.run_sync(lambda: asyncio.run(make()))
    async with client:
        got = await client.segments.get(segment.id)

    assert got.id == segment.id


# --------------------------------------------------------------------------- event loops


async def test_using_a_client_from_a_second_event_loop_names_the_fix(
    threaded_fake: FakeInvent,
) -> None:
    segment = threaded_fake.add_segment("VIP")
    client = AsyncInventClient(API_KEY, base_url=threaded_fake.url, timeout=5)

    async def use() -> None:
        await client.segments.get(segment.id)

    owner = OwnerLoop(use, client.aclose)
    owner.start()
    try:
        with pytest.raises(WrongEventLoopError) as caught:
            await client.segments.get(segment.id)
    finally:
        owner.finish()

    message = str(caught.value)
    assert "one client per event loop" in message
    assert "asyncio.run()" in message
    assert "In a test: make the client in the test itself, or take the invent_client" in message
    assert isinstance(caught.value, ClientStateError)
    assert len(threaded_fake.requests) == 1
    assert client.closed


async def test_outside_a_test_the_loop_advice_says_nothing_of_tests(
    threaded_fake: FakeInvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # as in an application
    client = AsyncInventClient(API_KEY, base_url=threaded_fake.url, timeout=5)
    await anyio.to_thread.run_sync(asyncio.run, client.segments.list().first_page())

    with pytest.raises(WrongEventLoopError) as caught:
        await client.segments.list().first_page()
    await client.aclose()

    assert "asyncio.run()" in str(caught.value)
    assert "fixture" not in str(caught.value)


async def test_closing_from_a_second_running_loop_is_refused(threaded_fake: FakeInvent) -> None:
    segment = threaded_fake.add_segment("VIP")
    client = AsyncInventClient(API_KEY, base_url=threaded_fake.url, timeout=5)

    async def use() -> None:
        await client.segments.get(segment.id)

    owner = OwnerLoop(use, client.aclose)
    owner.start()
    try:
        with pytest.raises(WrongEventLoopError, match="event loop it was used on"):
            await client.aclose()
        assert not client.closed
    finally:
        owner.finish()

    assert client.closed  # closed by its own loop


async def test_a_client_whose_loop_has_ended_raises_wrong_event_loop_error(
    threaded_fake: FakeInvent,
) -> None:
    segment = threaded_fake.add_segment("VIP")
    client = AsyncInventClient(API_KEY, base_url=threaded_fake.url, timeout=5)
    await anyio.to_thread.run_sync(asyncio.run, client.segments.get(segment.id))

    with pytest.raises(WrongEventLoopError) as caught:
        await client.segments.get(segment.id)
    with garbage_warnings() as leftovers:
        await client.aclose()  # on a second loop: the first one's shutdown closed the session
        closed = client.closed
        del client

    assert "Event loop is closed" not in str(caught.value)
    assert "one client per event loop" in str(caught.value)
    assert closed
    assert leftovers == []  # no unclosed session, connector, transport or socket
    assert len(threaded_fake.requests) == 1


async def test_a_loop_that_ends_with_the_client_open_closes_its_connections(
    threaded_fake: FakeInvent,
) -> None:
    segment = threaded_fake.add_segment("VIP")

    def run_and_forget() -> None:
        client = AsyncInventClient(API_KEY, base_url=threaded_fake.url, timeout=5)
        asyncio.run(client.segments.get(segment.id))  # never closed

    with garbage_warnings() as leftovers:
        await anyio.to_thread.run_sync(run_and_forget)

    texts = [text for _, text in leftovers]
    assert len(texts) == 1, texts  # ours, not aiohttp's "Unclosed client session" or a socket
    assert "AsyncInventClient was not closed" in texts[0]


# --------------------------------------------------------------------------- leaks


@contextlib.contextmanager
def garbage_warnings() -> Iterator[list[tuple[type[Warning], str]]]:
    """Record the warnings of the block and of collecting the garbage it leaves.

    Yields a list that receives each warning's category and text. Warnings are reduced to
    text at once: a recorded warning's ``source`` would keep its object alive, and it would
    warn again later, in some other test.
    """
    seen: list[tuple[type[Warning], str]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield seen
        finally:
            for _ in range(10):
                seen.extend((w.category, str(w.message)) for w in caught)
                caught.clear()
                gc.collect()
                if not caught:
                    break


async def test_an_unclosed_client_gives_a_resource_warning_and_nothing_worse(
    fake: FakeInvent,
) -> None:
    segment = fake.add_segment("VIP")
    client = AsyncInventClient(API_KEY, base_url=fake.url)
    await client.segments.get(segment.id)

    with garbage_warnings() as leftovers:
        del client
    await asyncio.sleep(0)  # let the closed connections finish on the loop

    assert leftovers, "an unclosed client should say so"
    assert {category for category, _ in leftovers} == {ResourceWarning}
    ours = [text for _, text in leftovers if "AsyncInventClient was not closed" in text]
    assert len(ours) == 1
    assert "async with" in ours[0]


@pytest.mark.parametrize(
    ("arguments", "reported"),
    [
        ({"api_key": "", "session": 5}, "no API key"),
        ({"session": 5, "base_url": "http://example.com"}, "session must be"),
        ({"base_url": "ftp://example.com", "org_id": ""}, "base_url must"),
        ({"org_id": "", "timeout": -1}, "org_id must"),
        ({"timeout": -1, "max_retries": -1}, "timeout must"),
        ({"max_retries": -1, "deadline": -1}, "max_retries must"),
        ({"deadline": -1, "rate_limit": 5}, "deadline must"),
        ({"rate_limit": 5}, "rate_limit must"),
    ],
)
def test_the_first_bad_argument_in_the_documented_order_is_the_one_reported(
    arguments: dict[str, object], reported: str
) -> None:
    settings = {"api_key": API_KEY, **arguments}
    with pytest.raises((TypeError, ValueError), match=reported):
        AsyncInventClient(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "reported"),
    [
        ({"timeout": -1, "deadline": -1, "max_retries": -1}, "timeout must"),
        ({"deadline": -1, "max_retries": -1}, "deadline must"),
        ({"max_retries": -1}, "max_retries must"),
    ],
)
def test_with_options_reports_its_first_bad_argument(
    options: dict[str, object], reported: str
) -> None:
    client = AsyncInventClient(API_KEY)
    with pytest.raises(ValueError, match=reported):
        client.with_options(**options)  # type: ignore[arg-type]


async def test_an_unused_unclosed_client_warns_nothing(fake: FakeInvent) -> None:
    client = AsyncInventClient(API_KEY, base_url=fake.url)

    with garbage_warnings() as leftovers:
        del client

    assert leftovers == []
