"""What ``import invent_async`` loads: an async-only program pays for neither the sync client
(and anyio) nor backoff, nor for a feature it does not use (the bulk and segment-sync jobs,
the kinds of shared rate budget, the converter before the first model is read or written, the
CLI, the fake), each of which loads on first use; nor for the models and the resource groups
before a client is created or one of their names is asked for. No timing here:
``benchmarks/bench_import.py`` measures what the import costs."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import typing

import pytest

import invent_async


def _loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def _inside(loaded: set[str], packages: set[str]) -> set[str]:
    """The modules of ``loaded`` that are one of ``packages`` or inside one."""
    return {m for m in loaded for p in packages if m == p or m.startswith(p + ".")}


LOADED_ON_FIRST_USE = {
    "invent_async._models",  # the models: a client created, or a model's name asked for
    "invent_async.resources",  # the resource groups and their endpoints: a client created
    "invent_async._endpoints",
    "invent_async._jobs",  # the bulk engine and segment sync
    "invent_async.resources._segment_jobs",
    "invent_async._fleet",  # the budget on Redis, and Redis's client
    "invent_async._redis_budget",
    "redis",
    "invent_async._host",  # the budget of this host's processes, in sqlite
    "invent_async._host_budget",
    "sqlite3",
    "invent_async._ratelimit",  # the governor of one process
    "invent_async._admission",
    "cattrs",  # the converter: built on the first model read or written
    "invent_async._sync",  # the blocking client, and anyio
    "anyio",
    "backoff",  # retries: the first one
    "opentelemetry",  # the application's, where it uses it
    "invent_async.cli",  # the command line, and click
    "click",
    "invent_async.testing",
    "multiprocessing",
    "orjson",  # the JSON backend: the first JSON encoded or decoded
}
"""What neither ``import invent_async`` nor the client class loads."""


@pytest.mark.parametrize(
    "code", ["import invent_async", "from invent_async import AsyncInventClient"]
)
def test_importing_the_client_loads_no_feature_before_its_first_use(code: str) -> None:
    loaded = _loaded_after(code)

    assert "invent_async._client" in loaded
    assert _inside(loaded, LOADED_ON_FIRST_USE) == set()


ONE_REQUEST = """
import asyncio
import sys

from invent_async import AsyncInventClient
from invent_async.testing import FakeInvent


async def main() -> None:
    async with FakeInvent(api_key="k") as fake:
        segment = fake.add_segment("VIP")
        async with AsyncInventClient("k", base_url=fake.url) as client:
            assert (await client.segments.get(segment.id)).name == "VIP"
            {then}


asyncio.run(main())
print(" ".join(sys.modules))
"""


def _run(script: str) -> list[str]:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()


def test_a_default_client_sends_a_request_without_loading_the_features_it_does_not_use() -> None:
    loaded = set(_run(ONE_REQUEST.format(then="pass"))[-1].split())

    assert {"cattrs", "invent_async._host"} <= loaded  # not vacuous: read, under the host budget
    not_used = {"invent_async._jobs", "invent_async._fleet", "redis", "invent_async._sync"}
    not_used |= {"anyio", "invent_async.cli", "click", "multiprocessing", "opentelemetry"}
    assert _inside(loaded, not_used) == set()


def test_a_bulk_job_loads_the_engine_and_its_report_names_the_public_module() -> None:
    job = "report = await client.contacts.bulk_add_segment(fake.add_contacts(2), segment.id)"
    show = "print(type(report).__module__, type(report).__name__, report.succeeded)"
    shown, loaded = _run(ONE_REQUEST.format(then=f"{job}\n            {show}"))

    assert shown == "invent_async BulkReport 2"  # published before the user named it
    assert {"invent_async._jobs.engine", "invent_async.resources._segment_jobs"} <= set(
        loaded.split()
    )


@pytest.mark.parametrize(
    ("code", "modules"),
    [
        ("from invent_async import BulkStream", {"invent_async._jobs.engine"}),
        ("from invent_async import SegmentSyncReport", {"invent_async._jobs.results"}),
        ("from invent_async import InventClient", {"invent_async._sync", "anyio"}),
        ("import invent_async\ninvent_async.AsyncInventClient('k')", {"invent_async._host"}),
        (
            "import invent_async\ninvent_async.AsyncInventClient("
            "'k', rate_limit=invent_async.RateLimit(redis_url='redis://127.0.0.1:1'))",
            {"invent_async._fleet", "redis"},
        ),
        ("import invent_async\ninvent_async.from_dict(invent_async.Board, {})", {"cattrs"}),
        ("import invent_async\ninvent_async.to_json(invent_async.Board())", {"cattrs"}),
        ("from invent_async import Contact", {"invent_async._models"}),
        ("import invent_async\ninvent_async.SegmentColor.RED", {"invent_async._models"}),
        (
            "import invent_async\ninvent_async.AsyncInventClient('k')",
            {"invent_async.resources.contacts", "invent_async._models"},
        ),
        ("from invent_async import AsyncSegments", {"invent_async.resources.segments"}),
    ],
    ids=[
        "bulk",
        "segment-sync",
        "sync-client",
        "host-budget",
        "fleet",
        "read",
        "write",
        "model",
        "enum",
        "client",
        "resource",
    ],
)
def test_each_feature_loads_on_first_use(code: str, modules: set[str]) -> None:
    assert modules <= _loaded_after(code)


def test_every_exported_name_is_listed_before_it_loads() -> None:
    code = "import invent_async\nassert set(invent_async.__all__) <= set(dir(invent_async))"

    assert "invent_async._jobs" not in _loaded_after(code)


@pytest.mark.parametrize("source", sorted(set(invent_async._LAZY.values())))
def test_a_package_loaded_on_first_use_publishes_the_names_exported_from_it(source: str) -> None:
    package = importlib.import_module(source, "invent_async")  # as a job or a client loads it
    exported = [name for name, where in invent_async._LAZY.items() if where == source]

    assert set(exported) <= set(invent_async.__all__)
    assert {
        name: getattr(package, name).__module__
        for name in exported
        if getattr(package, name).__module__ != "invent_async"
    } == {}


def test_importing_the_package_loads_neither_the_sync_client_nor_anyio_nor_backoff() -> None:
    loaded = _loaded_after("import invent_async")

    assert {"anyio", "backoff", "invent_async._sync"} & loaded == set()


def test_the_sync_client_loads_on_first_use() -> None:
    loaded = _loaded_after("from invent_async import InventClient")

    assert {"anyio", "invent_async._sync"} <= loaded


def test_every_public_name_is_importable_with_a_star_import() -> None:
    loaded = _loaded_after(
        "from invent_async import *\nassert InventClient and Pager and PortalThreadError"
    )

    assert "invent_async._sync" in loaded


def test_importing_the_package_does_not_load_opentelemetry_although_it_is_installed() -> None:
    assert "opentelemetry.trace" not in _loaded_after("import invent_async")
    # not vacuous: the API is installed here, and the SDK finds it where an application uses it
    assert "opentelemetry.trace" in _loaded_after("import opentelemetry.trace\nimport invent_async")


def test_spans_are_recorded_when_the_application_sets_up_opentelemetry_after_the_import() -> None:
    script = """
