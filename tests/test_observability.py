"""Observability: OpenTelemetry spans and metrics, INVENT_LOG records, raw responses.

The spans and metrics come from the OpenTelemetry SDK with an in-memory exporter and reader
(the ``otel`` fixture of ``_otel``), set as the global providers for one test only: every
other test of the suite runs as an application without an SDK does.
"""

from __future__ import annotations

import collections.abc
import contextlib
import enum
import inspect
import logging
import os
import subprocess
import sys
import textwrap
import types
import typing
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from _harness import API_KEY, Api, ThreadedFake, api_fixture, cli_runner  # noqa: F401
from _otel import Otel, otel_fixture  # noqa: F401
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from invent_async import (
    UNSET,
    AsyncInventClient,
    AsyncPager,
    InternalServerError,
    NotFoundError,
    RateLimit,
    RawResult,
    ResponseValidationError,
    Unset,
)
from invent_async import _observe as observe
from invent_async._codegen import discover_targets
from invent_async._endpoints import Endpoint, endpoint_of
from invent_async._protocol import Request
from invent_async._secret import Secret
from invent_async.cli.commands import cli
from invent_async.testing import FakeInvent, MockTransport, mock_response

SEGMENT_TEMPLATE = "/orgs/{org_id}/contacts/{contact_id}/segments/{segment_id}"
ATTEMPT_NAME = f"POST {SEGMENT_TEMPLATE}"


@pytest.fixture(autouse=True)
def _default_switches() -> Iterator[None]:
    """Every test starts from the defaults of the switches (and leaves them so)."""
    observe.configure_tracing(enabled=True, propagate=True, bulk_items=0.0)
    observe.configure_logging(None)
    yield
    observe.configure_tracing(enabled=True, propagate=True, bulk_items=0.0)
    observe.configure_logging(None)


@pytest.fixture
async def fake() -> AsyncIterator[FakeInvent]:
    async with FakeInvent(api_key=API_KEY) as server:
        yield server


def client_for(fake: FakeInvent, **options: Any) -> AsyncInventClient:
    settings: dict[str, Any] = {
        "base_url": fake.url,
        "timeout": 5,
        "deadline": 20,
        "rate_limit": RateLimit(per_minute=1_000_000, burst=1_000, shared=False),
        **options,
    }
    return AsyncInventClient(API_KEY, **settings)


def tagged(fake: FakeInvent) -> tuple[str, str]:
    return fake.add_contact(name="Jane").id, fake.add_segment("VIP").id


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def everything_recorded(otel: Otel) -> str:
    """Every span name, attribute and event, and every metric label, as one text."""
    parts: list[str] = []
    for span in otel.spans():
        parts += [span.name, repr(attributes(span)), repr(span.status.description)]
        parts += [repr(e.attributes) for e in span.events]
    for name, points in otel.metrics().items():
        parts += [name, *(repr(attrs) for attrs, _ in points)]
    return "\n".join(parts)


# ---------------------------------------------------------------------- spans


async def test_a_call_is_one_operation_span_with_one_attempt_span_below_it(
    otel: Otel, fake: FakeInvent
) -> None:
    contact_id, segment_id = tagged(fake)
    async with client_for(fake) as client:
        await client.contacts.add_segment(contact_id, segment_id)

    attempt, operation = otel.spans()
    assert (operation.name, operation.kind) == ("contacts.add_segment", SpanKind.CLIENT)
    assert attempt.name == ATTEMPT_NAME
    assert attempt.parent is not None
    assert attempt.parent.span_id == operation.context.span_id
    assert attributes(operation) == {
        "http.request.method": "POST",
        "url.template": SEGMENT_TEMPLATE,
        "server.address": "127.0.0.1",
        "server.port": fake.port,
        "invent.operation": "contacts.add_segment",
        "invent.org_id": "c",
        "invent.lane": "interactive",
        "http.response.status_code": 200,
        "invent.governor.wait": pytest.approx(0.0, abs=0.05),
    }
    assert attributes(attempt)["http.response.status_code"] == 200
    assert attributes(attempt)["invent.request_id"] == fake.requests[0].request_id
    assert "http.request.resend_count" not in attributes(attempt)
    assert operation.status.status_code is StatusCode.UNSET


