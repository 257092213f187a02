"""The sync client in the situations blocking code puts it in: scripts, threads, running event
loops, fork, Ctrl-C, early exits, interpreter exit, errors and closing.

Every test talks to a :class:`ThreadedFake` (a FakeInvent on its own loop in a thread, so
blocking calls from the test's thread cannot stall it) over loopback HTTP. Scenarios that need
a fresh interpreter (plain script, interpreter exit) run one in a subprocess with a timeout.
Behaviours shared with the async client (endpoints, errors, retries, paging) are tested once
for both clients in ``test_parity.py`` and the ``test_client_*.py`` modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import pytest
from _harness import API_KEY, ThreadedFake, needs_sigint

import invent_async
from invent_async import (
    BulkAbortedError,
    BulkProgress,
    BulkReport,
    ClientClosedError,
    ClientStateError,
    Contact,
    InternalServerError,
    InventClient,
    NotFoundError,
    Outcome,
    SegmentSyncAbortedError,
    partial_report,
)
from invent_async._sync import PortalThreadError, SyncIterator
from invent_async.testing import FakeInvent

SLOW: Final = 30.0
"""Seconds a deliberately slow response takes: far longer than any test waits for it."""

SUBPROCESS_TIMEOUT: Final = 30.0


@pytest.fixture
def fake() -> Iterator[FakeInvent]:
    """A FakeInvent on its own loop and thread (this module's tests block their own thread)."""
    with ThreadedFake(api_key=API_KEY) as server:
        yield server


def make_client(fake: FakeInvent, **options: object) -> InventClient:
    settings: dict[str, object] = {"timeout": 5, "deadline": 20, "rate_limit": None, **options}
    return InventClient(API_KEY, base_url=fake.url, **settings)  # type: ignore[arg-type]


@pytest.fixture
def client(fake: FakeInvent) -> Iterator[InventClient]:
    """A sync client for ``fake``, closed after the test."""
    with make_client(fake) as c:
        yield c


def loop_thread(client: InventClient) -> threading.Thread:
    """The thread running ``client``'s event loop (started now if need be)."""
    return client._bridge.runtime.current().thread


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "invent-sync-loop"]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` (a test helper for cross-thread events, bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


def run_script(script: str, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Run ``script`` in a fresh interpreter (warnings shown); return stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


# ---------------------------------------------------------------------- plain use


def test_a_plain_script_works_with_the_key_from_the_environment(fake: FakeInvent) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(3)
    script = """
        import sys
        from invent_async import InventClient

        url, contact_id, segment_id = sys.argv[1:]
        with InventClient(base_url=url, rate_limit=None) as client:
            contact = client.contacts.add_segment(contact_id, segment_id)
            listed = [c.id for c in client.contacts.list(take=2)]
        print(contact.id, [s.id for s in contact.segments], listed, client.closed)
    """

    out, err = run_script(script, fake.url, ids[0], segment.id, env={"INVENT_API_KEY": API_KEY})

    assert out.strip() == f"{ids[0]} {[segment.id]!r} {ids!r} True"
    assert err == ""


def test_exit_with_an_unclosed_client_neither_hangs_nor_prints(fake: FakeInvent) -> None:
    fake.add_contacts(30)
    fake.delay_next(1, SLOW, match=lambda method, path: path.endswith("/ct_1"))
    script = """
        import sys, threading
        from invent_async import InventClient

        client = InventClient("%s", base_url=sys.argv[1], rate_limit=None)
        client.contacts.get("ct_2")                     # the loop thread is running
        walk = iter(client.contacts.list(take=10))
        next(walk)                                      # an iterator left half-way

        def slow():                                     # a call still in flight at exit
            try:
                client.contacts.get("ct_1")
            except BaseException:
                pass

        threading.Thread(target=slow, daemon=True).start()
        print("bye")
    """

    out, err = run_script(script % API_KEY, fake.url)

    assert out == "bye\n"
    assert err == ""


def test_many_threads_share_one_client_without_mixing_up_results(
    fake: FakeInvent, client: InventClient
) -> None:
    threads, calls = 8, 25
    segments = [fake.add_segment(f"Group {i}").id for i in range(threads)]
    ids = fake.add_contacts(threads * calls)
    client.segments.get(segments[0])  # the loop is up: count its thread
    loops_before = loop_threads()
    start = threading.Barrier(threads)

    def tag(worker: int) -> list[tuple[str, str, list[str]]]:
        start.wait(10)
        seen = []
        for contact_id in ids[worker * calls : (worker + 1) * calls]:
            contact = client.contacts.add_segment(contact_id, segments[worker])
            seen.append((contact_id, contact.id, [s.id for s in contact.segments]))
        return seen

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(tag, range(threads)))

    for worker, seen in enumerate(results):
        assert [(asked, got) for asked, got, _ in seen] == [(a, a) for a, _, _ in seen]
        assert all(tags == [segments[worker]] for _, _, tags in seen)
        assert fake.segment_members(segments[worker]) == [a for a, _, _ in seen]
    assert loop_threads() == loops_before  # one loop thread served every thread


def in_asyncio_run(call: Callable[[], Contact]) -> Contact:
    async def main() -> Contact:
        return call()  # a blocking call made while this thread's loop runs

    return asyncio.run(main())


def in_a_foreign_loop_thread(call: Callable[[], Contact]) -> Contact:
    """Like a Jupyter kernel: the loop runs in another thread and calls sync code."""

    async def main() -> Contact:
        return call()

    result: list[Contact] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(main())))
    thread.start()
    thread.join(20)
    assert result, "the call in the foreign loop did not finish"
    return result[0]


@pytest.mark.parametrize("where", [in_asyncio_run, in_a_foreign_loop_thread])
def test_a_thread_running_an_event_loop_can_call_the_sync_client(
    fake: FakeInvent, client: InventClient, where: Callable[[Callable[[], Contact]], Contact]
) -> None:
    contact = fake.add_contact(name="Jane")

    got = where(lambda: client.contacts.get(contact.id))

    assert got == fake.contact(contact.id)


# ---------------------------------------------------------------------- fork


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_starts_its_own_loop_and_the_parent_keeps_its_own(
    fake: FakeInvent, client: InventClient
) -> None:
    contact = fake.add_contact(name="Jane")
    assert client.contacts.get(contact.id).id == contact.id  # the parent's loop is running
    parent_loop = loop_thread(client)
    reader, writer = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code, message = 1, "?"
        try:
            warnings.simplefilter("error")  # dropping the parent's session must not warn
            got = client.contacts.get(contact.id)
            gc.collect()
            child_loop = loop_thread(client)
            code = 0 if got.id == contact.id and child_loop is not parent_loop else 1
            message = f"{got.id} new loop: {child_loop is not parent_loop}"
        except BaseException:
            message = traceback.format_exc()
        finally:
            os.write(writer, message.encode()[:4000])
            os._exit(code)
    os.close(writer)
    status = wait_for_child(pid)
    with os.fdopen(reader, "rb") as pipe:
        message = pipe.read().decode()
    assert os.waitstatus_to_exitcode(status) == 0, message
    assert client.contacts.get(contact.id).id == contact.id  # the parent is unaffected
    assert loop_thread(client) is parent_loop


def wait_for_child(pid: int, timeout: float = SUBPROCESS_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child did not finish")
        time.sleep(0.01)


# ---------------------------------------------------------------------- deadlock guard, Ctrl-C


def test_calling_the_client_from_its_own_loop_thread_raises_a_clear_error(
    fake: FakeInvent, client: InventClient
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(3)

    def on_progress(progress: BulkProgress) -> None:
        client.contacts.get(ids[0])  # runs on the client's loop thread: would deadlock

    with pytest.raises(PortalThreadError, match="own event-loop thread") as caught:
        client.contacts.bulk_add_segment(ids, segment.id, on_progress=on_progress)

    assert isinstance(caught.value, ClientStateError)
    assert client.contacts.get(ids[0]).id == ids[0]  # nothing is stuck


@contextlib.contextmanager
def ctrl_c_once_the_fake_is_busy(fake: FakeInvent, requests: int = 1) -> Iterator[None]:
    """Press Ctrl-C (SIGINT to this, the main thread) once ``requests`` more reach ``fake``.

    The block must start the request; the press comes only while it is in flight, so the
    KeyboardInterrupt cannot land anywhere else in the test session.
    """
    assert threading.current_thread() is threading.main_thread()
    arrived = fake.stats.total
    stop = threading.Event()

    def press() -> None:
        while fake.stats.total < arrived + requests:
            if stop.wait(0.005):
                return
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    presser = threading.Thread(target=press, daemon=True)
    presser.start()
    try:
        yield
    finally:
        stop.set()
        presser.join(10)


@needs_sigint
def test_ctrl_c_during_a_slow_call_cancels_it_and_the_client_stays_usable(
    fake: FakeInvent, client: InventClient
) -> None:
    contact = fake.add_contact(name="Jane")
    client.contacts.get(contact.id)
    fake.delay_next(1, SLOW)
    started = time.monotonic()

    with ctrl_c_once_the_fake_is_busy(fake), pytest.raises(KeyboardInterrupt):
        client.contacts.get(contact.id)
    waited = time.monotonic() - started

    assert waited < SLOW  # it did not sit out the slow response
    assert not client._bridge.runtime.current().tasks  # the request's task was cancelled
    assert client.contacts.get(contact.id).id == contact.id


@needs_sigint
def test_ctrl_c_during_a_bulk_job_keeps_its_partial_report(
    fake: FakeInvent, client: InventClient
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(40)
    fake.delay_next(1, SLOW, match=f"/{ids[4]}/")

    with ctrl_c_once_the_fake_is_busy(fake, 5), pytest.raises(KeyboardInterrupt) as caught:
        client.contacts.bulk_add_segment(ids, segment.id, concurrency=1)

    report = partial_report(caught.value)  # as for a cancelled async job
    assert isinstance(report, BulkReport)
    assert (report.cancelled, report.succeeded, report.cancelled_ids) == (True, 4, (ids[4],))
    assert fake.segment_members(segment.id) == ids[:4]


# ---------------------------------------------------------------------- iteration


def test_breaking_out_of_a_listing_requests_no_further_page(
    fake: FakeInvent, client: InventClient
) -> None:
    fake.add_contacts(250)
    fake.clear_requests()

    for index, _ in enumerate(client.contacts.list(take=10)):
        if index == 14:  # the second page
            break
    gc.collect()
    client.segments.list().first_page()  # one more round trip to the loop and the fake

    listed = [r for r in fake.requests if r.path.endswith("/contacts")]
    assert [dict(r.query).get("page") for r in listed] == ["1", "2"]


async def numbers(closed: threading.Event) -> AsyncIterator[int]:
    try:
        for n in range(100):
            yield n
    finally:
        closed.set()  # runs only when the async generator is closed (or exhausted)


@pytest.mark.parametrize("leave", ["break", "close", "with"])
def test_leaving_a_sync_iteration_early_closes_the_async_iterator(
    client: InventClient, leave: str
) -> None:
    closed = threading.Event()
    iterator: SyncIterator[int] = client._bridge.iterate(lambda: numbers(closed))

    if leave == "break":
        for n in iterator:
            if n == 2:
                break
        del iterator  # dropped, as a for loop over a call's result does
    elif leave == "close":
        assert next(iterator) == 0
        iterator.close()
    else:
        with iterator:
            assert next(iterator) == 0

    assert closed.wait(10)


def test_a_sync_pager_can_feed_a_bulk_job(fake: FakeInvent, client: InventClient) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(150)

    listing = client.contacts.list(take=100)  # contacts with an id are accepted as ids
    report = client.contacts.bulk_add_segment(listing, segment.id)

    assert (report.total, report.succeeded) == (150, 150)
    assert sorted(fake.segment_members(segment.id)) == sorted(ids)


def test_a_list_of_contacts_feeds_a_result_stream_and_a_bulk_job(
    fake: FakeInvent, client: InventClient
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(5)
    contacts: list[Contact] = list(client.contacts.list())  # typed: mypy checks the calls

    with client.contacts.stream_add_segment(contacts, segment.id) as results:
        added = sorted(r.contact_id for r in results)
    report = client.contacts.bulk_remove_segment(contacts, segment.id)

    assert added == sorted(ids)
    assert (report.total, report.succeeded) == (5, 5)
    assert fake.segment_members(segment.id) == []


def test_leaving_a_result_stream_early_stops_the_bulk_job(
    fake: FakeInvent, client: InventClient
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(60)
    fake.latency = 0.01

    with client.contacts.stream_add_segment(ids, segment.id, concurrency=2) as results:
        first = [next(results), next(results)]
    report = results.report

    assert all(r.outcome is Outcome.SUCCEEDED for r in first)
    assert report.cancelled
    assert report.total < len(ids)
    assert fake.stats.total < len(ids)


# ---------------------------------------------------------------------- errors


def test_errors_are_the_sdk_classes_with_tracebacks_free_of_bridge_internals(
    fake: FakeInvent, client: InventClient
) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.contacts.get("ct_missing")

    frames = traceback.extract_tb(caught.value.__traceback__)
    files = [Path(f.filename) for f in frames]
    internals = {"asyncio", "anyio", "concurrent"}
    assert not [f for f in files if internals & set(f.parts) or f.name == "threading.py"]
    assert [f.name for f in files].count("_runtime.py") == 1  # the line that re-raises it
    assert files[-1].parent.name == "invent_async"  # the innermost frame raised it
    assert "ct_missing" in str(caught.value)


def test_a_view_with_other_options_shares_the_clients_loop(
    fake: FakeInvent, client: InventClient
) -> None:
    contact = fake.add_contact(name="Jane")
    strict = client.with_options(max_retries=0)
    fake.fail_next(1, status=503)

    with pytest.raises(InternalServerError):
        strict.contacts.get(contact.id)
    fake.fail_next(1, status=503)
    assert client.contacts.get(contact.id).id == contact.id  # the parent retries
    assert loop_thread(strict) is loop_thread(client)


def test_invalid_arguments_fail_at_once(
    fake: FakeInvent, client: InventClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INVENT_API_KEY", raising=False)

    with pytest.raises(ValueError, match="API key"):
        InventClient(base_url=fake.url)
    with pytest.raises(ValueError):
        client.for_org("")
    with pytest.raises(ValueError):
        client.contacts.list(take=1000)
    with pytest.raises(ValueError):
        client.contacts.stream_add_segment(["ct_1"], "sg_1", concurrency=0)


def test_repr_shows_where_the_client_points_but_never_the_key(fake: FakeInvent) -> None:
    with make_client(fake) as client:
        text = repr(client.for_org("c"))

    assert text == f"InventClient(base_url={fake.url!r}, org_id='c')"
    assert API_KEY not in text


# ---------------------------------------------------------------------- closing


def test_using_a_closed_client_raises_client_closed_error(fake: FakeInvent) -> None:
    contact = fake.add_contact(name="Jane")
    client = make_client(fake)
    client.contacts.get(contact.id)
    pager = client.contacts.list()
    walk = iter(client.contacts.list(take=1))
    view = client.for_org("c")

    client.close()
    client.close()  # idempotent

    assert client.closed
    assert view.closed
    for use in (
        lambda: client.contacts.get(contact.id),
        lambda: view.segments.list().collect(),
        lambda: list(pager),
        lambda: next(walk),
        client.__enter__,
    ):
        with pytest.raises(ClientClosedError):
            use()


def test_closing_cancels_calls_in_flight_in_other_threads(fake: FakeInvent) -> None:
    contact = fake.add_contact(name="Jane")
    client = make_client(fake)
    client.contacts.get(contact.id)
    thread = loop_thread(client)
    fake.delay_next(1, SLOW)
    arrived = fake.stats.total
    errors: list[BaseException] = []

    def slow_call() -> None:
        try:
            client.contacts.get(contact.id)
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=slow_call)
    caller.start()
    wait_until(lambda: fake.stats.total > arrived, "the slow request reached the fake")
    client.close()
    caller.join(10)

    assert not caller.is_alive()
    assert [type(e) for e in errors] == [ClientClosedError]
    assert not thread.is_alive()


@pytest.mark.parametrize("closer", ["on_progress", "another thread"])
def test_closing_the_client_mid_bulk_job_raises_bulk_aborted_with_its_report(
    fake: FakeInvent, tmp_path: Path, closer: str
) -> None:
    """The async client's contract: the job stops with BulkAbortedError carrying the
    partial report, caused by ClientClosedError; what it reports done is what was done."""
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(300)
    journal = tmp_path / "done.txt"
    client = make_client(fake, rate_limit=invent_async.RateLimit(per_minute=3000, burst=5))
    progressed = threading.Event()

    def on_progress(progress: BulkProgress) -> None:
        if progress.done >= 25:
            progressed.set()
            if closer == "on_progress":
                client.close()

    def close_once_progressed() -> None:
        if progressed.wait(10):
            client.close()

    if closer == "another thread":
        threading.Thread(target=close_once_progressed).start()
    with pytest.raises(BulkAbortedError) as caught:
        client.contacts.bulk_add_segment(
            ids, segment.id, concurrency=8, journal=journal, on_progress=on_progress
        )
    client.close()

    report = caught.value.report
    assert isinstance(caught.value.__cause__, ClientClosedError)
    assert "closed while the job ran" in str(caught.value)
    assert report.failed == 0
    assert report.succeeded >= 25
    assert report.total == report.succeeded + report.skipped < len(ids)
    # every member is a success, or an item in flight when the client closed (the server may
    # have applied it before the connection went; the report lists it, the re-run sends it)
    members = len(fake.segment_members(segment.id))
    assert report.succeeded <= members <= report.succeeded + len(report.cancelled_ids)
    with make_client(fake) as again:
        resumed = again.contacts.bulk_add_segment(ids, segment.id, journal=journal)
    assert resumed.succeeded == len(ids) - report.succeeded
    assert sorted(fake.segment_members(segment.id)) == sorted(ids)


def test_closing_the_client_mid_segment_sync_raises_its_aborted_error_with_both_reports(
    fake: FakeInvent,
) -> None:
    segment = fake.add_segment("VIP")
    ids = fake.add_contacts(300)
    client = make_client(fake, rate_limit=invent_async.RateLimit(per_minute=3000, burst=5))

    def close_after_25_adds() -> None:
        wait_until(lambda: len(fake.segment_members(segment.id)) >= 25, "25 adds")
        client.close()

    threading.Thread(target=close_after_25_adds).start()

    with pytest.raises(SegmentSyncAbortedError) as caught:
        client.contacts.sync_segment(segment.id, ids)
    client.close()

    assert isinstance(caught.value.__cause__, ClientClosedError)
    sync_report = caught.value.sync_report
    assert sync_report is not None
    assert caught.value.report.succeeded == sync_report.added
    # every member is an add the report counts, or one in flight when the client closed (the
    # server may have applied it before the connection went): reported, none unaccounted for
    members = len(fake.segment_members(segment.id))
    assert sync_report.added <= members <= sync_report.added + len(sync_report.cancelled_ids)


def test_an_unclosed_client_is_collected_with_a_warning_and_its_thread_ends(
    fake: FakeInvent,
) -> None:
    clients = [make_client(fake)]
    clients[0].segments.list().collect()
    thread = loop_thread(clients[0])

    with pytest.warns(ResourceWarning, match="InventClient was not closed"):
        clients.clear()  # the last reference: no cycles keep a client alive

    thread.join(10)
    assert not thread.is_alive()


def test_the_sync_client_is_exported_with_its_pager() -> None:
    assert invent_async.InventClient is InventClient
    assert "InventClient" in invent_async.__all__
    assert "Pager" in invent_async.__all__
