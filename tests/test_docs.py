"""The documentation matches the code: README's endpoint tables are the resources' own.

Each public method of a resource group that sends one request documents its endpoint with
``@ENDPOINT.documents`` (``invent_async._endpoints``), which records the endpoint on the method
and puts its ````METHOD /orgs/{org_id}/...```` line into the docstring; methods that send many
requests (the bulk ones) document none. The README shows one table per group, rendered here
from the methods' signatures and recorded endpoints, so a method added, renamed or re-routed
without its row (or a row left behind) fails this test, which prints the table to paste. Every
documented endpoint must also be a route of FakeInvent, which is written independently from
the OpenAPI spec.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from invent_async import _models
from invent_async._codegen import Target, discover_targets
from invent_async._endpoints import Endpoint, endpoint_of
from invent_async.testing._routes import ROUTES

README = Path(__file__).parent.parent / "README.md"
PAGING = ("take", "page")
"""List methods' paging parameters, documented once in the README's Pagination section."""


def public_methods(cls: type) -> list[tuple[str, Callable[..., Any]]]:
    """The public methods of ``cls``, its own first, then its bases' (``AsyncContacts``'
    chat methods live in a base class), each in source order."""
    found: dict[str, Callable[..., Any]] = {}
    for owner in cls.__mro__[:-1]:  # not object
        for name, member in vars(owner).items():
            if not name.startswith("_") and callable(member):
                found.setdefault(name, member)
    return list(found.items())


def http_of(method: Callable[..., Any]) -> str | None:
    endpoint = endpoint_of(method)
    return None if endpoint is None else f"{endpoint.method} {endpoint.template}"


def call_shape(name: str, method: Callable[..., Any]) -> str:
    """``name(positional, with_default=value, keyword=, **options)``, paging left out."""
    shown = []
    for param in list(inspect.signature(method).parameters.values())[1:]:
        if param.name in PAGING:
            continue
        if param.kind is param.VAR_KEYWORD:
            shown.append(f"**{param.name}")
        elif param.kind is param.KEYWORD_ONLY:
            shown.append(f"{param.name}=")
        elif param.default is not param.empty:
            shown.append(f"{param.name}={param.default!r}")
        else:
            shown.append(param.name)
    return f"{name}({', '.join(shown)})"


def table(target: Target) -> str:
    rows = [f"| `client.{target.attr}` | HTTP |", "|---|---|"]
    many = []
    for name, method in public_methods(target.async_cls):
        http = http_of(method)
        if http is None:
            many.append(f"`{call_shape(name, method)}`")
            continue
        endpoint = endpoint_of(method)
        inferred = " *" if endpoint is not None and endpoint.inferred else ""
        rows.append(f"| `{call_shape(name, method)}`{inferred} | `{http}` |")
    if many:
        jobs = "many of the above (jobs: see Bulk tagging, and Import for `import_contacts`)"
        rows.append(f"| {', '.join(many)} | {jobs} |")
    return "\n".join(rows)


@pytest.mark.parametrize("target", discover_targets(), ids=lambda t: t.attr)
def test_the_readme_endpoint_table_is_the_resources_own(target: Target) -> None:
    expected = table(target)

    assert expected in README.read_text(encoding="utf-8"), (
        f"README.md's table for client.{target.attr} is stale; it should read:\n\n{expected}"
    )


@pytest.mark.parametrize("target", discover_targets(), ids=lambda t: t.attr)
def test_every_documented_endpoint_is_an_endpoint_of_the_api(target: Target) -> None:
    routes = {f"{route.method} {route.template}" for route in ROUTES}

    documented = [http_of(method) for _, method in public_methods(target.async_cls)]

    assert [http for http in documented if http is not None and http not in routes] == []


def documented(target: Target) -> list[tuple[Callable[..., Any], Endpoint]]:
    found = [(method, endpoint_of(method)) for _, method in public_methods(target.async_cls)]
    return [(method, endpoint) for method, endpoint in found if endpoint is not None]


@pytest.mark.parametrize("target", discover_targets(), ids=lambda t: t.attr)
def test_each_endpoint_method_shows_its_endpoint_after_its_summary(target: Target) -> None:
    for method, endpoint in documented(target):
        paragraphs = (inspect.getdoc(method) or "").split("\n\n")

        assert paragraphs[1] == endpoint.line, method.__qualname__
        assert sum(endpoint.line in p for p in paragraphs) == 1, method.__qualname__


@pytest.mark.parametrize("target", discover_targets(), ids=lambda t: t.attr)
def test_an_inferred_endpoint_says_so_in_its_docstring(target: Target) -> None:
    says = {
        method.__qualname__: "Inferred endpoint" in (inspect.getdoc(method) or "")
        for method, _ in documented(target)
    }

    assert says == {method.__qualname__: e.inferred for method, e in documented(target)}


DOCS = Path(__file__).parent.parent / "docs"


def test_the_api_reference_lists_every_exported_name() -> None:
    import invent_async
    import invent_async.testing

    api = (DOCS / "api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\.\. auto\w+:: ([\w.]+)$", api, re.MULTILINE))
    if re.search(r"^\.\. invent-models::$", api, re.MULTILINE):  # docs/conf.py's directive
        listed |= {f"invent_async.{name}" for name in _models.__all__}

    expected = {f"invent_async.{name}" for name in invent_async.__all__}
    expected |= {f"invent_async.testing.{name}" for name in invent_async.testing.__all__}
    assert sorted(expected - listed) == []


def test_every_page_is_in_the_table_of_contents() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")

    pages = {p.stem for p in DOCS.glob("*.md")} - {"index"}
    assert sorted(page for page in pages if f"\n{page}\n" not in index) == []


ROOT = DOCS.parent


def docs_harness(config: pytest.Config) -> ModuleType:
    """The repository's root ``conftest.py``, which runs the documentation's examples."""
    for plugin in config.pluginmanager.get_plugins():
        module = getattr(plugin, "__file__", None)
        if module is not None and Path(module).resolve() == (ROOT / "conftest.py").resolve():
            assert isinstance(plugin, ModuleType)
            return plugin
    raise AssertionError("the root conftest.py is not loaded")


def test_every_page_runs_as_shown_with_nothing_given(pytestconfig: pytest.Config) -> None:
    """Issue #23: an example a reader copies runs as shown. Every page (README.md and each
    of docs/*.md, none left out) runs in exactly one of the harness's page suites, whose
    set-up gives it no name and no ``INVENT_*`` variable: a name the page does not define is
    the reader's ``NameError``."""
    harness = docs_harness(pytestconfig)
    if not harness.EXAMPLES:
        pytest.skip("INVENT_DOCS_EXAMPLES=off: the examples do not run in this session")
    suites = (harness.docs, harness.redis_docs, harness.readme)
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        runs = [suite for suite in suites if suite.should_parse(page)]

        assert len(runs) == 1, page.name
        assert runs[0].setup in (harness.setup_page, harness.setup_redis_page), page.name

    namespace: dict[str, Any] = {}
    harness.setup_page(namespace)
    try:
        assert sorted(namespace) == ["__name__", "_docs"]
        assert [name for name in os.environ if name in harness.ENV] == []
    finally:
        harness.teardown(namespace)
