"""The optional OpenTelemetry API: loaded once the application uses it, and what it gives now.

OpenTelemetry's API (the ``otel`` extra) is imported only once the application has imported
it (a provider is set through ``opentelemetry.trace`` or ``opentelemetry.metrics``) or names a
provider in the environment, so ``import invent_async`` does not pay for it (about 30 ms).
:func:`telemetry` then answers, per call, with the tracer and the metric instruments of the
providers the application set, or None: it reads OpenTelemetry's globals directly (its
public getters look the environment up on every call while no provider is set, which alone
would cost about 1% of a loopback request); a provider set later is seen on the next call.

Also here: the tracing switches of the environment (``ENABLED_ENV``, ``PROPAGATE_ENV``,
``BULK_ITEMS_ENV``, changed at run time by :func:`configure_tracing`) and the names
``_load`` binds once it has imported the API (``trace``, ``context``, ``SpanKind``,
``StatusCode``, ``PROPAGATOR``), which ``_observe`` reads as this module's attributes. The
spans, metrics and log records themselves are ``_observe``'s.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ._version import __version__

if TYPE_CHECKING:  # at run time, bound by _load() once the application uses OpenTelemetry
    from opentelemetry import context as context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as trace
    from opentelemetry.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.trace import SpanKind as SpanKind
    from opentelemetry.trace import StatusCode as StatusCode
    from opentelemetry.trace import Tracer, TracerProvider
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "BULK_ITEMS_ENV",
    "DURATION_BUCKETS",
    "ENABLED_ENV",
    "PROPAGATE_ENV",
    "SCOPE",
    "Instruments",
    "Telemetry",
    "configure_tracing",
    "switches",
    "telemetry",
]

ENABLED_ENV: Final = "OTEL_PYTHON_INSTRUMENTATION_INVENT_ENABLED"
PROPAGATE_ENV: Final = "INVENT_OTEL_PROPAGATE"
BULK_ITEMS_ENV: Final = "INVENT_OTEL_BULK_ITEMS"
SCOPE: Final = "invent_async"
"""The instrumentation scope (tracer and meter name)."""
DURATION_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1,
    2.5,
    5,
    7.5,
    10,
)
"""The semantic conventions' advice for ``http.client.request.duration``."""

_USED_BY_APP: Final = ("opentelemetry.trace", "opentelemetry.metrics")
"""Modules an application that set a provider has imported (a provider is set through them)."""
_FROM_ENV: Final = (
    "OTEL_PYTHON_TRACER_PROVIDER" in os.environ or "OTEL_PYTHON_METER_PROVIDER" in os.environ
)
"""A provider named in the environment: OpenTelemetry loads it without the application."""


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value not in ("0", "false", "off", "no")


def _ratio(name: str) -> float:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "off", "no"):
        return 0.0
    if value in ("1", "true", "on", "yes", "all"):
        return 1.0
    try:
        ratio = float(value)
    except ValueError:
        return 0.0
    return min(max(ratio, 0.0), 1.0) if ratio == ratio else 0.0


class Switches:
    """The tracing switches, read once at import (changed only by :func:`configure_tracing`)."""

    __slots__ = ("bulk_items", "enabled", "propagate")

    def __init__(self) -> None:
        self.enabled = _flag(ENABLED_ENV, True)
        self.propagate = _flag(PROPAGATE_ENV, True)
        self.bulk_items = _ratio(BULK_ITEMS_ENV)


switches: Final = Switches()


def configure_tracing(
    *, enabled: bool | None = None, propagate: bool | None = None, bulk_items: float | None = None
) -> None:
    """Change the tracing switches of the environment variables at run time (None: unchanged).

    ``enabled`` is ``OTEL_PYTHON_INSTRUMENTATION_INVENT_ENABLED``, ``propagate``
    ``INVENT_OTEL_PROPAGATE``, ``bulk_items`` ``INVENT_OTEL_BULK_ITEMS`` (the share, 0 to 1,
    of a bulk job's items that get their spans).
    """
    if enabled is not None:
        switches.enabled = enabled
    if propagate is not None:
        switches.propagate = propagate
    if bulk_items is not None:
        switches.bulk_items = min(max(float(bulk_items), 0.0), 1.0)


