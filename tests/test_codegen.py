"""The sync-client generator: drift check, one test per mapping rule, and refusals.

Rule tests feed the generator a small async class written to a temporary module, then run
the generated sync class for real, through a :class:`Runtime` (its own event-loop thread),
so they check behaviour, not just text. Refusal tests feed it classes with something it has
no rule for and expect :class:`CodegenError`, never a silently skipped method.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shutil
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from invent_async import AsyncInventClient, InventClient, _codegen
from invent_async._codegen import CodegenError, Target
from invent_async._codegen._members import ASYNC_WORDING, sync_docstring
from invent_async._sync._bridge import Bridge
from invent_async._sync._client import SyncClient
from invent_async._sync._runtime import Runtime

RULES_MODULE = '''
"""Async shapes, one method per generator rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Literal, overload

from invent_async import AsyncPager
from invent_async._endpoints import Endpoint
from invent_async._protocol import PageInfo

CLOSED: list[str] = []
PING = Endpoint("GET", "/orgs/{org_id}/widgets/{name}", "widgets.ping")


class AsyncWidgets:
    """Widgets of the client (a resource group)."""

    def __init__(self) -> None:
        self._made = 0

    async def get(self, name: str, *, size: int = 1) -> str:
        """One widget, described.

        Args:
            name: Which widget.
        """
        await asyncio.sleep(0)
        return f"{name}:{size}"

    async def delete(self, name: str, /) -> None:
        """Delete a widget."""
        CLOSED.append(f"deleted {name}")

    @PING.documents
    async def ping(self, name: str) -> str:
        """Ping a widget (its endpoint documented by its declaration).

        Args:
            name: Which widget.
        """
        return f"pong {name}"

    async def total(self, xs: AsyncIterable[int] | list[int], *extra: int) -> int:
        """Sums numbers that may come from an async iterable."""
        if isinstance(xs, list):
            return sum([*xs, *extra])
        return sum([x async for x in xs]) + sum(extra)

    def numbers(self, *, take: int = 2) -> AsyncPager[int]:
        """A list method: 0 to 4, ``take`` per page."""
        return AsyncPager(_pages, take=take)

    @overload
    async def measure(self, name: str, *, exact: Literal[True]) -> float: ...

    @overload
    async def measure(self, name: str, *, exact: Literal[False] = False) -> int: ...

    async def measure(self, name: str, *, exact: bool = False) -> float | int:
        """Overloads: a float when exact, else an int."""
        return len(name) + 0.5 if exact else len(name)


async def _pages(page: int, take: int) -> tuple[tuple[int, ...], PageInfo]:
    start = (page - 1) * take
    items = tuple(range(start, min(start + take, 5)))
    return items, PageInfo(count=5, page=page, take=take)
