"""Observability: OpenTelemetry spans and metrics (optional), and the per-attempt log records.

The pipeline asks :func:`operation` for an :class:`Operation` at the start of each call; it
gets None when nothing observes (the common case), and then pays nothing more. Something
observes when:

- OpenTelemetry's API is installed (the ``otel`` extra) *and* the application configured a
  global tracer or meter provider (an SDK): ``_otel.telemetry()`` tells, cheaply, and gives the
  tracer and instruments (``_otel`` loads the API only once the application uses it). With
  the API alone, or without the package, no span object is created and no attribute is built.
- ``INVENT_LOG=info`` or ``debug`` is set (read once, at import; the CLI's ``-v`` calls
  :func:`configure_logging`): one record per HTTP attempt on the ``invent_async`` logger.

Spans: one per operation (``contacts.add_segment``, kind CLIENT) with the HTTP
semantic-convention attributes and ``invent.*`` ones; one child per HTTP attempt
(``POST /orgs/{org_id}/contacts/{contact_id}/segments/{segment_id}``), so that retries and
429s show; one per bulk job (:class:`Job`) with its counts. Items of a bulk job make no spans
unless ``INVENT_OTEL_BULK_ITEMS`` asks for a share of them. A recording attempt span sends its
W3C ``traceparent`` (and ``tracestate``; never baggage) unless ``INVENT_OTEL_PROPAGATE=false``.
``OTEL_PYTHON_INSTRUMENTATION_INVENT_ENABLED=false`` turns spans and metrics off (those
switches, and :func:`configure_tracing`, are ``_otel``'s).

Never recorded: the API key anywhere; bodies and the ids of a path in spans or metrics (paths
appear as their templates); the organisation id on metrics (it is a span attribute). Log
records carry the path (ids included) and, at debug only, the bodies, cut and with the key
redacted.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from . import _otel as otel
from ._otel import Instruments, Telemetry, configure_tracing
from ._protocol import RawResponse, Request, TransportRequest, request_id
from ._secret import Secret

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "BODY_LOG_LIMIT",
    "LOG_ENV",
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
BODY_LOG_LIMIT: Final = 1000
"""Characters of a request or response body shown in a debug record."""

logger: Final = logging.getLogger("invent_async")


class _Switches:
    """The logging switches, read once at import (changed only by :func:`configure_logging`)."""

    __slots__ = ("handler", "log_bodies", "log_level", "logger_level")

    def __init__(self) -> None:
        self.log_level = 0  # 0: no per-attempt records; else logging.INFO or logging.DEBUG
        self.log_bodies = False
        self.logger_level: int | None = None  # the logger's level before we lowered it
        self.handler: logging.Handler | None = None  # the stderr handler we added


_switches: Final = _Switches()


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
    telemetry = otel.telemetry()
    if telemetry is None and not _switches.log_level:
        return None
    tracer = telemetry.tracer if telemetry is not None else None
    if tracer is not None and bulk_item:
        share = otel.switches.bulk_items
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
        instruments: Instruments | None,
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
            span = tracer.start_span(request.operation or request.method, kind=otel.SpanKind.CLIENT)
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
                self._context = otel.trace.set_span_in_context(span)
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
            span.set_status(otel.StatusCode.ERROR, kind)
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
            span = tracer.start_span(name, context=op._context, kind=otel.SpanKind.CLIENT)
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
            context = otel.trace.set_span_in_context(span)
            self._token = otel.context.attach(context)  # HTTP instrumentation nests below
            if otel.switches.propagate:
                carrier: dict[str, str] = {}
                otel.PROPAGATOR.inject(carrier, context=context)
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
            otel.context.detach(token)  # type: ignore[arg-type]

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
                span.set_status(otel.StatusCode.ERROR, kind)
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
    telemetry = otel.telemetry()
    if telemetry is None:
        return None
    return Job(telemetry, name, org_id, lane)


class Job:
    """A bulk job's span (current while its workers start, so sampled items nest below it)
    and its item-outcome counter."""

    __slots__ = ("_counted", "_instruments", "_name", "_span", "_token")

    def __init__(self, telemetry: Telemetry, name: str, org_id: str, lane: str) -> None:
        self._name = name
        self._instruments = telemetry.instruments
        self._counted = {"succeeded": 0, "failed": 0, "skipped": 0}
        self._span: Span | None = None
        self._token: object = None
        if telemetry.tracer is not None:
            span = telemetry.tracer.start_span(name, kind=otel.SpanKind.INTERNAL)
            if span.is_recording():
                span.set_attributes(
                    {
                        "invent.operation": name,
                        "invent.org_id": org_id,
                        "invent.lane": lane,
                        "invent.bulk.item_spans": otel.switches.bulk_items,
                    }
                )
                self._span = span
            else:
                span.end()

    def enter(self) -> None:
        """Make the job's span current (the workers started now inherit it)."""
        if self._span is not None:
            self._token = otel.context.attach(otel.trace.set_span_in_context(self._span))

    def leave(self) -> None:
        """Undo :meth:`enter`."""
        token, self._token = self._token, None
        if token is not None:
            otel.context.detach(token)  # type: ignore[arg-type]

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
            span.set_status(otel.StatusCode.ERROR, kind)
        span.end()