class Instruments:
    """The metric instruments of one meter provider."""

    __slots__ = ("bulk_items", "duration", "governor_wait", "rate_limited", "retries")

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(SCOPE, __version__)
        self.duration: Histogram = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests (one per attempt).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.retries: Counter = meter.create_counter(
            "invent.client.retries",
            unit="{retry}",
            description="HTTP attempts that repeated a failed one.",
        )
        self.rate_limited: Counter = meter.create_counter(
            "invent.client.rate_limited",
            unit="{response}",
            description="429 Too Many Requests answers.",
        )
        self.governor_wait: Histogram = meter.create_histogram(
            "invent.client.governor.wait",
            unit="s",
            description="Time an attempt waited in the rate governor before it was sent.",
            explicit_bucket_boundaries_advisory=(0, *DURATION_BUCKETS, 30, 60, 120, 300),
        )
        self.bulk_items: Counter = meter.create_counter(
            "invent.bulk.items",
            unit="{item}",
            description="Items of bulk jobs by outcome (succeeded, failed, skipped).",
        )


class Telemetry:
    """What the current providers give: a tracer (or None) and instruments (or None)."""

    __slots__ = ("instruments", "meter_provider", "tracer", "tracer_provider")

    def __init__(self, tracer_provider: object, meter_provider: object) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer: Tracer | None = None
        self.instruments: Instruments | None = None
        if tracer_provider is not None:
            assert _loaded[0]
            provider: TracerProvider = tracer_provider  # type: ignore[assignment]
            self.tracer = provider.get_tracer(SCOPE, __version__)
        if meter_provider is not None:
            self.instruments = Instruments(meter_provider)  # type: ignore[arg-type]


_loaded: list[bool | None] = [None]
"""Whether OpenTelemetry's API is loaded (True), cannot be (False), or not looked at yet (None)."""


def _load() -> bool:
    """Import OpenTelemetry's API, once: only when the application uses it, so that
    ``import invent_async`` does not pay for it (about 30 ms) where nothing is traced."""
    global context, otel_metrics, trace, SpanKind, StatusCode
    global _TRACE_GLOBALS, _METRIC_GLOBALS, _DIRECT, PROPAGATOR
    try:
        from opentelemetry import context, trace
        from opentelemetry import metrics as otel_metrics
        from opentelemetry.trace import SpanKind, StatusCode
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator,
        )
    except ImportError:  # the otel extra is not installed: nothing is ever traced or measured
        _loaded[0] = False
        return False
    _TRACE_GLOBALS = vars(trace)
    _METRIC_GLOBALS = vars(importlib.import_module("opentelemetry.metrics._internal"))
    _DIRECT = "_TRACER_PROVIDER" in _TRACE_GLOBALS and "_METER_PROVIDER" in _METRIC_GLOBALS
    PROPAGATOR = TraceContextTextMapPropagator()
    if _FROM_ENV:  # let OpenTelemetry load the provider the environment names, now
        trace.get_tracer_provider()
        otel_metrics.get_meter_provider()
    _loaded[0] = True
    return True


_TRACE_GLOBALS: Mapping[str, Any]
_METRIC_GLOBALS: Mapping[str, Any]
_DIRECT: bool
PROPAGATOR: TraceContextTextMapPropagator
"""Injects ``traceparent`` (and ``tracestate``) into a request's headers."""
if _FROM_ENV:
    _load()


def _providers() -> tuple[object, object]:
    """(tracer provider, meter provider) set by the application; None for one not set."""
    if _DIRECT:
        return _TRACE_GLOBALS["_TRACER_PROVIDER"], _METRIC_GLOBALS["_METER_PROVIDER"]
    tracer: object = trace.get_tracer_provider()  # pragma: no cover - other layouts
    meter: object = otel_metrics.get_meter_provider()  # pragma: no cover
    return (  # pragma: no cover
        None if isinstance(tracer, trace.ProxyTracerProvider) else tracer,
        None if type(meter).__name__ == "_ProxyMeterProvider" else meter,
    )


_cache: list[Telemetry | None] = [None]


def telemetry() -> Telemetry | None:
    """The tracer and instruments to use now; None when no provider is set (or it is off)."""
    if not switches.enabled:
        return None
    loaded = _loaded[0]
    if not loaded:
        # isdisjoint: none of _USED_BY_APP imported, without a generator per call
        if loaded is False or sys.modules.keys().isdisjoint(_USED_BY_APP):
            return None  # OpenTelemetry is not installed, or the application has not used it
        if not _load():
            return None
    tracer_provider, meter_provider = _providers()
    if tracer_provider is None and meter_provider is None:
        return None
    cached = _cache[0]
    if (
        cached is not None
        and cached.tracer_provider is tracer_provider
        and cached.meter_provider is meter_provider
    ):
        return cached
    fresh = _cache[0] = Telemetry(tracer_provider, meter_provider)
    return fresh
