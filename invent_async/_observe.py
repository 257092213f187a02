"""Observability: OpenTelemetry spans and metrics (optional), and the per-attempt log records.

The pipeline asks :func:`operation` for an :class:`Operation` at the start of each call; it
gets None when nothing observes (the common case), and then pays nothing more. Something
observes when:

- OpenTelemetry's API is installed (the ``otel`` extra) *and* the application configured a
  global tracer or meter provider (an SDK). With the API alone, or without the package, no
  span object is created and no attribute is built. The check reads OpenTelemetry's globals
  directly (its public getters look the environment up on every call while no provider is
  set, which alone would cost about 1% of a loopback request); a provider set later is seen
  on the next call. OpenTelemetry is imported only once the application has imported it
  (a provider is set through ``opentelemetry.trace`` or ``opentelemetry.metrics``) or names
  a provider in the environment, so ``import invent_async`` does not pay for it.
- ``INVENT_LOG=info`` or ``debug`` is set (read once, at import; the CLI's ``-v`` calls
  :func:`configure_logging`): one record per HTTP attempt on the ``invent_async`` logger.

Spans: one per operation (``contacts.add_segment``, kind CLIENT) with the HTTP
semantic-convention attributes and ``invent.*`` ones; one child per HTTP attempt
(``POST /orgs/{org_id}/contacts/{contact_id}/segments/{segment_id}``), so that retries and
429s show; one per bulk job (:class:`Job`) with its counts. Items of a bulk job make no spans
unless ``INVENT_OTEL_BULK_ITEMS`` asks for a share of them. A recording attempt span sends its
W3C ``traceparent`` (and ``tracestate``; never baggage) unless ``INVENT_OTEL_PROPAGATE=false``.
``OTEL_PYTHON_INSTRUMENTATION_INVENT_ENABLED=false`` turns spans and metrics off.

Never recorded: the API key anywhere; bodies and the ids of a path in spans or metrics (paths
appear as their templates); the organisation id on metrics (it is a span attribute). Log
records carry the path (ids included) and, at debug only, the bodies, cut and with the key
redacted.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import random
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ._protocol import RawResponse, Request, TransportRequest, request_id
from ._secret import Secret
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = [
    "BODY_LOG_LIMIT",
    "BULK_ITEMS_ENV",
    "ENABLED_ENV",
    "LOG_ENV",
    "PROPAGATE_ENV",
    "Attempt",
    "Job",
    "Operation",
    "Server",
    "configure_logging",
    "configure_tracing",
    "error_type",
    "job",
    "log_level",
    "logger",
    "operation",
]

LOG_ENV: Final = "INVENT_LOG"
ENABLED_ENV: Final = "OTEL_PYTHON_INSTRUMENTATION_INVENT_ENABLED"
PROPAGATE_ENV: Final = "INVENT_OTEL_PROPAGATE"
BULK_ITEMS_ENV: Final = "INVENT_OTEL_BULK_ITEMS"
BODY_LOG_LIMIT: Final = 1000
"""Characters of a request or response body shown in a debug record."""
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

logger: Final = logging.getLogger("invent_async")

if TYPE_CHECKING:  # at run time, bound by _load_otel() once the application uses OpenTelemetry
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import SpanKind, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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


class _Switches:
    """The switches, read once at import (changed only by ``configure_*``)."""

    __slots__ = (
        "bulk_items",
        "enabled",
        "handler",
        "log_bodies",
        "log_level",
        "logger_level",
        "propagate",
    )

    def __init__(self) -> None:
        self.enabled = _flag(ENABLED_ENV, True)
        self.propagate = _flag(PROPAGATE_ENV, True)
        self.bulk_items = _ratio(BULK_ITEMS_ENV)
        self.log_level = 0  # 0: no per-attempt records; else logging.INFO or logging.DEBUG
        self.log_bodies = False
        self.logger_level: int | None = None  # the logger's level before we lowered it
        self.handler: logging.Handler | None = None  # the stderr handler we added


_switches: Final = _Switches()


def configure_tracing(
    *, enabled: bool | None = None, propagate: bool | None = None, bulk_items: float | None = None
) -> None:
    """Change the tracing switches of the environment variables at run time (None: unchanged).

    ``enabled`` is ``OTEL_PYTHON_INSTRUMENTATION_INVENT_ENABLED``, ``propagate``
    ``INVENT_OTEL_PROPAGATE``, ``bulk_items`` ``INVENT_OTEL_BULK_ITEMS`` (the share, 0 to 1,
    of a bulk job's items that get their spans).
    """
    if enabled is not None:
        _switches.enabled = enabled
    if propagate is not None:
        _switches.propagate = propagate
    if bulk_items is not None:
        _switches.bulk_items = min(max(float(bulk_items), 0.0), 1.0)


def configure_logging(level: str | int | None) -> None:
    """Turn the per-attempt log records on (``"info"``, ``"debug"``) or off (None, ``""``).

    ``INVENT_LOG`` is passed here at import. On, the ``invent_async`` logger is lowered to
    that level, and given a handler writing to stderr if neither it nor the root logger has
    one (so that ``INVENT_LOG=debug python app.py`` shows something). ``debug`` adds the
    request and response bodies, cut to :data:`BODY_LOG_LIMIT` characters, key redacted.
    """
    if isinstance(level, str):
        name = level.strip().upper()
        number = logging.getLevelName(name) if name else 0
        if not isinstance(number, int) or number not in (logging.DEBUG, logging.INFO):
            number = 0
    else:
        number = level or 0
    if number:
        number = logging.DEBUG if number <= logging.DEBUG else logging.INFO
    _switches.log_level = number
    _switches.log_bodies = number == logging.DEBUG
    if not number:  # off: undo what turning it on did
        if _switches.logger_level is not None:
            logger.setLevel(_switches.logger_level)
            _switches.logger_level = None
        if _switches.handler is not None:
            logger.removeHandler(_switches.handler)
            _switches.handler = None
        return
    if logger.level == logging.NOTSET or logger.level > number:
        if _switches.logger_level is None:
            _switches.logger_level = logger.level
        logger.setLevel(number)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = _switches.handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def log_level() -> int:
    """The level of the per-attempt records (0: off)."""
    return _switches.log_level


configure_logging(os.environ.get(LOG_ENV))


# --------------------------------------------------------------------------- providers


class _Instruments:
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


class _Telemetry:
    """What the current providers give: a tracer (or None) and instruments (or None)."""

    __slots__ = ("instruments", "meter_provider", "tracer", "tracer_provider")

    def __init__(self, tracer_provider: object, meter_provider: object) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer: Tracer | None = None
        self.instruments: _Instruments | None = None
        if tracer_provider is not None:
            assert _otel[0]
            provider: TracerProvider = tracer_provider  # type: ignore[assignment]
            self.tracer = provider.get_tracer(SCOPE, __version__)
        if meter_provider is not None:
            self.instruments = _Instruments(meter_provider)  # type: ignore[arg-type]


_otel: list[bool | None] = [None]
"""Whether OpenTelemetry's API is loaded (True), cannot be (False), or not looked at yet (None)."""


def _load_otel() -> bool:
    """Import OpenTelemetry's API, once: only when the application uses it, so that
    ``import invent_async`` does not pay for it (about 30 ms) where nothing is traced."""
    global otel_context, otel_metrics, otel_trace, SpanKind, StatusCode
    global _TRACE_GLOBALS, _METRIC_GLOBALS, _DIRECT, _PROPAGATOR
    try:
        from opentelemetry import context as otel_context
        from opentelemetry import metrics as otel_metrics
        from opentelemetry import trace as otel_trace
        from opentelemetry.trace import SpanKind, StatusCode
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator,
        )
    except ImportError:  # the otel extra is not installed: nothing is ever traced or measured
        _otel[0] = False
        return False
    _TRACE_GLOBALS = vars(otel_trace)
    _METRIC_GLOBALS = vars(importlib.import_module("opentelemetry.metrics._internal"))
    _DIRECT = "_TRACER_PROVIDER" in _TRACE_GLOBALS and "_METER_PROVIDER" in _METRIC_GLOBALS
    _PROPAGATOR = TraceContextTextMapPropagator()
    if _FROM_ENV:  # let OpenTelemetry load the provider the environment names, now
        otel_trace.get_tracer_provider()
        otel_metrics.get_meter_provider()
    _otel[0] = True
    return True


