"""Retry behaviour end to end through both clients against FakeInvent.

What is retried (idempotent calls: transient statuses, dropped connections, timeouts; creating
calls: only 429), how often (``max_retries``), how long the client waits (``Retry-After`` is a
floor, as seconds or an HTTP-date) and when it gives up at once (the call's deadline). Timing
assertions are lower bounds of behaviour (the retry did not come early) or generous upper
bounds (the call did not sleep through a 30 s ``Retry-After``), never performance thresholds.
The wait generator itself is tested without I/O in ``test_retry_waits.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import anyio
import pytest
from _harness import API_KEY, Api, api_fixture  # noqa: F401

from conftest import FAST_RATE
from invent_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncInventClient,
    InternalServerError,
    RateLimit,
    RateLimitError,
)
from invent_async.testing import FakeInvent

# Timer slack: asyncio may wake a sleeper up to one clock tick early.
SLACK = 0.005


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def statuses(api: Api) -> list[int | None]:
    return [r.status for r in api.requests]


def gap(api: Api, first: int = 0, second: int = 1) -> float:
    """Seconds between the arrival of two recorded requests."""
    return api.requests[second].time - api.requests[first].time


# --------------------------------------------------------------------------- what is retried


async def test_a_503_then_success_is_one_successful_call(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    api.fake.fail_next(1, status=503)

    got = await api.call(lambda c: c.segments.get(segment.id))

    assert got.id == segment.id
    assert statuses(api) == [503, 200]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_transient_statuses_are_retried_for_idempotent_calls(api: Api, status: int) -> None:
    segment = api.fake.add_segment("VIP")
    contact = api.fake.add_contact(name="Jane")
    api.fake.fail_next(1, status=status)

    result = await api.call(lambda c: c.contacts.add_segment(contact.id, segment.id))

    assert [s.id for s in result.segments] == [segment.id]
    assert statuses(api) == [status, 200]


@pytest.mark.parametrize("max_retries", [0, 1, 2])
async def test_max_retries_n_makes_n_plus_one_attempts_then_raises(
    api: Api, max_retries: int
) -> None:
    api.fake.fail_next(10, status=503)

    with pytest.raises(InternalServerError) as caught:
        await api.call(lambda c: c.with_options(max_retries=max_retries).segments.get("sg_1"))

    assert caught.value.status == 503
    assert statuses(api) == [503] * (max_retries + 1)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_permanent_errors_are_sent_exactly_once(api: Api, status: int) -> None:
    api.fake.fail_next(1, status=status)

    with pytest.raises(APIStatusError):
        await api.call(lambda c: c.segments.get("sg_1"))

    assert statuses(api) == [status]


async def test_an_unknown_id_is_not_retried(api: Api) -> None:
    with pytest.raises(APIStatusError):
        await api.call(lambda c: c.contacts.add_segment("ct_missing", "sg_missing"))

    assert statuses(api) == [404]


CreatingCall = Callable[[AsyncInventClient], Any]

CREATING_CALLS: dict[str, tuple[CreatingCall, str]] = {
    "contacts.create": (
        lambda c: c.contacts.create(name="New", email="new@example.com"),
        r"^POST /orgs/c/contacts$",
    ),
    "segments.create": (lambda c: c.segments.create("New"), r"^POST /orgs/c/segments$"),
    "contacts.merge": (
        lambda c: c.contacts.merge("ct_1", ["ct_2"]),
        r"^POST /orgs/c/contacts/ct_1/merge$",
    ),
}


@pytest.fixture
def seeded(api: Api) -> tuple[list[str], list[str]]:
    """Two contacts (ct_1, ct_2) and one segment; returns the fake's ids before the call."""
    api.fake.add_contact(name="One", email="one@example.com")
    api.fake.add_contact(name="Two", email="two@example.com")
    api.fake.add_segment("Existing")
    return api.fake.contact_ids(), api.fake.segment_ids()


@pytest.mark.parametrize("name", list(CREATING_CALLS))
async def test_creating_calls_are_not_retried_on_a_503(
    api: Api, seeded: tuple[list[str], list[str]], name: str
) -> None:
    call, match = CREATING_CALLS[name]
    api.fake.fail_next(1, status=503, match=match)

    with pytest.raises(InternalServerError):
        await api.call(call)

    assert statuses(api) == [503]
    assert (api.fake.contact_ids(), api.fake.segment_ids()) == seeded


