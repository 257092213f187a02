"""The whole request path over an in-memory transport: governor, retries, timeouts, errors.

The client is given a :class:`MockTransport` (the transport seam), so these tests script each
response exactly and see each attempt exactly as the pipeline hands it over, with no socket.
The same behaviours are tested against FakeInvent over real loopback HTTP in
``test_client_*.py``; this file pins the seam itself.
"""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from invent_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncInventClient,
    AsyncTransport,
    ClientClosedError,
    Contact,
    GovernorStats,
    NotFoundError,
    RateLimit,
    RawResponse,
    TransportRequest,
)
from invent_async.testing import MockTransport, mock_response

API_KEY = "key-in-memory-1"
NOW = "2026-01-01T00:00:00Z"
CONTACT = {
    "id": "ct_1",
    "name": "Jane",
    "blocked": False,
    "is_admin": False,
    "channels": [],
    "segments": [],
    "created_at": NOW,
    "updated_at": NOW,
}


def scripted(*responses: RawResponse | Exception) -> Callable[[TransportRequest], RawResponse]:
    """A handler answering with ``responses`` in turn (an exception is raised instead)."""
    queue = list(responses)

    def answer(request: TransportRequest) -> RawResponse:
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return answer


def client_for(transport: MockTransport, **options: Any) -> AsyncInventClient:
    settings: dict[str, Any] = {
        "base_url": "https://api.useinvent.com",
        "rate_limit": RateLimit(per_minute=60_000, burst=10),
        "deadline": 10,
        **options,
    }
    return AsyncInventClient(API_KEY, transport=transport, **settings)


async def test_a_call_retried_through_a_503_and_a_429_reaches_the_transport_as_built() -> None:
    transport = MockTransport(
        scripted(
            mock_response(503, {"message": "busy"}),
            mock_response(429, {"message": "slow down"}, headers={"Retry-After": "0.2"}),
            mock_response(200, CONTACT),
        )
    )
    async with client_for(transport) as client:
        contact = await client.contacts.add_segment("ct_1", "sg 1")
        stats = client.rate_limit_stats()

    assert isinstance(contact, Contact)
    assert contact.id == "ct_1"
    sent = transport.requests
    assert [r.method for r in sent] == ["POST"] * 3
    assert {r.url for r in sent} == {
        "https://api.useinvent.com/orgs/c/contacts/ct_1/segments/sg%201"
    }
    assert {r.path for r in sent} == {"/orgs/c/contacts/ct_1/segments/sg%201"}
    assert all(r.headers["Authorization"] == f"Bearer {API_KEY}" for r in sent)
    assert all(r.body is None and "Content-Type" not in r.headers for r in sent)
    assert isinstance(stats, GovernorStats)
    assert (stats.acquired, stats.rate_limited) == (3, 1)
    assert transport.closed


async def test_the_governor_holds_the_retry_after_a_429_until_retry_after_has_passed() -> None:
    times: list[float] = []
    answers = scripted(
        mock_response(429, {"message": "slow down"}, headers={"Retry-After": "0.3"}),
        mock_response(200, CONTACT),
    )

    def answer(request: TransportRequest) -> RawResponse:
        times.append(time.monotonic())
        return answers(request)

    async with client_for(MockTransport(answer)) as client:
        await client.contacts.get("ct_1")

    assert times[1] - times[0] >= 0.3


async def test_an_error_status_is_raised_typed_and_not_retried() -> None:
    transport = MockTransport(scripted(mock_response(404, {"message": "Contact not found"})))
    async with client_for(transport) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.contacts.get("ct_404")

    assert caught.value.status == 404
    assert caught.value.path == "/orgs/c/contacts/ct_404"
    assert "Contact not found" in str(caught.value)
    assert len(transport.requests) == 1


async def test_a_creating_call_is_retried_only_when_the_request_was_not_sent() -> None:
    unsent = APIConnectionError("refused", method="POST", path="/x", request_sent=False)
    sent = APIConnectionError("reset", method="POST", path="/x", request_sent=True)
    retried = MockTransport(scripted(unsent, mock_response(200, CONTACT)))
    not_retried = MockTransport(scripted(sent, mock_response(200, CONTACT)))

    async with client_for(retried) as client:
        created = await client.contacts.create(email="jane@example.com")
    async with client_for(not_retried) as client:
        with pytest.raises(APIConnectionError, match="reset"):
            await client.contacts.create(email="jane@example.com")

    assert created.id == "ct_1"
    assert len(retried.requests) == 2
    assert len(not_retried.requests) == 1
    assert retried.requests[0].headers["Content-Type"] == "application/json"
    assert retried.requests[0].body == b'{"channel":{"email":"jane@example.com"}}'


async def test_an_attempt_outlasting_its_timeout_is_a_timeout_and_the_deadline_ends_the_call() -> (
    None
):
    async def never(request: TransportRequest) -> RawResponse:
        await asyncio.sleep(30)
        raise AssertionError("the attempt should have timed out")

    transport = MockTransport(never)
    async with client_for(transport, timeout=0.05, deadline=2) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.segments.get("sg_1")
        took = time.monotonic() - started

    assert len(transport.requests) >= 2  # timed out, retried, timed out
    assert took < 5  # bounded by the deadline, not by the handler's 30 s


async def test_a_call_waiting_for_the_governor_when_the_client_closes_sends_nothing() -> None:
    transport = MockTransport(scripted(mock_response(200, CONTACT), mock_response(200, CONTACT)))
    client = client_for(transport, rate_limit=RateLimit(per_minute=60, burst=1))
    await client.contacts.get("ct_1")
    waiting = asyncio.create_task(client.contacts.get("ct_1"))  # paced: a second from now
    await asyncio.sleep(0.1)

    await client.aclose()

    with pytest.raises(ClientClosedError):
        await waiting
    assert len(transport.requests) == 1


async def test_the_headers_a_transport_gets_are_read_only_and_hide_the_key() -> None:
    transport = MockTransport(scripted(mock_response(200, CONTACT)))
    async with client_for(transport) as client:
        await client.contacts.get("ct_1")
    headers = transport.requests[0].headers

    with pytest.raises(TypeError):
        headers["X-Extra"] = "1"  # type: ignore[index]
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    for shown in (repr(headers), repr(headers.copy()), repr(transport.requests[0])):
        assert API_KEY not in shown
        assert "<redacted>" in shown


async def test_the_client_takes_only_a_transport_and_not_together_with_a_session() -> None:
    transport = MockTransport(scripted())
    assert isinstance(transport, AsyncTransport)
    with pytest.raises(TypeError, match="transport must implement AsyncTransport"):
        AsyncInventClient(API_KEY, transport=object())  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TypeError, match="not both"):
            AsyncInventClient(API_KEY, transport=transport, session=session)


async def test_a_collected_unclosed_client_with_a_transport_warns() -> None:
    transport = MockTransport(scripted(mock_response(200, CONTACT)))
    client = client_for(transport)
    await client.contacts.get("ct_1")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client
        gc.collect()

    assert [str(w.message) for w in caught if w.category is ResourceWarning]
    assert "AsyncInventClient was not closed" in str(caught[0].message)