async def test_a_call_retried_after_a_503_shows_both_attempts(otel: Otel, fake: FakeInvent) -> None:
    contact_id, segment_id = tagged(fake)
    fake.fail_next(1, status=503)
    async with client_for(fake) as client:
        await client.contacts.add_segment(contact_id, segment_id)

    first, second = otel.named(ATTEMPT_NAME)
    (operation,) = otel.named("contacts.add_segment")
    assert attributes(first)["http.response.status_code"] == 503
    assert attributes(first)["error.type"] == "503"
    assert first.status.status_code is StatusCode.ERROR
    assert attributes(second)["http.request.resend_count"] == 1
    assert "error.type" not in attributes(second)
    assert attributes(operation)["http.request.resend_count"] == 1
    assert attributes(operation)["http.response.status_code"] == 200
    assert operation.status.status_code is StatusCode.UNSET


async def test_a_429_shows_the_retry_held_by_the_governor(otel: Otel, fake: FakeInvent) -> None:
    contact_id, segment_id = tagged(fake)
    fake.fail_next(1, status=429, retry_after=0.3)
    async with client_for(fake) as client:
        await client.contacts.add_segment(contact_id, segment_id)

    refused, admitted = otel.named(ATTEMPT_NAME)
    assert attributes(refused)["error.type"] == "429"
    assert attributes(admitted)["invent.governor.wait"] >= 0.25  # the cool-down held it
    assert attributes(otel.named("contacts.add_segment")[0])["invent.governor.wait"] >= 0.25
    assert otel.total("invent.client.rate_limited", **{"invent.operation": "contacts.add_segment"})


async def test_a_failed_call_marks_its_spans_as_errors(otel: Otel, fake: FakeInvent) -> None:
    async with client_for(fake) as client:
        with pytest.raises(NotFoundError):
            await client.contacts.get("ct_missing")

    attempt, operation = otel.spans()
    for span in (attempt, operation):
        assert span.status.status_code is StatusCode.ERROR
        assert attributes(span)["error.type"] == "404"
        assert attributes(span)["http.response.status_code"] == 404
    assert operation.name == "contacts.get"
    assert attributes(operation)["url.template"] == "/orgs/{org_id}/contacts/{contact_id}"


async def test_a_connection_failure_is_its_exception_type(otel: Otel) -> None:
    async with FakeInvent(api_key=API_KEY) as gone:
        url = gone.url
    async with AsyncInventClient(API_KEY, base_url=url, max_retries=0) as client:
        with pytest.raises(Exception, match="connect"):
            await client.segments.get("sg_1")

    attempt, operation = otel.spans()
    assert attributes(operation)["error.type"] == "APIConnectionError"
    assert "http.response.status_code" not in attributes(attempt)


async def test_a_body_that_does_not_fit_fails_the_operation_not_the_attempt(
    otel: Otel, fake: FakeInvent
) -> None:
    fake.fail_next(1, status=200, body={"unexpected": True})
    async with client_for(fake) as client:
        with pytest.raises(ResponseValidationError):
            await client.contacts.get("ct_1")

    attempt, operation = otel.spans()
    assert attempt.status.status_code is StatusCode.UNSET
    assert attributes(operation)["error.type"] == "ResponseValidationError"


async def test_each_page_of_a_listing_is_one_operation(otel: Otel, fake: FakeInvent) -> None:
    fake.add_contacts(25)
    async with client_for(fake) as client:
        assert len(await client.contacts.list(take=10).collect()) == 25

    operations = otel.named("contacts.list")
    assert len(operations) == 3
    assert {attributes(s)["url.template"] for s in operations} == {"/orgs/{org_id}/contacts"}


async def test_the_sync_client_makes_the_same_spans_under_the_callers_span(
    otel: Otel, api: Api
) -> None:
    contact = api.fake.add_contact(name="Jane")
    tracer = trace.get_tracer("test")

    with tracer.start_as_current_span("request handler") as handler:
        await api.call(lambda c: c.contacts.get(contact.id))

    (operation,) = otel.named("contacts.get")
    assert operation.context.trace_id == handler.get_span_context().trace_id
    assert operation.parent is not None
    assert operation.parent.span_id == handler.get_span_context().span_id