@pytest.mark.parametrize("name", list(CREATING_CALLS))
async def test_creating_calls_are_not_retried_after_a_dropped_connection(
    api: Api, seeded: tuple[list[str], list[str]], name: str
) -> None:
    call, match = CREATING_CALLS[name]
    api.fake.drop_next(1, match=match)

    with pytest.raises(APIConnectionError) as caught:
        await api.call(call)

    assert caught.value.request_sent is True
    assert statuses(api) == [None]
    assert (api.fake.contact_ids(), api.fake.segment_ids()) == seeded


@pytest.mark.parametrize("name", list(CREATING_CALLS))
async def test_creating_calls_are_retried_on_a_429(
    api: Api, seeded: tuple[list[str], list[str]], name: str
) -> None:
    call, match = CREATING_CALLS[name]
    contacts_before, segments_before = seeded
    api.fake.fail_next(1, status=429, retry_after=0, match=match)

    await api.call(call)

    assert statuses(api) == [429, 200]
    created_contacts = set(api.fake.contact_ids()) - set(contacts_before)
    created_segments = set(api.fake.segment_ids()) - set(segments_before)
    assert len(created_contacts) + len(created_segments) <= 1  # never twice


async def test_a_timed_out_create_is_not_repeated(api: Api) -> None:
    api.fake.delay_next(1, 1.0)

    with pytest.raises(APITimeoutError) as caught:
        await api.call(
            lambda c: c.with_options(timeout=0.2).contacts.create(email="new@example.com")
        )

    assert caught.value.request_sent is True
    assert api.fake.stats.total == 1


async def test_a_create_that_could_not_connect_is_retried(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="invent_async")
    other, close = await api.open_client(closed_port_url(), max_retries=1)
    try:
        with pytest.raises(APIConnectionError) as caught:
            await other.call(lambda c: c.contacts.create(email="new@example.com"))
    finally:
        await close()

    assert caught.value.request_sent is False
    retries = [r for r in caplog.records if "retrying POST /orgs/c/contacts" in r.getMessage()]
    assert len(retries) == 1


IDEMPOTENT_CALLS: dict[str, Callable[[AsyncInventClient], Any]] = {
    "add_segment (POST)": lambda c: c.contacts.add_segment("ct_1", "sg_1"),
    "remove_segment (DELETE)": lambda c: c.contacts.remove_segment("ct_1", "sg_1"),
    "update (PATCH)": lambda c: c.contacts.update("ct_1", name="Renamed"),
    "get (GET)": lambda c: c.contacts.get("ct_1"),
}


@pytest.mark.parametrize("name", list(IDEMPOTENT_CALLS))
async def test_idempotent_calls_are_retried_after_a_dropped_connection(api: Api, name: str) -> None:
    segment = api.fake.add_segment("VIP")
    contact = api.fake.add_contact(name="Jane")
    assert (contact.id, segment.id) == ("ct_1", "sg_1")
    api.fake.drop_next(1)

    result = await api.call(IDEMPOTENT_CALLS[name])

    assert result.id == contact.id
    assert statuses(api) == [None, 200]
    assert api.requests[0].fault == "drop"


