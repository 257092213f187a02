"""The pytest plugin for your own tests: a running FakeInvent and clients bound to it.

Installed with the package as the ``invent_async`` pytest plugin (a ``pytest11`` entry
point), so the fixtures are there in any project that has ``invent-async`` and ``pytest``
installed. It only *defines* fixtures: no hook changes how tests are collected or run, no
option is added, and nothing runs until a test asks for one of them, so loading it
automatically surprises no one. ``-p no:invent_async`` turns it off.

Fixtures (each one per test):

- ``invent_fake``: a :class:`~invent_async.testing.FakeInvent` serving on 127.0.0.1 from a
  background thread, so it serves sync tests, asyncio tests and anyio tests alike. Seed it
  (``invent_fake.add_contact(id="ct_123", name="Ada")``), inject faults
  (``invent_fake.fail_next(...)``) and read what was sent (``invent_fake.requests``).
- ``invent_api_key``: the key the fake accepts (override the fixture to choose another).
- ``invent_env``: ``INVENT_API_KEY`` and ``INVENT_BASE_URL`` pointing at ``invent_fake`` for
  the test, so code that builds its own ``AsyncInventClient()`` or ``InventClient()`` (your
  application's) talks to the fake unchanged; ``INVENT_BUDGET_DIR`` names a directory of the
  test's own, so the host-wide rate budget stays out of your home directory.
- ``invent_client``: an :class:`~invent_async.AsyncInventClient` bound to the fake, closed
  after the test. A plain (synchronous) fixture on purpose: an async fixture runs on the
  loop of the async plugin that owns it, which need not be the test's (pytest-asyncio's
  loop scopes, an anyio test beside pytest-asyncio's auto mode), and a client is bound to
  the loop of its first call. This one makes no call: it binds to the test's loop whichever
  plugin runs the test (pytest-asyncio in strict or auto mode and any loop scope, or anyio's
  plugin with the ``asyncio`` backend: the SDK runs on asyncio), and is closed on that loop
  after the test.
- ``invent_sync_client``: an :class:`~invent_async.InventClient` bound to the fake.

Both clients pace requests far above the API's 500/minute (``INVENT_TEST_RATE_LIMIT``), so a
test of many calls is not slowed down; build your own client on ``invent_fake.url`` to test
against the real limit (``FakeInvent(rate_limit_per_minute=...)`` answers 429 beyond it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest

from .._client import AsyncInventClient, close_from_blocking_code
from .._host_budget import BUDGET_DIR_ENV
from .._limits import RateLimit
from .._sync import InventClient
from ._fake import FakeInvent
from ._threaded import ThreadedFake

__all__ = ["INVENT_TEST_RATE_LIMIT"]

INVENT_TEST_RATE_LIMIT: Final = RateLimit(per_minute=1_000_000, burst=1_000, shared=False)
"""The fixtures' clients' rate limit: far above what a test sends, not shared with others."""


@pytest.fixture
def invent_api_key() -> str:
    """The API key ``invent_fake`` accepts and the fixtures' clients send."""
    return "invent-test-key"


@pytest.fixture
def invent_fake(invent_api_key: str) -> Iterator[FakeInvent]:
    """A running FakeInvent (its own loop in a thread: for sync and async tests alike)."""
    served = ThreadedFake(api_key=invent_api_key)
    fake = served.start()
    try:
        yield fake
    finally:
        served.stop()


@pytest.fixture
def invent_env(
    invent_fake: FakeInvent,
    invent_api_key: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> FakeInvent:
    """``INVENT_API_KEY`` and ``INVENT_BASE_URL`` set to ``invent_fake`` for the test, and
    ``INVENT_BUDGET_DIR`` to a directory of the test's own: the host-wide rate budget of the
    application's clients stays out of the home directory, and no 429 cool-down of one test
    reaches another."""
    monkeypatch.setenv("INVENT_API_KEY", invent_api_key)
    monkeypatch.setenv("INVENT_BASE_URL", invent_fake.url)
    monkeypatch.setenv(BUDGET_DIR_ENV, str(tmp_path_factory.mktemp("invent-budget")))
    return invent_fake


@pytest.fixture
def invent_sync_client(invent_fake: FakeInvent, invent_api_key: str) -> Iterator[InventClient]:
    """An InventClient bound to ``invent_fake`` (closed after the test)."""
    with InventClient(
        invent_api_key, base_url=invent_fake.url, rate_limit=INVENT_TEST_RATE_LIMIT
    ) as client:
        yield client


@pytest.fixture
def invent_client(invent_fake: FakeInvent, invent_api_key: str) -> Iterator[AsyncInventClient]:
    """An AsyncInventClient bound to ``invent_fake``, closed after the test on the loop the
    test used it on (a plain fixture: it suits every async plugin and loop scope)."""
    client = AsyncInventClient(
        invent_api_key, base_url=invent_fake.url, rate_limit=INVENT_TEST_RATE_LIMIT
    )
    try:
        yield client
    finally:
        close_from_blocking_code(client)