'''


@pytest.fixture
def module_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Writes source to an importable module with a fresh name; returns the module."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def make(source: str) -> types.ModuleType:
        name = f"codegen_case_{len(names)}_{id(tmp_path):x}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        names.append(name)
        return importlib.import_module(name)

    yield make
    for name in names:
        sys.modules.pop(name, None)


def load_generated(text: str) -> types.ModuleType:
    """Execute generated text as a module of ``invent_async._sync`` (for its relative imports)."""
    module = types.ModuleType("invent_async._sync._generated_case")
    module.__package__ = "invent_async._sync"
    exec(compile(text, "<generated>", "exec"), module.__dict__)  # noqa: S102 - our own output
    return module


class FakeRoot:
    """Stands in for the async client: the generated class reaches ``.widgets`` on it."""

    def __init__(self, widgets: object) -> None:
        self.widgets = widgets

    async def aclose(self) -> None:
        return None


# ---------------------------------------------------------------------- the real surface


def test_the_committed_sync_module_is_up_to_date() -> None:
    assert _codegen.check() is None, "run: python -m invent_async._codegen"


def test_check_reports_a_stale_file_with_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "_generated.py"
    stale.write_text(_codegen.OUTPUT.read_text().replace("def add_segment(", "def tag("))

    assert _codegen.main(["--check", "--output", str(stale)]) == 1
    out = capsys.readouterr().out
    assert "-    def tag(" in out
    assert "+    def add_segment(" in out
    assert _codegen.main(["--output", str(stale)]) == 0
    assert _codegen.main(["--check", "--output", str(stale)]) == 0


def test_the_resource_groups_are_found_on_the_async_client() -> None:
    targets = _codegen.discover_targets()

    assert [(t.attr, t.async_cls.__name__, t.sync_name) for t in targets] == [
        ("contacts", "AsyncContacts", "Contacts"),
        ("segments", "AsyncSegments", "Segments"),
        ("broadcasts", "AsyncBroadcasts", "Broadcasts"),
    ]


def test_the_generated_module_starts_with_the_do_not_edit_header() -> None:
    first = _codegen.OUTPUT.read_text().splitlines()[0]

    assert first == "# generated by invent_async._codegen; do not edit"


# ---------------------------------------------------------------------- one test per rule


@pytest.fixture
def rules(module_factory: Any) -> Iterator[tuple[str, types.ModuleType, types.ModuleType, Any]]:
    """(generated text, async module, generated module, the sync Widgets on a live runtime)."""
    source = module_factory(RULES_MODULE)
    text = _codegen.generate([Target("widgets", source.AsyncWidgets, "Widgets")])
    generated = load_generated(text)
    root = FakeRoot(source.AsyncWidgets())
    runtime = Runtime(lambda: cast(AsyncInventClient, root))
    try:
        yield text, source, generated, generated.Widgets(Bridge(runtime))
    finally:
        runtime.close()


@pytest.mark.parametrize(
    "line",
    [
        "def get(self, name: str, *, size: int = 1) -> str:",
        "def delete(self, name: str, /) -> None:",
        "def total(self, xs: AsyncIterable[int] | list[int], *extra: int) -> int:",
        "def numbers(self, *, take: int = 2) -> Pager[int]:",
        "@overload\n    def measure(self, name: str, *, exact: Literal[True]) -> float: ...",
        "@overload\n    def measure(self, name: str, *, exact: Literal[False] = False) -> int: ...",
        "def measure(self, name: str, *, exact: bool = False) -> float | int:",
    ],
)
def test_each_rule_maps_the_signature(rules: tuple[str, Any, Any, Any], line: str) -> None:
    text = rules[0]

    assert f"    {line}" in text


def test_docstrings_say_what_is_right_for_sync() -> None:
    """No generated docstring tells a sync user to ``await``, ``async with`` or ``async for``."""
    tree = ast.parse(_codegen.OUTPUT.read_text())
    docs = [
        (node.name, ast.get_docstring(node) or "")
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef | ast.FunctionDef)
    ]

    assert len(docs) > 20
    assert [(name, m.group()) for name, doc in docs if (m := ASYNC_WORDING.search(doc))] == []


@pytest.mark.parametrize(
    ("async_text", "sync_text"),
    [
        ("``await pager.first_page()``", "``pager.first_page()``"),
        (
            "``async with s as r:`` then ``async for x in r:``",
            "``with s as r:`` then ``for x in r:``",
        ),
        ("An async-iterable pager", "An iterable pager"),
        ("returns an :class:`AsyncPager`", "returns an :class:`Pager`"),
        ("any iterable or async iterable", "any iterable or async iterable"),
    ],
)
def test_the_generator_rewords_async_docstrings(async_text: str, sync_text: str) -> None:
    assert sync_docstring(async_text) == sync_text


def test_docstrings_are_copied_verbatim(rules: tuple[str, Any, Any, Any]) -> None:
    _, source, generated, _ = rules

    for name in ("get", "delete", "total", "numbers", "measure"):
        assert (
            getattr(generated.Widgets, name).__doc__ == getattr(source.AsyncWidgets, name).__doc__
        )
    assert generated.Widgets.__doc__ == source.AsyncWidgets.__doc__


def test_an_endpoints_method_shows_its_line_in_the_sync_docstring_too(
    rules: tuple[str, Any, Any, Any],
) -> None:
    text, source, generated, widgets = rules
    doc = inspect.getdoc(generated.Widgets.ping) or ""

    assert generated.Widgets.ping.__doc__ == source.AsyncWidgets.ping.__doc__
    assert doc.split("\n\n")[1] == "``GET /orgs/{org_id}/widgets/{name}``"
    assert "@PING" not in text
    assert widgets.ping("w") == "pong w"


def test_a_coroutine_becomes_a_blocking_call(rules: tuple[str, Any, Any, Any]) -> None:
    _, source, _, widgets = rules

    assert widgets.get("a", size=3) == "a:3"
    assert widgets.delete("b") is None
    assert source.CLOSED == ["deleted b"]
    assert (widgets.measure("abc"), widgets.measure("abc", exact=True)) == (3, 3.5)


def test_a_pager_becomes_a_blocking_pager_and_crosses_to_the_loop_as_its_async_pager(
    rules: tuple[str, Any, Any, Any],
) -> None:
    widgets = rules[3]

    assert list(widgets.numbers()) == [0, 1, 2, 3, 4]
    assert [page.items for page in widgets.numbers(take=3).pages()] == [(0, 1, 2), (3, 4)]
    assert widgets.total(widgets.numbers()) == 10  # for_loop(): consumed on the loop
    assert widgets.total([1, 2], 5) == 8  # a plain iterable passes through


def test_the_client_mirrors_the_async_clients_shared_arguments_and_their_docs() -> None:
    text = _codegen.OUTPUT.read_text()
    doc = InventClient.__doc__ or ""
    taken = list(inspect.signature(InventClient.__init__).parameters)[1:]

    assert "class InventClient(SyncClient):" in text
    assert taken == [
        name
        for name in inspect.signature(AsyncInventClient.__init__).parameters
        if name not in ("self", "session", "transport")
    ]
    # cleandoc: Python 3.13 strips docstrings' indentation at compile time, 3.11 and 3.12 not
    described = re.findall(r"^    (\w+):", inspect.cleandoc(doc), flags=re.MULTILINE)
    assert described == taken
    assert doc.startswith((SyncClient.__doc__ or "").rstrip())


def test_a_client_whose_init_lacks_a_setting_is_refused(module_factory: Any) -> None:
    source = module_factory(
        '''
        from __future__ import annotations


        class AsyncThin:
            """A client that takes only a key.

            Args:
                api_key: The key.
            """

            def __init__(self, api_key: str | None = None) -> None:
                self.key = api_key
        '''
    )

    with pytest.raises(CodegenError, match=r"does not take Settings.build's \['org_id'"):
        _codegen.generate([], client_cls=source.AsyncThin)


def test_the_generated_text_is_ruff_clean(rules: tuple[str, Any, Any, Any]) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed here (the lint session checks the committed file)")
    name = str(_codegen.OUTPUT)
    for command in (["format", "--check", "--diff"], ["check", "--no-fix"]):
        done = subprocess.run(
            [ruff, *command, "--stdin-filename", name, "-"],
            input=rules[0],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------- refusals

REFUSALS = {
    "a plain method returning a plain value": (
        '''
        def size(self) -> int:
            """How many."""
            return 1
        ''',
        "no rule for a plain 'def' returning 'int'",
    ),
    "an async generator": (
        '''
        async def count(self) -> AsyncIterator[int]:
            """An async generator: no sync rule."""
            yield 1
        ''',
        "no rule maps AsyncIterator in this position",
    ),
    "an async context manager": (
        '''
        @asynccontextmanager
        async def opened(self) -> AsyncIterator[str]:
            """An async context manager: no sync rule."""
            yield "open"
        ''',
        "no rule for decorators ['asynccontextmanager']",
    ),
    "a plain method returning an awaitable": (
        '''
        def later(self) -> Awaitable[int]:
            """An awaitable from a plain def: no sync rule."""
            return asyncio.sleep(0, 1)
        ''',
        "no rule maps Awaitable in this position",
    ),
    "a plain method returning an async iterator": (
        '''
        def watch(self) -> AsyncIterator[int]:
            """An async iterator from a plain def: no sync rule."""
            return _gen()
        ''',
        "no rule maps AsyncIterator in this position",
    ),
    "a coroutine returning an async iterator": (
        '''
        async def watch(self) -> AsyncIterator[int]:
            """Not a generator: awaiting it gives an async iterator."""
            return _gen()
        ''',
        "no rule maps AsyncIterator in this position",
    ),
    "an async object inside a result": (
        '''
        async def children(self) -> list[AsyncThings]:
            """Returns async objects."""
            return [self]
        ''',
        "no rule maps codegen_case",
    ),
    "a property": (
        '''
        @property
        def label(self) -> str:
            """A property."""
            return "x"
        ''',
        "no rule for decorators ['property']",
    ),
    "a static method": (
        '''
        @staticmethod
        async def make() -> int:
            """A static method."""
            return 1
        ''',
        "no rule for decorators ['staticmethod']",
    ),
    "an endpoint's documents with another decorator": (
        '''
        @PING.documents
        @_same
        async def get(self) -> int:
            """Get."""
            return 1
        ''',
        "no rule for decorators ['documents', '_same']",
    ),
    "a documents decorator that is not an endpoint's": (
        '''
        @NOT_AN_ENDPOINT.documents
        async def get(self) -> int:
            """Get."""
            return 1
        ''',
        "@NOT_AN_ENDPOINT.documents is not an endpoint's",
    ),
    "a lone overload": (
        '''
        @overload
        async def get(self, name: str) -> int: ...

        async def get(self, name: str) -> int:
            """Get."""
            return 1
        ''',
        "one @overload alone",
    ),
    "overloads without an implementation": (
        """
        @overload
        async def get(self, name: str) -> int: ...

        @overload
        async def get(self, name: int) -> int: ...
        """,
        "@overload signatures without an implementation",
    ),
    "a class attribute": ("limit: int = 5", "no rule for a public int"),
    "a public instance attribute": (
        """
        def __init__(self) -> None:
            self.name = "x"
        """,
        "no rule for the public attribute 'name'",
    ),
    "a method without a docstring": (
        """
        async def get(self) -> int:
            return 1
        """,
        "without a docstring",
    ),
    "an unannotated parameter": (
        '''
        async def get(self, name) -> int:  # type: ignore[no-untyped-def]
            """Get."""
            return 1
        ''',
        "parameter 'name' is not annotated",
    ),
    "an unannotated result": (
        '''
        async def get(self):  # type: ignore[no-untyped-def]
            """Get."""
            return 1
        ''',
        "the return type is not annotated",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_the_generator_fails_on_what_it_has_no_rule_for(module_factory: Any, case: str) -> None:
    member, message = REFUSALS[case]
    source = module_factory(
        "from __future__ import annotations\n"
        "import asyncio\n"
        "from collections.abc import AsyncIterator, Awaitable\n"
        "from contextlib import asynccontextmanager\n"
        "from typing import overload\n"
        "from invent_async._endpoints import Endpoint\n\n"
        "PING = Endpoint('GET', '/orgs/{org_id}/things', 'things.ping')\n\n\n"
        "def _same(function: object) -> object:\n"
        "    return function\n\n\n"
        "class _NotAnEndpoint:\n"
        "    def documents(self, function: object) -> object:\n"
        "        return function\n\n\n"
        "NOT_AN_ENDPOINT = _NotAnEndpoint()\n\n\n"
        "async def _gen() -> AsyncIterator[int]:\n"
        "    yield 1\n\n\n"
        "class AsyncThings:\n"
        '    """Things."""\n\n' + textwrap.indent(textwrap.dedent(member).strip(), "    ") + "\n"
    )

    with pytest.raises(CodegenError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _codegen.generate([Target("things", source.AsyncThings, "Things")])