def sample(annotation: Any) -> Any:
    """A value of ``annotation`` a method accepts: the first choice of a union (not None, not
    UNSET), one item of a sequence, a model with every field given."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        choices = [a for a in typing.get_args(annotation) if a not in (type(None), Unset)]
        return sample(choices[0])
    origin = typing.get_origin(annotation)
    if origin in (tuple, list, collections.abc.Sequence, collections.abc.Iterable):
        return (sample(typing.get_args(annotation)[0]),)
    if origin is collections.abc.Mapping:
        return {"x1": sample(typing.get_args(annotation)[1])}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return next(iter(annotation))
    if isinstance(annotation, type) and attrs.has(annotation):
        fields = attrs.fields(attrs.resolve_types(annotation))
        return annotation(**{f.name: sample(f.type) for f in fields})
    examples: dict[Any, Any] = {
        str: "x1",
        bool: True,
        int: 1,
        float: 0.5,
        Any: "x1",
        datetime: datetime(2024, 3, 1, 9, tzinfo=UTC),
    }
    return examples[annotation]


def arguments(function: Any) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for ``function`` found from its signature: a value for each required one
    and for each field-to-send (a keyword defaulting to UNSET), so that it sends a request."""
    hints = typing.get_type_hints(function)
    positional, keywords = [], {}
    for p in inspect.signature(function).parameters.values():
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty:
            positional.append(sample(hints[p.name]))
        elif p.kind is p.KEYWORD_ONLY and p.default is UNSET:
            keywords[p.name] = sample(hints[p.name])
    return positional, keywords


def endpoints() -> list[tuple[str, str, Endpoint]]:
    """(group, method name, endpoint) of every one-request method (``@ENDPOINT.documents``)."""
    found = []
    for target in discover_targets():
        for name in dir(target.async_cls):
            endpoint = endpoint_of(getattr(target.async_cls, name))
            if not name.startswith("_") and endpoint is not None:
                found.append((target.attr, name, endpoint))
    return found


@pytest.mark.parametrize(
    ("group", "name", "endpoint"), endpoints(), ids=[f"{g}.{n}" for g, n, _ in endpoints()]
)
async def test_every_endpoint_is_an_operation_named_after_its_method_with_its_template(
    otel: Otel, group: str, name: str, endpoint: Endpoint
) -> None:
    method, template = endpoint.method, endpoint.template
    transport = MockTransport(lambda request: mock_response(200, {}))
    async with AsyncInventClient(API_KEY, transport=transport, max_retries=0) as client:
        function = getattr(getattr(client, group), name)
        positional, keywords = arguments(function)
        result = function(*positional, **keywords)
        with contextlib.suppress(ResponseValidationError):  # {} is no model: the span is there
            await (result.first_page() if isinstance(result, AsyncPager) else result)

    (operation,) = [s for s in otel.spans() if s.parent is None]
    assert operation.name == f"{group}.{name}"
    assert attributes(operation)["url.template"] == template
    assert attributes(operation)["http.request.method"] == method


# ---------------------------------------------------------------------- propagation


async def test_each_attempt_sends_its_own_traceparent(otel: Otel, fake: FakeInvent) -> None:
    contact_id, segment_id = tagged(fake)
    fake.fail_next(1, status=503)
    async with client_for(fake) as client:
        await client.contacts.add_segment(contact_id, segment_id)

    sent = [r.headers.get("traceparent") for r in fake.requests]
    expected = [
        f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}-{s.context.trace_flags:02x}"
        for s in otel.named(ATTEMPT_NAME)
    ]
    assert sent == expected
    assert all("baggage" not in r.headers for r in fake.requests)


async def test_propagation_can_be_switched_off(otel: Otel, fake: FakeInvent) -> None:
    observe.configure_tracing(propagate=False)
    async with client_for(fake) as client:
        await client.segments.list().first_page()

    assert "traceparent" not in fake.requests[0].headers
    assert otel.named("segments.list")


