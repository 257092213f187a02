"""Hypothesis strategies for the models of invent_async, derived from their attrs fields.

``models(cl)`` builds instances of any model of ``_models``, every field drawn from its
annotation, so a new model (or a new field) needs nothing here. The leaves encode what the
wire allows:

- ids (a ``str`` field named ``id`` or ``*_id``): non-empty text; other text: any, short;
- datetimes: timezone-aware at microsecond resolution (UTC or a fixed offset), what RFC 3339
  carries;
- open enums (``SomeEnum | str``): a known member or a string the SDK does not know yet;
- free-form mappings (``Mapping[str, Any]``): JSON objects; a value of undocumented shape
  (``Any``): any JSON value;
- ``OtherPart``, the open fallback of the message parts: a JSON object whose ``type`` is not
  ``"text"`` (that one is a ``TextPart``);
- integers both JSON backends can encode (int64), finite floats;
- ``X | None``: None or X; ``X | Unset`` (a field a request or two-way model may leave out):
  UNSET or X; ``tuple[X, ...]``: up to 3 items; a model: ``models`` of it.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st

from invent_async import UNSET, Unset
from invent_async import _converter as conv
from invent_async import _models as m

__all__ = [
    "aware_datetimes",
    "ids",
    "json_objects",
    "json_values",
    "model_classes",
    "models",
    "open_enum",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.StrEnum)

_INT64_MAX = 2**63 - 1

ids = st.text(min_size=1, max_size=24)
texts = st.text(max_size=40)
counts = st.integers(min_value=0, max_value=_INT64_MAX)

# ------------------------------------------------------------------------- scalars

_fixed_offsets: st.SearchStrategy[tzinfo] = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)

aware_datetimes: st.SearchStrategy[datetime] = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by contract
    max_value=datetime(2200, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC) | _fixed_offsets,
)
"""Timezone-aware datetimes with microseconds, in UTC or a fixed UTC offset (whole minutes)."""

_json_scalars: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=_INT64_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values: st.SearchStrategy[Any] = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)
json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(texts, json_values, max_size=4)


def open_enum(enum_type: type[E]) -> st.SearchStrategy[E | str]:
    """A known member of ``enum_type`` or a string that is not one of its values."""
    known_values = {member.value for member in enum_type}
    unknown = st.text(max_size=20).filter(lambda value: value not in known_values)
    return st.sampled_from(list(enum_type)) | unknown


_LEAVES: dict[Any, st.SearchStrategy[Any]] = {
    str: texts,
    bool: st.booleans(),
    int: counts,
    float: st.floats(allow_nan=False, allow_infinity=False),
    datetime: aware_datetimes,
    Mapping[str, Any]: json_objects,
    Any: json_values,
}


# ------------------------------------------------------------------------- models


def model_classes() -> list[type]:
    """Every model of ``_models`` (its attrs classes), in the order they are written."""
    return [obj for obj in vars(m).values() if conv.is_model(obj)]


def _for(annotation: Any, name: str) -> st.SearchStrategy[Any]:
    """The strategy of a field's annotation (``name``: the field's, for ids)."""
    if annotation is str and (name == "id" or name.endswith("_id")):
        return ids
    if annotation in _LEAVES:
        return _LEAVES[annotation]
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.StrEnum)]
        rest = [a for a in args if a not in (type(None), Unset, *enums)]
        choices: list[st.SearchStrategy[Any]] = []
        if enums and rest == [str]:  # an open enum
            choices.append(open_enum(enums[0]))
        else:
            choices.extend(_for(a, name) for a in [*enums, *rest])
        if type(None) in args:
            choices.append(st.none())
        if Unset in args:
            choices.append(st.just(UNSET))
        return st.one_of(choices)
    if typing.get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(_for(args[0], name), max_size=3).map(tuple)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    if isinstance(annotation, type) and attrs.has(annotation):
        return models(annotation)
    raise TypeError(f"no strategy for the annotation {annotation!r} (field {name!r})")


@functools.cache
def models(cl: type[T]) -> st.SearchStrategy[T]:
    """Instances of the model ``cl``, every field drawn from its annotation.

    Raises:
        TypeError: a field's annotation has no strategy (add its leaf above).
    """
    model: Any = cl
    if model is m.OtherPart:
        other = json_objects.filter(lambda data: data.get("type") != "text")
        return st.builds(cl, data=other)
    fields = attrs.fields(attrs.resolve_types(model))
    return st.builds(cl, **{f.name: _for(f.type, f.name) for f in fields})
