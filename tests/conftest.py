"""Shared fixtures: the asyncio backend, a FakeInvent server and clients bound to it."""

from __future__ import annotations

import gc
import inspect
from collections.abc import AsyncIterator, Generator, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from invent_async import AsyncInventClient, RateLimit, _converter
from invent_async._host_budget import BUDGET_DIR_ENV
from invent_async.testing import FakeInvent

API_KEY = "test-key-9f8e7d"
FAST_RATE = RateLimit(per_minute=1_000_000, burst=1_000)
"""The governor stays on the request path in tests, paced far above what a test sends."""


ANYIO_HAS_AUTO_MODE = tuple(int(part) for part in version("anyio").split(".")[:2]) >= (4, 11)
"""anyio's pytest plugin has the ``anyio_mode`` option (``auto`` in pyproject.toml) from 4.11.

Before (``nox -s tests_lowest``: the package supports anyio 4.4), the two hooks below stand
in for it: they register the option and, in auto mode, do what anyio's auto mode does, which
is what ``@pytest.mark.anyio`` does, to every coroutine test function.
"""

if not ANYIO_HAS_AUTO_MODE:

    def pytest_addoption(parser: pytest.Parser) -> None:
        parser.addini("anyio_mode", 'AnyIO plugin mode ("strict" or "auto")', default="strict")

    @pytest.hookimpl(wrapper=True)
    def pytest_pycollect_makeitem(
        collector: pytest.Module | pytest.Class, name: str, obj: object
    ) -> Generator[None, object, object]:
        if collector.config.getini("anyio_mode") == "auto" and collector.istestfunction(obj, name):
            inner = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)
            if inspect.iscoroutinefunction(inner):
                pytest.mark.usefixtures("anyio_backend")(obj)
        return (yield)


@pytest.fixture(autouse=True)
def host_budgets(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The host budgets of one test (``INVENT_BUDGET_DIR``): a directory of its own, so that a
    FakeInvent on a port an earlier test used starts with an empty budget (its 429 gate, its
    booked slots), and nothing is written into the real home directory."""
    directory = tmp_path_factory.mktemp("budgets")
    monkeypatch.setenv(BUDGET_DIR_ENV, str(directory))
    return directory


@pytest.fixture(autouse=True)
def process_primitives(request: pytest.FixtureRequest) -> Iterator[None]:
    """Around a test of a module that starts processes with ``multiprocessing``: collect the
    garbage before and after it, here, so that no queue, event or barrier of an earlier test is
    finalized by a collection that falls inside the resource tracker (Python 3.12.1 then warns
    "ResourceTracker called reentrantly", an unraisable warning that fails a later test)."""
    module = getattr(request.node, "module", None)
    starts_processes = module is not None and "multiprocessing" in vars(module)
    if starts_processes:
        gc.collect()
    yield
    if starts_processes:
        gc.collect()


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
