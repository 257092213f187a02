"""The OpenTelemetry SDK, in memory, for the observability tests: the ``otel`` fixture.

It sets a global tracer provider (spans into an ``InMemorySpanExporter``) and a global meter
provider (read by an ``InMemoryMetricReader``) for one test, and takes them away again, so
that every other test runs with no provider, as an application without an SDK does.
OpenTelemetry allows setting its globals once per process; the fixture resets them the way
OpenTelemetry's own test utilities do.

Test modules import the fixture explicitly: ``from _otel import otel_fixture  # noqa: F401``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

__all__ = ["Otel", "otel_fixture"]


class Otel:
    """The spans and metrics a test produced."""

    def __init__(self, exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self.exporter = exporter
        self.reader = reader

    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def clear(self) -> None:
        self.exporter.clear()

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """``{metric name: [(attributes, point)]}``: cumulative points since the test began."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        found.setdefault(metric.name, []).append(
                            (dict(point.attributes or {}), point)
                        )
        return found

    def total(self, name: str, **attributes: Any) -> float:
        """The sum of a counter's points (or a histogram's counts) whose attributes match."""
        total = 0.0
        for attrs, point in self.metrics().get(name, []):
            if all(attrs.get(k) == v for k, v in attributes.items()):
                value = getattr(point, "value", None)
                total += value if value is not None else getattr(point, "count", 0)
        return total


def _set_globals(monkeypatch: pytest.MonkeyPatch, tracer: Any, meter: Any) -> None:
    internal = importlib.import_module("opentelemetry.metrics._internal")
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", tracer)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(internal, "_METER_PROVIDER", meter)
    monkeypatch.setattr(internal, "_METER_PROVIDER_SET_ONCE", Once())


@pytest.fixture(name="otel")
def otel_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    """Global SDK providers with in-memory export, for one test."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    _set_globals(monkeypatch, tracer_provider, meter_provider)
    try:
        yield Otel(exporter, reader)
    finally:
        monkeypatch.undo()
        tracer_provider.shutdown()
        meter_provider.shutdown()
