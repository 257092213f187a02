"""Print the trace of a few calls against an embedded FakeInvent (needs opentelemetry-sdk)."""

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from invent_async import AsyncInventClient
from invent_async.testing import FakeInvent

exporter = InMemorySpanExporter()  # or ConsoleSpanExporter(), or an OTLP exporter
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


async def main() -> None:
    async with FakeInvent(api_key="k") as fake:
        segment = fake.add_segment("VIP")
        ids = fake.add_contacts(3)
        fake.fail_next(1, status=503)  # the first call is retried
        async with AsyncInventClient("k", base_url=fake.url) as client:
            with trace.get_tracer("example").start_as_current_span("handle request"):
                await client.contacts.add_segment(ids[0], segment.id)
                await client.contacts.bulk_add_segment(ids, segment.id)


asyncio.run(main())
SHOWN = ("http.response.status_code", "error.type", "http.request.resend_count")
SHOWN += ("invent.governor.wait", "invent.bulk.succeeded", "invent.bulk.failed")
spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)


def show(parent: int | None, depth: int) -> None:
    for span in spans:
        if (span.parent.span_id if span.parent else None) != parent:
            continue
        attrs = span.attributes or {}
        shown = " ".join(
            f"{k}={attrs[k]:.3g}" if isinstance(attrs[k], float) else f"{k}={attrs[k]}"
            for k in SHOWN
            if k in attrs
        )
        ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        print(f"{'  ' * depth}{span.name}  {ms:.1f} ms  {shown}")
        show(span.context.span_id, depth + 1)


show(None, 0)
