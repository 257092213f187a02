"""Endpoints (``invent_async._endpoints``): a declaration checked, the request it builds, the
docstring line it writes. Plain function calls, no event loop (but for the order of the
checks, seen through a client over ``MockTransport``).

The request path an endpoint builds is compared with ``_protocol.build_path``, the generic
builder, for any ids: the compiled function must be exactly as strict (same errors for empty,
blank, ``.``/``..`` and non-string ids) and encode exactly alike.
"""

from __future__ import annotations

import inspect
import traceback
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invent_async import AsyncInventClient, RawResponse, TransportRequest
from invent_async._endpoints import Endpoint, endpoint_of, insert_line
from invent_async._models import SegmentCreate
from invent_async._protocol import Request, build_path, json_body
from invent_async.testing import MockTransport, mock_response

SEGMENT = Endpoint(
    "POST", "/orgs/{org_id}/contacts/{contact_id}/segments/{segment_id}", "contacts.add_segment"
)
PREFIX = build_path("orgs", ("org_id", "sub org/é"))


def generic(contact_id: object, segment_id: object) -> str:
    segments = ("contacts", ("contact_id", contact_id), "segments", ("segment_id", segment_id))
    return PREFIX + build_path(*segments)


def outcome(build: Any, *ids: object) -> object:
    try:
        return build(*ids)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


@given(st.text(max_size=12) | st.sampled_from([".", "..", " ", "a/b", "%2F", "ct_1"]), st.text())
def test_the_compiled_path_is_the_generic_builders_for_any_id(contact: str, segment: str) -> None:
    compiled = outcome(lambda a, b: SEGMENT.path(PREFIX, a, b), contact, segment)

    assert compiled == outcome(generic, contact, segment)


@pytest.mark.parametrize("bad", ["", " ", ".", "..", 5, None])
def test_an_id_that_could_change_the_path_is_refused_as_by_the_generic_builder(bad: Any) -> None:
    assert outcome(lambda: SEGMENT.request(PREFIX, bad, "sg_1")) == outcome(generic, bad, "sg_1")
    assert outcome(lambda: SEGMENT.request(PREFIX, "ct_1", bad)) == outcome(generic, "ct_1", bad)


def test_a_refused_id_leaves_nothing_half_made_in_the_traceback() -> None:
    """A traceback rendered with its locals (a crash reporter) must repr every local."""
    with pytest.raises(ValueError) as caught:
        SEGMENT.request(PREFIX, "..", "sg_1")

    traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()


def test_the_request_carries_the_declaration() -> None:
    create = Endpoint("POST", "/orgs/{org_id}/contacts", "contacts.create", idempotent=False)

    body = SegmentCreate(name="VIP")

    request = create.request("/orgs/c", body=body, query=(("a", "1"),))

    assert request == Request(
        method="POST",
        path="/orgs/c/contacts",
        query=(("a", "1"),),
        body=json_body(body),
        idempotent=False,
        operation="contacts.create",
        template="/orgs/{org_id}/contacts",
    )
    assert SEGMENT.request("/orgs/c", "a b", "sg_1") == Request(
        method="POST",
        path="/orgs/c/contacts/a%20b/segments/sg_1",
        operation="contacts.add_segment",
        template=SEGMENT.template,
    )
    assert SEGMENT.params == ("contact_id", "segment_id")
    assert SEGMENT.line == f"``POST {SEGMENT.template}``"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("GET", "/contacts/{contact_id}", "contacts.get"), "starts with /orgs/{org_id}"),
        (("GET", "/orgs/{org_id}/a b", "contacts.get"), "neither a literal"),
        (("GET", "/orgs/{org_id}/../x", "contacts.get"), "neither a literal"),
        (("GET", "/orgs/{org_id}/{Id}", "contacts.get"), "neither a literal"),
        (("GET", "/orgs/{org_id}/{a}/{a}", "contacts.get"), "reserved or repeated"),
        (("GET", "/orgs/{org_id}/{body}", "contacts.get"), "reserved or repeated"),
        (("GET", "/orgs/{org_id}/contacts/", "contacts.get"), "neither a literal"),
        (("FETCH", "/orgs/{org_id}/contacts", "contacts.get"), "unknown HTTP method"),
        (("GET", "/orgs/{org_id}/contacts", "get"), "'<group>.<method>'"),
    ],
)
def test_a_template_the_builder_cannot_compile_is_refused(
    args: tuple[str, str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("(", r"\(")):
        Endpoint(*args)


def test_documents_puts_the_line_after_the_summary_and_records_the_endpoint() -> None:
    async def add_segment() -> None:
        """Add a contact to a segment.

        More words.
        """

    documented = SEGMENT.documents(add_segment)

    assert documented is add_segment
    assert endpoint_of(add_segment) is SEGMENT
    # indented as the docstring is (Python 3.13 strips the indentation when it compiles one)
    assert inspect.cleandoc(add_segment.__doc__ or "") == (
        f"Add a contact to a segment.\n\n{SEGMENT.line}\n\nMore words."
    )
    assert endpoint_of(generic) is None


def test_documents_refuses_a_docstring_that_spells_the_line_itself() -> None:
    def twice() -> None:
        """Add.

        ``POST /orgs/{org_id}/contacts/{contact_id}/segments/{segment_id}``
        """

    with pytest.raises(ValueError, match="spells"):
        SEGMENT.documents(twice)


def test_documents_leaves_a_missing_docstring_alone() -> None:
    """Under ``python -OO`` docstrings are None."""

    def bare() -> None:
        pass

    assert SEGMENT.documents(bare).__doc__ is None
    assert endpoint_of(bare) is SEGMENT


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("Summary.", "Summary.\n\n        ``X``\n        "),
        ("Summary.\n        ", "Summary.\n\n        ``X``\n        "),
        ("Summary.\n\n    Body.\n    ", "Summary.\n\n    ``X``\n\n    Body.\n    "),
        ("Two-line\n    summary.\n\n    Body.", "Two-line\n    summary.\n\n    ``X``\n\n    Body."),
        ("Two-line\n    summary.\n    ", "Two-line\n    summary.\n\n    ``X``\n    "),
    ],
)
def test_insert_line_writes_the_paragraph_after_the_summary(doc: str, expected: str) -> None:
    assert insert_line(doc, "``X``") == expected


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.contacts.update("", name=object()), id="contacts.update"),
        pytest.param(lambda c: c.contacts.merge("", [object()]), id="contacts.merge"),
        pytest.param(
            lambda c: c.contacts.update_channel("", "ch_1", name=object()),
            id="contacts.update_channel",
        ),
    ],
)
async def test_a_bad_id_is_reported_before_the_body_is_encoded(call: Any) -> None:
    """The id names what is wrong, not a body that would not encode (as before endpoints)."""
    sent: list[TransportRequest] = []

    def answer(request: TransportRequest) -> RawResponse:
        sent.append(request)
        return mock_response(200, {})

    transport = MockTransport(answer)
    async with AsyncInventClient("k", transport=transport, max_retries=0) as client:
        with pytest.raises(ValueError, match="must be a non-empty string, got ''"):
            await call(client)
    assert sent == []