import asyncio

import invent_async
from invent_async.testing import FakeInvent

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


async def main() -> None:
    async with FakeInvent(api_key="k") as fake:
        segment = fake.add_segment("VIP")
        (contact,) = fake.add_contacts(1)
        async with invent_async.AsyncInventClient("k", base_url=fake.url) as client:
            await client.contacts.add_segment(contact, segment.id)


asyncio.run(main())
for span in sorted(exporter.get_finished_spans(), key=lambda span: span.name):
    print(span.name)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout

    assert out.splitlines() == [
        "POST /orgs/{org_id}/contacts/{contact_id}/segments/{segment_id}",
        "contacts.add_segment",
    ]


def test_the_lazily_loaded_models_are_those_the_models_module_exports() -> None:
    from invent_async import _models

    assert list(invent_async._MODELS) == _models.__all__
    assert {n for n, s in invent_async._LAZY.items() if s == "._models"} == set(_models.__all__)


MODELS_BEFORE_NAMED = """
import pickle
from datetime import UTC, datetime

import invent_async

client = invent_async.AsyncInventClient("k")  # loads the resources, which load the models
from invent_async import _models

contact = _models.Contact(
    id="ct_1", name="Ada", blocked=False, is_admin=False, channels=(), segments=(),
    created_at=datetime(2024, 1, 1, tzinfo=UTC), updated_at=datetime(2024, 1, 1, tzinfo=UTC),
)
print(repr(type(contact)), type(client.contacts).__module__, type(_models.SegmentColor.RED))
print(pickle.loads(pickle.dumps(contact)) == contact)
print(invent_async.Contact is _models.Contact, invent_async.AsyncContacts is type(client.contacts))
"""


def test_models_and_resources_loaded_by_a_client_name_the_public_module_before_they_are_named() -> (
    None
):
    out = _run(MODELS_BEFORE_NAMED)

    assert out == [
        "<class 'invent_async.Contact'> invent_async <enum 'SegmentColor'>",
        "True",
        "True True",
    ]


def test_the_lazily_loaded_names_resolve_to_the_objects_of_their_modules() -> None:
    from invent_async import _models, resources

    for name, source in invent_async._LAZY.items():
        if source in ("._models", ".resources"):
            module = _models if source == "._models" else resources
            assert getattr(invent_async, name) is getattr(module, name)
            assert getattr(invent_async, name).__module__ == "invent_async"


def test_a_lazily_loaded_model_behaves_as_before() -> None:
    segment = invent_async.from_dict(
        invent_async.Segment,
        {
            "id": "sg_1",
            "name": "VIP",
            "color": "red",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        },
    )

    assert segment.color is invent_async.SegmentColor.RED
    assert pickle.loads(pickle.dumps(segment)) == segment  # noqa: S301 - our own bytes
    assert repr(invent_async.Segment) == "<class 'invent_async.Segment'>"
    assert typing.get_type_hints(invent_async.Segment)["color"] == (
        invent_async.SegmentColor | str | None
    )


def test_the_client_class_annotations_resolve_once_a_client_is_created() -> None:
    script = """
import typing
import invent_async

invent_async.AsyncInventClient("k")  # the resources load, and are bound in invent_async
hints = typing.get_type_hints(invent_async.AsyncInventClient)
print(sorted((name, hint.__name__) for name, hint in hints.items()))
"""

    assert _run(script) == [
        "[('broadcasts', 'AsyncBroadcasts'), ('contacts', 'AsyncContacts'), "
        "('segments', 'AsyncSegments')]"
    ]
