"""Public serialisation: ``to_dict``/``to_json`` and ``from_dict``/``from_json`` round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
import strategies
from hypothesis import given, settings
from hypothesis import strategies as st

import invent_async
from invent_async import (
    UNSET,
    Contact,
    Segment,
    from_dict,
    from_json,
    to_dict,
    to_json,
)
from invent_async._models import ContactUpdate

MODELS = [
    pytest.param(strategies.models(cl), id=cl.__name__)
    for cl in strategies.model_classes()
    if cl.__name__ in invent_async.__all__
]
"""Every exported model (found in ``_models``; the internal request models are not read)."""


@pytest.mark.parametrize("strategy", MODELS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_model_round_trips_through_dict_and_json(
    strategy: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    model = data.draw(strategy)

    as_dict = to_dict(model)

    assert json.loads(json.dumps(as_dict)) == as_dict  # plain JSON data, stdlib-encodable
    assert from_dict(type(model), as_dict) == model
    assert from_json(type(model), to_json(model)) == model
    assert json.loads(to_json(model)) == as_dict


@settings(max_examples=30, deadline=None)
@given(contacts=st.lists(strategies.models(Contact), max_size=3))
def test_a_list_of_models_round_trips_as_a_tuple(contacts: list[Contact]) -> None:
    assert from_json(tuple[Contact, ...], to_json(contacts)) == tuple(contacts)


def test_datetimes_are_rfc3339_strings_and_enums_their_values() -> None:
    segment = from_dict(
        Segment,
        {
            "id": "sg_1",
            "name": "VIP",
            "color": "red",
            "contacts_count": 0,
            "created_at": "2026-01-02T03:04:05Z",
            "updated_at": "2026-01-02T03:04:05Z",
        },
    )

    assert to_dict(segment)["created_at"] == "2026-01-02T03:04:05Z"
    assert to_dict(segment)["color"] == "red"


def test_an_internal_request_model_omits_what_is_unset_and_is_never_read() -> None:
    update = ContactUpdate(name="Ada", blocked=UNSET)

    assert to_dict(update) == {"name": "Ada"}
    with pytest.raises(ValueError, match="never read"):
        from_dict(ContactUpdate, {"name": "Ada"})


def test_bad_data_names_the_field_path() -> None:
    with pytest.raises(ValueError, match=r"\$\.name") as caught:
        from_dict(Segment, {"id": "sg_1", "name": None})

    assert caught.value.errors  # type: ignore[attr-defined]


def test_the_functions_are_public() -> None:
    assert {"to_dict", "to_json", "from_dict", "from_json"} <= set(invent_async.__all__)