_TRACE_GLOBALS: Mapping[str, Any]
_METRIC_GLOBALS: Mapping[str, Any]
_DIRECT: bool
_PROPAGATOR: TraceContextTextMapPropagator
if _FROM_ENV:
    _load_otel()


def _providers() -> tuple[object, object]:
    """(tracer provider, meter provider) set by the application; None for one not set."""
    if _DIRECT:
        return _TRACE_GLOBALS["_TRACER_PROVIDER"], _METRIC_GLOBALS["_METER_PROVIDER"]
    tracer: object = otel_trace.get_tracer_provider()  # pragma: no cover - other layouts
    meter: object = otel_metrics.get_meter_provider()  # pragma: no cover
    return (  # pragma: no cover
        None if isinstance(tracer, otel_trace.ProxyTracerProvider) else tracer,
        None if type(meter).__name__ == "_ProxyMeterProvider" else meter,
    )


_cache: list[_Telemetry | None] = [None]


def _telemetry() -> _Telemetry | None:
    """The tracer and instruments to use now; None when no provider is set (or it is off)."""
    if not _switches.enabled:
        return None
    loaded = _otel[0]
    if not loaded:
        # isdisjoint: none of _USED_BY_APP imported, without a generator per call
        if loaded is False or sys.modules.keys().isdisjoint(_USED_BY_APP):
            return None  # OpenTelemetry is not installed, or the application has not used it
        if not _load_otel():
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
    fresh = _cache[0] = _Telemetry(tracer_provider, meter_provider)
    return fresh