async def test_without_a_provider_nothing_is_traced_or_sent(fake: FakeInvent) -> None:
    contact_id, segment_id = tagged(fake)
    async with client_for(fake) as client:
        await client.contacts.add_segment(contact_id, segment_id)

    assert "traceparent" not in fake.requests[0].headers
    request = Request(method="GET", path="/orgs/c/segments", operation="segments.list")
    server = observe.Server(fake.url)
    assert observe.operation(request, server, Secret("k"), org_id="c", lane="interactive") is None


async def test_the_switch_turns_spans_and_metrics_off(otel: Otel, fake: FakeInvent) -> None:
    observe.configure_tracing(enabled=False)
    async with client_for(fake) as client:
        await client.segments.list().first_page()

    assert otel.spans() == []
    assert otel.metrics() == {}


# ---------------------------------------------------------------------- bulk


async def test_a_bulk_job_is_one_span_with_its_counts_and_no_item_spans(
    otel: Otel, fake: FakeInvent
) -> None:
    ids = fake.add_contacts(20)
    segment_id = fake.add_segment("VIP").id
    fake.fail_next(2, status=503)
    async with client_for(fake) as client:
        report = await client.contacts.bulk_add_segment(
            [*ids, "ct_missing", ids[0]], segment_id, concurrency=4
        )

    (job,) = otel.spans()
    assert job.name == "contacts.bulk_add_segment"
    assert attributes(job) == {
        "invent.operation": "contacts.bulk_add_segment",
        "invent.org_id": "c",
        "invent.lane": "bulk",
        "invent.bulk.item_spans": 0.0,
        "invent.bulk.total": 22,
        "invent.bulk.succeeded": 20,
        "invent.bulk.failed": 1,
        "invent.bulk.skipped": 1,
        "invent.bulk.retries": report.retries,
        "invent.bulk.rate_limited": 0,
        "invent.bulk.cancelled": False,
    }
    assert report.retries == 2
    item = {"invent.operation": "contacts.bulk_add_segment"}
    assert otel.total("invent.bulk.items", **item, **{"invent.bulk.outcome": "succeeded"}) == 20
    assert otel.total("invent.bulk.items", **item, **{"invent.bulk.outcome": "failed"}) == 1
    assert otel.total("invent.bulk.items", **item, **{"invent.bulk.outcome": "skipped"}) == 1
    assert otel.total("http.client.request.duration") == 23  # the items are still measured
    assert otel.total("invent.client.retries") == 2


async def test_bulk_items_can_have_spans_below_the_job(otel: Otel, fake: FakeInvent) -> None:
    observe.configure_tracing(bulk_items=1.0)
    ids = fake.add_contacts(5)
    segment_id = fake.add_segment("VIP").id
    async with client_for(fake) as client:
        await client.contacts.bulk_add_segment(ids, segment_id, concurrency=2)

    (job,) = otel.named("contacts.bulk_add_segment")
    items = otel.named("contacts.add_segment")
    assert len(items) == 5
    assert all(s.parent is not None and s.parent.span_id == job.context.span_id for s in items)
    assert {attributes(s)["invent.lane"] for s in items} == {"bulk"}


# ---------------------------------------------------------------------- metrics


async def test_metrics_after_a_known_sequence(otel: Otel, fake: FakeInvent) -> None:
    contact_id, segment_id = tagged(fake)
    fake.fail_next(1, status=503)
    async with client_for(fake) as client:
        await client.contacts.add_segment(contact_id, segment_id)  # 503, then 200
        with pytest.raises(NotFoundError):
            await client.contacts.get("ct_missing")  # 404
        fake.fail_next(1, status=429, retry_after=0.1)
        await client.segments.get(segment_id)  # 429, then 200

    duration = "http.client.request.duration"
    post = {"http.request.method": "POST", "url.template": SEGMENT_TEMPLATE}
    assert otel.total(duration) == 5
    assert otel.total(duration, **post, **{"http.response.status_code": 503}) == 1
    assert otel.total(duration, **post, **{"http.response.status_code": 200}) == 1
    assert otel.total(duration, **{"http.response.status_code": 404, "error.type": "404"}) == 1
    assert otel.total("invent.client.retries") == 2
    assert otel.total("invent.client.retries", **{"error.type": "503"}) == 1
    assert otel.total("invent.client.retries", **{"error.type": "429"}) == 1
    assert otel.total("invent.client.rate_limited") == 1
    assert otel.total("invent.client.governor.wait", **{"invent.lane": "interactive"}) == 5
    (_, point), *_ = otel.metrics()[duration]
    assert point.sum > 0
    labels = everything_recorded_metrics(otel)
    for forbidden in (contact_id, segment_id, "ct_missing", "invent.org_id"):
        assert forbidden not in labels


