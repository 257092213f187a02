"""Exported names say where a user imports them from: ``invent_async.APITimeoutError``, never the
private module that defines it, in tracebacks, reprs, pickles and type hints."""

from __future__ import annotations

import enum
import pickle
import traceback
import types
import typing

import attrs
import pytest
from _harness import API_KEY

import invent_async
import invent_async.testing
from invent_async import AsyncInventClient, InventClient, NotFoundError
from invent_async.testing import FakeInvent


def exported() -> list[tuple[str, type | types.FunctionType]]:
    """(public module, object) of every class and function the two public modules export."""
    found: list[tuple[str, type | types.FunctionType]] = []
    for module in (invent_async, invent_async.testing):
        for name in module.__all__:
            obj = getattr(module, name)  # loads the sync client's names too
            if isinstance(obj, type | types.FunctionType):
                found.append((module.__name__, obj))
    return found


@pytest.mark.parametrize(("module", "obj"), exported(), ids=lambda v: getattr(v, "__name__", v))
def test_every_exported_class_and_function_reports_its_public_module(
    module: str, obj: type
) -> None:
    assert obj.__module__ == module
    assert getattr(__import__(module, fromlist=["_"]), obj.__qualname__) is obj


@pytest.mark.parametrize(
    "obj",
    [obj for _, obj in exported() if isinstance(obj, type)],
    ids=lambda v: v.__name__,
)
def test_the_type_hints_of_every_exported_class_resolve(obj: type) -> None:
    # evaluated where they were written, although __module__ now names the public module
    typing.get_type_hints(obj)


async def test_a_traceback_names_the_public_error_class(fake: FakeInvent) -> None:
    async with AsyncInventClient(API_KEY, base_url=fake.url, max_retries=0) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.contacts.get("ct_missing")

    last = traceback.format_exception(caught.value)[-1]
    assert last.startswith("invent_async.NotFoundError: ")
    assert "_exceptions" not in "".join(traceback.format_exception(caught.value))
    again = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert type(again) is NotFoundError
    assert again.path == caught.value.path


def test_the_sync_clients_resources_are_public_classes() -> None:
    with InventClient(API_KEY, base_url="http://127.0.0.1:9", rate_limit=None) as client:
        contacts, segments = type(client.contacts), type(client.segments)

    assert (contacts, segments) == (invent_async.Contacts, invent_async.Segments)
    assert repr(contacts) == "<class 'invent_async.Contacts'>"
    assert repr(segments) == "<class 'invent_async.Segments'>"


HAND_WRITTEN_REPRS = [
    obj
    for _, obj in exported()
    if isinstance(obj, type)
    and not attrs.has(obj)  # attrs sets every field before a validator can raise
    and not issubclass(obj, BaseException | enum.Enum | dict)
    and "__repr__" in {name for klass in obj.__mro__[:-1] for name in vars(klass)}
]


@pytest.mark.parametrize("cls", HAND_WRITTEN_REPRS, ids=lambda cls: cls.__name__)
def test_a_half_built_object_can_still_be_shown(cls: type) -> None:
    """A constructor that raises leaves ``self`` in the traceback's locals: a crash reporter
    (``capture_locals``, Sentry, rich, ``pytest -l``) shows it, and must not fail doing so."""
    blank: object = cls.__new__(cls)  # type: ignore[call-overload]  # no __init__ run

    shown = repr(blank)

    assert cls.__name__ in shown
    assert str(blank)