# --------------------------------------------------------------------------- attributes


def error_type(exc: BaseException) -> str:
    """``error.type``: the status code of an HTTP error, else the exception's class name."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return str(status)
    return type(exc).__qualname__


class Server:
    """A client's API host, split once: ``server.address`` and ``server.port``."""

    __slots__ = ("address", "port")

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.address = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)


def _cut(body: bytes | None, secret: Secret) -> str:
    if not body:
        return ""
    text = secret.redact_text(body[: BODY_LOG_LIMIT * 4].decode("utf-8", errors="replace"))
    return text if len(text) <= BODY_LOG_LIMIT else text[:BODY_LOG_LIMIT] + "..."


# --------------------------------------------------------------------------- operations


def operation(
    request: Request,
    server: Server,
    secret: Secret,
    *,
    org_id: str,
    lane: str,
    bulk_item: bool = False,
) -> Operation | None:
    """The observation of one call, or None when nothing observes (no provider, no log)."""
    telemetry = _telemetry()
    if telemetry is None and not _switches.log_level:
        return None
    tracer = telemetry.tracer if telemetry is not None else None
    if tracer is not None and bulk_item:
        share = _switches.bulk_items
        if not share or (share < 1.0 and random.random() >= share):
            tracer = None  # a bulk job's item: no spans of its own (by default)
    instruments = telemetry.instruments if telemetry is not None else None
    if tracer is None and instruments is None and not _switches.log_level:
        return None
    return Operation(request, server, secret, tracer, instruments, org_id, lane)


class Operation:
    """One call being observed: its span (if traced) and its attempts."""

    __slots__ = (
        "_attempts",
        "_context",
        "_instruments",
        "_lane",
        "_last_error",
        "_metric_attributes",
        "_request",
        "_secret",
        "_server",
        "_span",
        "_status",
        "_tracer",
        "_waited",
    )

    def __init__(
        self,
        request: Request,
        server: Server,
        secret: Secret,
        tracer: Tracer | None,
        instruments: _Instruments | None,
        org_id: str,
        lane: str,
    ) -> None:
        self._request = request
        self._server = server
        self._secret = secret
        self._tracer = tracer
        self._instruments = instruments
        self._lane = lane
        self._attempts = 0
        self._waited = 0.0
        self._status: int | None = None
        self._last_error: str | None = None
        self._span: Span | None = None
        self._context: Any = None
        template = request.template  # never the path: it holds ids
        if tracer is not None:
            span = tracer.start_span(request.operation or request.method, kind=SpanKind.CLIENT)
            if span.is_recording():
                attributes: dict[str, str | int] = {
                    "http.request.method": request.method,
                    "server.address": server.address,
                    "server.port": server.port,
                    "invent.operation": request.operation,
                    "invent.org_id": org_id,
                    "invent.lane": lane,
                }
                if template:
                    attributes["url.template"] = template
                span.set_attributes(attributes)
                self._span = span
                self._context = otel_trace.set_span_in_context(span)
            else:
                span.end()
                self._tracer = None
        self._metric_attributes: dict[str, str | int] | None = None
        if instruments is not None:
            self._metric_attributes = {
                "http.request.method": request.method,
                "server.address": server.address,
                "server.port": server.port,
            }
            if template:
                self._metric_attributes["url.template"] = template

    def attempt(self) -> Attempt:
        """The next HTTP attempt of this call (started now: its span includes the governor)."""
        self._attempts += 1
        if self._attempts > 1 and self._instruments is not None:
            self._instruments.retries.add(
                1,
                {
                    "invent.operation": self._request.operation,
                    "error.type": self._last_error or "_OTHER",
                },
            )
        return Attempt(self, self._attempts)

    def end(self, error: BaseException | None) -> None:
        """The call is over: it returned (``error`` None) or raised ``error``."""
        span = self._span
        if span is None:
            return
        if self._status is not None:
            span.set_attribute("http.response.status_code", self._status)
        if self._attempts > 1:
            span.set_attribute("http.request.resend_count", self._attempts - 1)
        span.set_attribute("invent.governor.wait", self._waited)
        if error is not None:
            kind = error_type(error)
            span.set_attribute("error.type", kind)
            span.set_status(StatusCode.ERROR, kind)
        span.end()