def everything_recorded_metrics(otel: Otel) -> str:
    return "\n".join(repr(attrs) for points in otel.metrics().values() for attrs, _ in points)


# ---------------------------------------------------------------------- the key


async def test_the_key_and_bodies_never_reach_spans_or_metrics(
    otel: Otel, fake: FakeInvent
) -> None:
    echo = {"message": f"bad key {API_KEY}", "authorization": f"Bearer {API_KEY}"}
    fake.fail_next(1, status=503, body=echo)
    fake.fail_next(1, status=400, body=echo)
    async with client_for(fake) as client:
        with pytest.raises(Exception):  # noqa: B017 - any error: what is recorded matters
            await client.contacts.create(name="Secret Name", email="secret@example.com")
        with pytest.raises(Exception):  # noqa: B017
            await client.contacts.create(name="Secret Name", email="secret@example.com")

    recorded = everything_recorded(otel)
    assert otel.spans()
    for forbidden in (API_KEY, "Secret Name", "secret@example.com", "bad key"):
        assert forbidden not in recorded


# ---------------------------------------------------------------------- logging


async def test_invent_log_debug_gives_one_record_per_attempt_without_the_key(
    fake: FakeInvent, caplog: pytest.LogCaptureFixture
) -> None:
    observe.configure_logging("debug")
    contact_id, segment_id = tagged(fake)
    fake.fail_next(1, status=503, body={"message": f"echo {API_KEY}"})
    fake.fail_next(1, status=200, body={"echo": f"Bearer {API_KEY}"})
    caplog.set_level(logging.DEBUG, logger="invent_async")
    async with client_for(fake) as client:
        await client.contacts.delete(contact_id)  # 503 (retried), then a 200 echo (faked)
        await client.contacts.add_segment(contact_id, segment_id)

    records = [r for r in caplog.records if hasattr(r, "invent_method")]
    fields = [vars(r) for r in records]
    assert [(f["invent_status"], f["invent_attempt"]) for f in fields] == [
        (503, 1),
        (200, 2),
        (200, 1),
    ]
    first = fields[0]
    assert records[0].levelno == logging.DEBUG
    assert first["invent_method"] == "DELETE"
    assert first["invent_path_template"] == "/orgs/{org_id}/contacts/{contact_id}"
    assert first["invent_path"] == f"/orgs/c/contacts/{contact_id}"
    assert first["invent_request_id"] == fake.requests[0].request_id
    assert first["invent_elapsed"] > 0
    assert first["invent_governor_wait"] >= 0
    assert "<redacted>" in first["invent_response_body"]
    everything = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert API_KEY not in everything
    assert "<redacted>" in records[1].getMessage()


async def test_invent_log_info_has_no_bodies(
    fake: FakeInvent, caplog: pytest.LogCaptureFixture
) -> None:
    observe.configure_logging("info")
    caplog.set_level(logging.DEBUG, logger="invent_async")
    async with client_for(fake) as client:
        await client.segments.create("VIP")

    (record,) = [r for r in caplog.records if hasattr(r, "invent_method")]
    assert record.levelno == logging.INFO
    assert "VIP" not in record.getMessage()
    assert not hasattr(record, "invent_request_body")


async def test_no_record_per_attempt_without_invent_log(
    fake: FakeInvent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="invent_async")
    async with client_for(fake) as client:
        await client.segments.create("VIP")

    assert [r for r in caplog.records if hasattr(r, "invent_method")] == []


def test_the_cli_verbose_flag_logs_every_attempt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="invent_async")
    with ThreadedFake(api_key=API_KEY) as server:
        server.add_segment("VIP")
        done = cli_runner().invoke(
            cli,
            ["--base-url", server.url, "-v", "segments", "list"],
            env={"INVENT_API_KEY": API_KEY},
        )

    assert done.exit_code == 0, done.output
    records = [r for r in caplog.records if hasattr(r, "invent_method")]
    assert [(r.levelno, vars(r)["invent_path"]) for r in records] == [
        (logging.INFO, "/orgs/c/segments")
    ]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INVENT_", "OTEL_")) or k == "INVENT_BUDGET_DIR"  # not the home's
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**environment, **env},
        timeout=60,
        check=False,
        cwd=Path(__file__).parent,
    )


