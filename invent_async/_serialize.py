"""Public serialisation: any model to the API's JSON shape and back, through the one converter.

``to_dict(model)`` gives what the API sends or receives (datetimes as RFC 3339 strings with
``Z``, enums as their values);
``to_json`` encodes it (orjson when installed); ``from_dict(Contact, data)`` and
``from_json(Contact, text)`` read a response model back, as the client reads a response.
"""

from __future__ import annotations

from typing import Any, TypeVar

from . import _converter
from ._types import JSON

__all__ = ["from_dict", "from_json", "to_dict", "to_json"]

T = TypeVar("T")


def to_dict(model: Any) -> Any:
    """A model (or a list or tuple of models) in the API's JSON shape: plain dicts, lists,
    strings, numbers, booleans and None, ready for :func:`json.dumps` or a database column.


    ``to_dict(contact)`` is ``{"id": "ct_1", "created_at": "2026-01-02T00:00:00Z", ...}``:

    .. code-block:: python

        import json

        from invent_async import AsyncInventClient, to_dict

        async with AsyncInventClient() as client:
            contact = await client.contacts.get("ct_123")
        data = to_dict(contact)
        assert data["name"] == "Ada" and data["created_at"].endswith("Z")
        json.dumps(data)  # plain JSON types only

    """
    return _converter.unstructure(model)


def to_json(model: Any) -> str:
    """:func:`to_dict` encoded as compact JSON text (UTF-8, not ASCII-escaped)."""
    return _converter.dumps(_converter.unstructure(model)).decode()


def from_dict(cls: type[T], data: JSON) -> T:
    """Read a response model (``Contact``, ``Segment``, ...) from data in the API's JSON shape,
    as the client reads a response: unknown keys are ignored, types are checked strictly.

    ``cls`` may also be ``tuple[Model, ...]`` for a list. ``from_dict(type(m), to_dict(m)) == m``
    for every response model ``m``:

    .. code-block:: python

        from invent_async import AsyncInventClient, Contact, from_dict, to_dict

        async with AsyncInventClient() as client:
            contact = await client.contacts.get("ct_123")
        assert from_dict(Contact, to_dict(contact)) == contact
        assert from_dict(tuple[Contact, ...], [to_dict(contact)]) == (contact,)
        try:
            from_dict(Contact, {**to_dict(contact), "id": 123})
        except ValueError as exc:
            print(exc)  # names the bad field

    Raises:
        ValueError: the data does not match ``cls``; its ``errors`` attribute names each bad
            field path (``@ $.channels[0].id``).
    """
    return _converter.structure(data, cls)


def from_json(cls: type[T], text: str | bytes) -> T:
    """:func:`from_dict` of decoded JSON text (``ValueError`` also for text that is not JSON)."""
    return _converter.structure(_converter.loads(text), cls)