class Attempt:
    """One HTTP attempt of an :class:`Operation`: its span, timing, metrics and log record."""

    __slots__ = (
        "_number",
        "_operation",
        "_sent_at",
        "_span",
        "_started",
        "_token",
        "_waited",
        "_wire",
    )

    def __init__(self, op: Operation, number: int) -> None:
        self._operation = op
        self._number = number
        self._started = time.perf_counter()
        self._sent_at: float | None = None
        self._waited = 0.0
        self._token: object = None
        self._wire: TransportRequest | None = None
        self._span: Span | None = None
        tracer = op._tracer
        if tracer is not None:
            request = op._request
            template = request.template
            name = f"{request.method} {template}" if template else request.method
            span = tracer.start_span(name, context=op._context, kind=SpanKind.CLIENT)
            if span.is_recording():
                attributes: dict[str, str | int] = {
                    "http.request.method": request.method,
                    "server.address": op._server.address,
                    "server.port": op._server.port,
                }
                if template:
                    attributes["url.template"] = template
                if number > 1:
                    attributes["http.request.resend_count"] = number - 1
                span.set_attributes(attributes)
                self._span = span
            else:
                span.end()

    def admitted(self, waited: float, wire: TransportRequest) -> TransportRequest:
        """The governor let it go after ``waited`` seconds: the request to send, with the
        trace context when the attempt is traced (a copy: ``wire`` is shared by attempts)."""
        self._waited = waited
        self._operation._waited += waited
        self._wire = wire
        span = self._span
        if span is not None:
            span.set_attribute("invent.governor.wait", waited)
            context = otel_trace.set_span_in_context(span)
            self._token = otel_context.attach(context)  # HTTP instrumentation nests below
            if _switches.propagate:
                carrier: dict[str, str] = {}
                _PROPAGATOR.inject(carrier, context=context)
                if carrier:
                    headers = type(wire.headers)({**wire.headers, **carrier})
                    wire = TransportRequest(
                        method=wire.method,
                        url=wire.url,
                        path=wire.path,
                        headers=headers,
                        body=wire.body,
                        max_response_bytes=wire.max_response_bytes,
                    )
        self._sent_at = time.perf_counter()
        return wire

    def sent(self) -> None:
        """The transport returned or raised: the attempt's context is left."""
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def end(self, raw: RawResponse | None, error: BaseException | None) -> None:
        """The attempt ended with ``raw`` (any status) or with ``error`` before an answer."""
        self.sent()
        now = time.perf_counter()
        op = self._operation
        request = op._request
        status = raw.status if raw is not None else getattr(error, "status", None)
        if not isinstance(status, int):
            status = None
        if status is not None:
            op._status = status
        kind: str | None = None
        if error is not None:
            kind = error_type(error)
        elif raw is not None and raw.status >= 400:
            kind = str(raw.status)
        op._last_error = kind
        rid = request_id(raw.headers) if raw is not None else getattr(error, "request_id", None)
        span = self._span
        if span is not None:
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if rid:
                span.set_attribute("invent.request_id", rid)
            if kind is not None:
                span.set_attribute("error.type", kind)
                span.set_status(StatusCode.ERROR, kind)
            span.end()
        instruments = op._instruments
        if instruments is not None and op._metric_attributes is not None:
            if self._sent_at is not None:
                attributes = dict(op._metric_attributes)
                if status is not None:
                    attributes["http.response.status_code"] = status
                if kind is not None:
                    attributes["error.type"] = kind
                instruments.duration.record(now - self._sent_at, attributes)
                instruments.governor_wait.record(self._waited, {"invent.lane": op._lane})
            if status == 429:
                instruments.rate_limited.add(1, {"invent.operation": request.operation})
        if _switches.log_level:
            self._log(raw, error, status, kind, rid, now)

    def _log(
        self,
        raw: RawResponse | None,
        error: BaseException | None,
        status: int | None,
        kind: str | None,
        rid: str | None,
        now: float,
    ) -> None:
        level = _switches.log_level
        if not logger.isEnabledFor(level):
            return
        op = self._operation
        request = op._request
        elapsed = now - (self._sent_at if self._sent_at is not None else self._started)
        template = request.template or None
        extra: dict[str, object] = {
            "invent_operation": request.operation,
            "invent_method": request.method,
            "invent_path_template": template,
            "invent_path": request.path,
            "invent_status": status,
            "invent_error_type": kind,
            "invent_elapsed": round(elapsed, 6),
            "invent_attempt": self._number,
            "invent_request_id": rid,
            "invent_governor_wait": round(self._waited, 6),
        }
        outcome = str(status) if status is not None else (kind or "no answer")
        message = (
            f"{request.method} {request.path} -> {outcome} in {elapsed * 1000:.1f}ms "
            f"(attempt {self._number}"
            + (f", request id {rid}" if rid else "")
            + (f", governor wait {self._waited:.3f}s" if self._waited else "")
            + ")"
        )
        if _switches.log_bodies:
            sent = _cut(request.body, op._secret)
            if raw is not None:
                received = _cut(raw.body, op._secret)
            else:  # an error response: its body, as the exception holds it (redacted)
                body = getattr(error, "body", None)
                received = "" if body is None else _cut(json.dumps(body).encode(), op._secret)
            extra["invent_request_body"] = sent
            extra["invent_response_body"] = received
            if sent:
                message += f"\n  request body: {sent}"
            if received:
                message += f"\n  response body: {received}"
        logger.log(level, "%s", message, extra=extra)


