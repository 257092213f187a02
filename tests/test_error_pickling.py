"""Every SDK error crosses a process boundary intact: pickle, a process pool, a worker pool.

Process pools send a worker's exception to the parent by pickling it. An exception that does
not pickle (or does not unpickle) turns a ``NotFoundError`` into a ``TypeError`` in the parent,
or hangs a ``multiprocessing.Pool`` for good.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import socket
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import attrs
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

import invent_async
from invent_async import (
    APIConnectionError,
    AsyncInventClient,
    BulkAbortedError,
    BulkReport,
    InventError,
    MembershipChange,
    NotFoundError,
    RateLimitError,
    SegmentSyncAbortedError,
    SegmentSyncReport,
)
from invent_async._jobs.idset import CompactIds
from invent_async._jobs.results import BulkFailure
from invent_async.testing import FakeInvent

API_KEY = "test-key-9f8e7d"


def every_error_class() -> set[type[InventError]]:
    found: set[type[InventError]] = set()
    todo: list[type[InventError]] = [InventError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def status_fields(status: int) -> dict[str, Any]:
    headers = CIMultiDictProxy(CIMultiDict([("X-Request-Id", "req_1"), ("Via", "a"), ("Via", "b")]))
    return {
        "status": status,
        "method": "GET",
        "path": "/orgs/c/contacts/ct_1",
        "body": {"message": "nope", "items": [1, 2]},
        "request_id": "req_1",
        "headers": headers,  # what aiohttp gives: a proxy, which does not pickle by itself
    }


def sample(cls: type[InventError]) -> InventError:
    """An instance of ``cls`` with every attribute set to something recognisable."""
    if issubclass(cls, RateLimitError):
        return cls("429 for GET", retry_after=2.5, **status_fields(429))
    if issubclass(cls, invent_async.APIStatusError):
        return cls(f"{cls.__name__} for GET", **status_fields(404))
    if issubclass(cls, APIConnectionError):
        return cls("could not connect", method="POST", path="/orgs/c/segments", request_sent=False)
    if cls is invent_async.ResponseValidationError:
        return cls(["required field missing @ $.id"], method="GET", path="/p", type_name="Contact")
    if cls is invent_async.BudgetSettingsError:
        return cls("other settings", budget="b@h:443", stored="per_minute=600.0", asked=None)
    if cls is invent_async.BudgetServerConfigError:
        return cls("wrong password", budget="b@h:443", problem="auth")
    if cls is invent_async.ResponseTooLargeError:
        return cls("too large", method="GET", path="/p", status=200, limit=10, request_id="r")
    if issubclass(cls, BulkAbortedError):
        failure = BulkFailure(contact_id="ct_1", error=sample(NotFoundError), attempts=1)
        report = BulkReport(
            total=3,
            succeeded=1,
            failed=1,
            skipped=1,
            failures=(failure,),
            cancelled_ids=("ct_3",),
            retries=0,
            rate_limited=0,
            elapsed=0.5,
            cancelled=True,
        )
        if cls is SegmentSyncAbortedError:
            return cls("stopped: 401", report, 3.0, sync_report_sample())
        return cls("stopped: 401", report)
    if cls is invent_async.ImportAbortedError:
        import_report = invent_async.ImportReport(
            total=3,
            created=1,
            updated=0,
            invalid=0,
            failed=1,
            skipped=1,
            requests=1,
            retries=0,
            rate_limited=0,
            elapsed=0.5,
            cancelled=True,
        )
        return cls("import stopped early: 401", import_report, 3.0)
    return cls(f"a {cls.__name__}")


def sync_report_sample() -> SegmentSyncReport:
    """A partial segment sync report with removed ids and a change found meanwhile."""
    change = MembershipChange(kind="gone", contact_id="ct_9", detail="the removal answered 404")
    return SegmentSyncReport(
        segment_id="sg_1",
        strategy="diff",
        reason="remove_others needs the whole membership",
        remove_others=True,
        members_before=120,
        total=10,
        added=3,
        unchanged=6,
        failed=0,
        skipped=1,
        duplicates=1,
        journal=0,
        removals=4,
        removed=2,
        gone=1,
        remove_failed=0,
        remove_skipped=0,
        removed_ids=CompactIds(["ct_7", "ct_8"]),
        failures=(),
        remove_failures=(),
        changed_meanwhile=(change,),
        cancelled_ids=("ct_10",),
        requests_sent=8,
        read_requests=2,
        retries=0,
        rate_limited=0,
        elapsed=1.5,
        rate_per_minute=490.0,
        cancelled=True,
        verified=False,
        missing=CompactIds(),
        unexpected=CompactIds(),
    )


def attributes(exc: BaseException) -> dict[str, Any]:
    """What a user reads off an error: its message, args and public attributes."""
    found = {"type": type(exc), "str": str(exc), "args": exc.args}
    for name, value in vars(exc).items():
        found[name] = dict(value.items()) if hasattr(value, "items") else value
        if isinstance(value, BulkReport):  # its failures hold exceptions: compare those too
            failures = [(f.contact_id, attributes(f.error), f.attempts) for f in value.failures]
            found[name] = (attrs.evolve(value, failures=()), failures)
        if name == "headers":
            found["headers_all"] = list(value.items())  # repeated headers survive too
    return found


ERROR_CLASSES = sorted(every_error_class(), key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=[cls.__name__ for cls in ERROR_CLASSES])
def test_every_error_survives_a_pickle_round_trip(cls: type[InventError]) -> None:
    error = sample(cls)

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

    assert type(copy) is cls
    assert attributes(copy) == attributes(error)


def test_the_samples_cover_the_whole_tree() -> None:
    names = {cls.__name__ for cls in every_error_class()}

    assert {
        "BulkAbortedError",
        "PortalThreadError",
        "ResponseTooLargeError",
        "SegmentSyncAbortedError",
    } <= names


def fetch_in_worker(base_url: str, contact_id: str) -> str:
    """A process-pool job: fetch a contact with a fresh client, in the worker process."""

    async def fetch() -> str:
        async with AsyncInventClient(API_KEY, base_url=base_url, max_retries=0) as client:
            contact = await client.contacts.get(contact_id)
            return contact.id

    return asyncio.run(fetch())


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_a_workers_errors_reach_the_parent_as_raised(fake: FakeInvent) -> None:
    contact = fake.add_contact(name="Jane")
    spawn = multiprocessing.get_context("spawn")  # no fork() of a threaded test process
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        found = await loop.run_in_executor(pool, fetch_in_worker, fake.url, contact.id)
        with pytest.raises(NotFoundError) as missing:
            await loop.run_in_executor(pool, fetch_in_worker, fake.url, "ct_missing")
        with pytest.raises(APIConnectionError) as refused:
            await loop.run_in_executor(pool, fetch_in_worker, closed_port(), contact.id)

    assert found == contact.id
    assert missing.value.status == 404
    assert missing.value.path == "/orgs/c/contacts/ct_missing"
    assert missing.value.body == {"message": "Contact 'ct_missing' not found"}
    assert missing.value.request_id == fake.requests[-1].request_id
    assert refused.value.request_sent is False


def test_a_network_error_in_a_multiprocessing_pool_does_not_hang_it() -> None:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pending = pool.apply_async(fetch_in_worker, (closed_port(), "ct_1"))
        with pytest.raises(APIConnectionError) as caught:
            pending.get(timeout=60)

    assert caught.value.method == "GET"
