"""What ``import invent_async`` loads: an async-only program pays for neither the sync client
(and anyio) nor backoff, which load on first use."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


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