# --------------------------------------------------------------------------- bulk jobs


def job(name: str, *, org_id: str, lane: str) -> Job | None:
    """The observation of one bulk job, or None when no provider is set."""
    telemetry = _telemetry()
    if telemetry is None:
        return None
    return Job(telemetry, name, org_id, lane)


class Job:
    """A bulk job's span (current while its workers start, so sampled items nest below it)
    and its item-outcome counter."""

    __slots__ = ("_counted", "_instruments", "_name", "_span", "_token")

    def __init__(self, telemetry: _Telemetry, name: str, org_id: str, lane: str) -> None:
        self._name = name
        self._instruments = telemetry.instruments
        self._counted = {"succeeded": 0, "failed": 0, "skipped": 0}
        self._span: Span | None = None
        self._token: object = None
        if telemetry.tracer is not None:
            span = telemetry.tracer.start_span(name, kind=SpanKind.INTERNAL)
            if span.is_recording():
                span.set_attributes(
                    {
                        "invent.operation": name,
                        "invent.org_id": org_id,
                        "invent.lane": lane,
                        "invent.bulk.item_spans": _switches.bulk_items,
                    }
                )
                self._span = span
            else:
                span.end()

    def enter(self) -> None:
        """Make the job's span current (the workers started now inherit it)."""
        if self._span is not None:
            self._token = otel_context.attach(otel_trace.set_span_in_context(self._span))

    def leave(self) -> None:
        """Undo :meth:`enter`."""
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def item(self, outcome: str) -> None:
        """Count one item's outcome (``succeeded``, ``failed``, ``skipped``)."""
        self._add(outcome, 1)

    def _add(self, outcome: str, count: int) -> None:
        self._counted[outcome] = self._counted.get(outcome, 0) + count
        if self._instruments is not None:
            self._instruments.bulk_items.add(
                count, {"invent.operation": self._name, "invent.bulk.outcome": outcome}
            )

    def end(self, counts: Mapping[str, int | float | bool], error: BaseException | None) -> None:
        """The job is over: its counts become the span's attributes, and the items not
        counted one by one (in flight when it stopped) are counted."""
        for outcome, counted in list(self._counted.items()):
            missing = int(counts.get(outcome, counted)) - counted
            if missing > 0:
                self._add(outcome, missing)
        span, self._span = self._span, None
        if span is None:
            return
        span.set_attributes({f"invent.bulk.{key}": value for key, value in counts.items()})
        if error is not None:
            kind = error_type(error)
            span.set_attribute("error.type", kind)
            span.set_status(StatusCode.ERROR, kind)
        span.end()