CALL_FAKE = """
    import asyncio
    from invent_async import AsyncInventClient
    from invent_async.testing import FakeInvent, MockTransport, mock_response

    async def main():
        async with FakeInvent(api_key="k-123456") as fake:
            segment = fake.add_segment("VIP")
            async with AsyncInventClient("k-123456", base_url=fake.url) as client:
                await client.segments.get(segment.id)
            print("traceparent" in fake.requests[0].headers)

    asyncio.run(main())
"""


def test_invent_log_in_the_environment_logs_to_stderr() -> None:
    done = run_python(CALL_FAKE, INVENT_LOG="debug")

    assert done.returncode == 0, done.stderr
    assert "DEBUG invent_async: GET /orgs/c/segments/sg_1 -> 200" in done.stderr
    assert "k-123456" not in done.stderr


def test_without_the_extra_the_client_works_and_sends_no_trace_context() -> None:
    blocked = "import sys; sys.modules['opentelemetry'] = None\n"  # as if not installed

    done = run_python(blocked + textwrap.dedent(CALL_FAKE))

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# ---------------------------------------------------------------------- raw responses


async def test_a_raw_response_has_the_status_headers_request_id_and_result(api: Api) -> None:
    contact = api.fake.add_contact(name="Jane")

    raw = await api.call(lambda c: c.with_raw_response(lambda v: v.contacts.get(contact.id)))

    assert isinstance(raw, RawResult)
    assert raw.status == 200
    assert raw.request_id == api.requests[0].request_id
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.parse() == api.fake.contact(contact.id)
    assert len(api.requests) == 1
    assert API_KEY not in repr(raw)
    assert "Jane" not in repr(raw)


async def test_a_raw_page_has_the_pagination_headers(api: Api) -> None:
    api.fake.add_contacts(25)

    raw = await api.call(
        lambda c: c.with_raw_response(lambda v: v.contacts.list(take=10).first_page())
    )

    assert (raw.headers["pagination-count"], raw.pagination.count) == ("25", 25)
    assert len(raw.parse().items) == 10
    assert len(api.requests) == 1


async def test_a_raw_response_of_a_retried_call_is_the_final_one(api: Api) -> None:
    api.fake.fail_next(1, status=503)

    raw = await api.call(lambda c: c.with_raw_response(lambda v: v.segments.list().first_page()))

    assert raw.request_id == api.requests[-1].request_id
    assert [r.status for r in api.requests] == [503, 200]


async def test_a_raw_response_of_a_view_keeps_the_views_options(api: Api) -> None:
    api.fake.add_org("org_2")
    api.fake.fail_next(1, status=503)

    with pytest.raises(InternalServerError):
        await api.call(
            lambda c: (
                c.for_org("org_2")
                .with_options(max_retries=0)
                .with_raw_response(lambda v: v.segments.list().first_page())
            )
        )

    assert [r.path for r in api.requests] == ["/orgs/org_2/segments"]


async def test_a_raw_response_needs_exactly_one_call(api: Api) -> None:
    api.fake.add_contacts(15)

    with pytest.raises(ValueError, match="exactly one call"):
        await api.call(lambda c: c.with_raw_response(lambda v: v.contacts.list(take=10).collect()))


# ------------------------------------------------------- the observability page


def test_the_observability_page_trace_example_is_the_example_file_and_prints_a_trace() -> None:
    root = Path(__file__).parent.parent
    example = (root / "examples" / "trace.py").read_text(encoding="utf-8")
    page = (root / "docs" / "observability.md").read_text(encoding="utf-8")

    assert f"```python\n{example}```" in page
    done = run_python(example)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("handle request")
    assert lines[1].strip().startswith("contacts.add_segment")
    assert "error.type=503" in lines[2]
    assert "http.request.resend_count=1" in lines[3]
    assert "invent.bulk.succeeded=3" in lines[4]