async def test_a_timed_out_idempotent_call_is_retried(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    api.fake.delay_next(1, 1.0)

    got = await api.call(
        lambda c: c.with_options(timeout=0.3, max_retries=1).segments.get(segment.id)
    )

    assert got.id == segment.id
    assert api.fake.stats.total == 2


async def test_a_slow_response_past_the_attempt_timeout_is_a_timeout_error(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    api.fake.latency = 3.0

    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        await api.call(
            lambda c: c.with_options(timeout=0.2, max_retries=0).segments.get(segment.id)
        )
    elapsed = time.monotonic() - started
    api.fake.latency = 0.0

    assert isinstance(caught.value, APIConnectionError)
    assert (caught.value.method, caught.value.path) == ("GET", f"/orgs/c/segments/{segment.id}")
    assert elapsed < 2.0  # the client gave up long before the server would have answered


async def test_the_deadline_bounds_a_slow_call_without_an_attempt_timeout(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    api.fake.latency = 3.0

    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await api.call(
            lambda c: c.with_options(timeout=None, deadline=0.5).segments.get(segment.id)
        )
    elapsed = time.monotonic() - started
    api.fake.latency = 0.0

    assert elapsed < 2.5  # well before the server would have answered


# --------------------------------------------------------------------------- how long it waits


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_seconds_is_waited_before_the_retry(api: Api, status: int) -> None:
    segment = api.fake.add_segment("VIP")
    api.fake.fail_next(1, status=status, retry_after=0.3)

    await api.call(lambda c: c.segments.get(segment.id))

    assert statuses(api) == [status, 200]
    assert gap(api) >= 0.3 - SLACK


async def test_retry_after_as_an_http_date_is_waited_before_the_retry(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    # An HTTP-date has whole seconds: two seconds ahead is more than one second from now.
    when = datetime.now(UTC) + timedelta(seconds=2)
    api.fake.fail_next(1, status=429, retry_after=format_datetime(when, usegmt=True))

    await api.call(lambda c: c.segments.get(segment.id))

    assert statuses(api) == [429, 200]
    assert gap(api) >= 0.9


async def test_the_fakes_rate_limiter_is_waited_out(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    api.fake.retry_after_precision = 2
    api.fake.rate_limit_window = 0.4
    api.fake.rate_limit_per_minute = 150  # one request per 0.4 s window

    first = await api.call(lambda c: c.segments.get(segment.id))
    second = await api.call(lambda c: c.segments.get(segment.id))

    assert first == second
    assert statuses(api) == [200, 429, 200]
    assert gap(api, 0, 2) >= 0.4 - SLACK


async def test_a_retry_after_past_the_deadline_raises_at_once(api: Api) -> None:
    api.fake.fail_next(1, status=429, retry_after=30)

    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        await api.call(lambda c: c.with_options(deadline=0.5).segments.get("sg_1"))
    elapsed = time.monotonic() - started

    assert caught.value.retry_after == 30
    assert elapsed < 5
    assert statuses(api) == [429]


async def test_a_503_asking_to_wait_past_the_deadline_raises_at_once(api: Api) -> None:
    api.fake.fail_next(1, status=503, retry_after=30)

    started = time.monotonic()
    with pytest.raises(InternalServerError):
        await api.call(lambda c: c.with_options(deadline=0.5).segments.get("sg_1"))

    assert time.monotonic() - started < 5
    assert statuses(api) == [503]


async def test_a_huge_retry_after_fails_at_once_and_closes_the_gate_for_max_retry_after(
    api: Api,
) -> None:
    segment = api.fake.add_segment("VIP")
    api.fake.fail_next(1, status=429, retry_after=86400)

    with pytest.raises(RateLimitError) as caught:
        await api.call(lambda c: c.segments.get(segment.id))
    closed = api.client.rate_limit_stats()  # the sync one blocks this loop briefly: fine here

    assert caught.value.retry_after == 86400  # as the server sent it
    assert statuses(api) == [429]  # not retried
    assert 0 < closed.cooldown_remaining <= 300  # RateLimit().max_retry_after, not a day
    assert api.client.rate_limit_reset() == pytest.approx(closed.cooldown_remaining, abs=30)
    assert not api.client.rate_limit_stats().gate_closed
    assert await api.call(lambda c: c.segments.get(segment.id)) == segment  # no wait: reopened
    assert statuses(api) == [429, 200]


async def test_without_a_deadline_a_huge_retry_after_still_fails_the_call_at_once(
    fake: FakeInvent,
) -> None:
    fake.fail_next(1, status=429, retry_after="1e9")
    client = AsyncInventClient(API_KEY, base_url=fake.url, deadline=None, rate_limit=FAST_RATE)
    async with client:
        with anyio.fail_after(10), pytest.raises(RateLimitError) as caught:  # a wedged call hangs
            await client.segments.get("sg_1")

    assert caught.value.retry_after == 1e9
    assert [r.status for r in fake.requests] == [429]


@pytest.mark.parametrize("retry_after", ["-5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_negative_garbage_and_past_retry_afters_are_retried_as_before(
    api: Api, retry_after: str
) -> None:
    segment = api.fake.add_segment("VIP")
    api.fake.fail_next(1, status=429, retry_after=retry_after)

    assert await api.call(lambda c: c.segments.get(segment.id)) == segment
    assert statuses(api) == [429, 200]


# --------------------------------------------------------------------------- logging


async def test_retries_are_logged_without_the_api_key(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="invent_async")
    segment = api.fake.add_segment("VIP")
    api.fake.fail_next(1, status=503)

    await api.call(lambda c: c.segments.get(segment.id))

    retries = [
        r for r in caplog.records if r.name == "invent_async" and "retrying" in r.getMessage()
    ]
    assert len(retries) == 1
    message = retries[0].getMessage()
    assert f"GET /orgs/c/segments/{segment.id}" in message
    assert "503" in message
    assert API_KEY not in caplog.text


async def test_none_in_with_options_removes_the_limit_as_in_the_constructor(api: Api) -> None:
    segment = api.fake.add_segment("VIP")
    strict, close = await api.open_client(timeout=0.2, deadline=0.3, max_retries=0)
    api.fake.latency = 0.6
    try:
        with pytest.raises(APITimeoutError):  # left out: the client's limits hold
            await strict.call(lambda c: c.with_options(max_retries=0).segments.get(segment.id))
        found = await strict.call(
            lambda c: c.with_options(timeout=None, deadline=None).segments.get(segment.id)
        )
    finally:
        api.fake.latency = 0.0
        await close()

    assert found.id == segment.id


async def test_a_call_the_governor_would_hold_past_its_deadline_fails_once_unretried(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="invent_async")
    segment = api.fake.add_segment("VIP")
    slow, close = await api.open_client(
        rate_limit=RateLimit(per_minute=1, burst=1, shared=False), deadline=5
    )
    try:
        await slow.call(lambda c: c.segments.get(segment.id))  # takes the only token
        with pytest.raises(APITimeoutError) as caught:  # the next one is a minute away
            await slow.call(lambda c: c.segments.get(segment.id))
    finally:
        await close()

    assert caught.value.deadline_exceeded
    assert caught.value.request_sent is False
    assert caught.value.retry_after is not None
    assert 50 < caught.value.retry_after < 70  # the next token, about a minute away
    assert [r for r in caplog.records if "retrying" in r.getMessage()] == []
    assert len(api.requests) == 1


class DroppingServer:
    """A raw HTTP server that answers the first request of each connection, keeps the
    connection alive, then drops it when the next request arrives there (a server or proxy
    closing an idle keep-alive connection as the client reuses it)."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for answered in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                if answered:  # the second request on this connection: dropped unanswered
                    break
                assert head.startswith(b"GET ")
                body = (
                    b'{"id": "sg_1", "name": "VIP", "color": "blue", "contacts_count": 0, '
                    b'"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}'
                )
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_a_dropped_keep_alive_connection_is_not_resent_behind_the_sdks_back() -> None:
    """aiohttp re-sends a GET on a reused connection that turns out dropped, unseen: with
    max_retries=0 that is a request nobody asked for, outside the governor and the logs."""
    dropping = DroppingServer()
    async with dropping as url:
        client = AsyncInventClient(
            API_KEY, base_url=url, max_retries=0, rate_limit=RateLimit(shared=False)
        )
        async with client:
            await client.segments.get("sg_1")
            with pytest.raises(APIConnectionError) as caught:
                await client.segments.get("sg_1")  # on the kept-alive connection: dropped
            stats = client.rate_limit_stats()

    assert dropping.requests == 2  # one each: nothing sent twice
    assert stats is not None
    assert stats.acquired == dropping.requests
    assert caught.value.request_sent is True


async def test_a_dropped_keep_alive_connection_is_retried_by_the_sdk_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="invent_async")
    dropping = DroppingServer()
    async with dropping as url:
        client = AsyncInventClient(
            API_KEY, base_url=url, max_retries=2, rate_limit=RateLimit(shared=False)
        )
        async with client:
            await client.segments.get("sg_1")
            again = await client.segments.get("sg_1")
            stats = client.rate_limit_stats()

    assert again.id == "sg_1"
    assert dropping.requests == 3  # the dropped one, then the SDK's retry
    assert stats is not None
    assert stats.acquired == dropping.requests  # every one admitted
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 1
