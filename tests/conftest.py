"""Shared fixtures: the asyncio backend, a FakeInvent server and clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from invent_async import AsyncInventClient, RateLimit, _converter
from invent_async.testing import FakeInvent

API_KEY = "test-key-9f8e7d"
FAST_RATE = RateLimit(per_minute=1_000_000, burst=1_000)
"""The governor stays on the request path in tests, paced far above what a test sends."""


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """aiohttp and backoff run on asyncio only."""
    return "asyncio"


@pytest.fixture
async def fake() -> AsyncIterator[FakeInvent]:
    """A fresh FakeInvent on 127.0.0.1 for one test."""
    async with FakeInvent(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeInvent) -> AsyncIterator[AsyncInventClient]:
    """An AsyncInventClient talking to ``fake`` (5 s attempts, 20 s deadline, fast governor)."""
    async with AsyncInventClient(
        API_KEY, base_url=fake.url, timeout=5, deadline=20, rate_limit=FAST_RATE
    ) as c:
        yield c


@pytest.fixture(params=["orjson", "json"])
def json_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test once with orjson and once with the standard library's json."""
    previous = _converter.json_backend()
    _converter.set_json_backend(request.param)
    try:
        yield request.param
    finally:
        _converter.set_json_backend(previous)
