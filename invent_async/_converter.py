"""The one cattrs converter: every rule about how models look on the wire lives here.

- JSON backend: orjson when installed (the ``orjson`` extra, imported on the first JSON
  encoded or decoded), the standard library otherwise.
- Datetimes: parsed with ``datetime.fromisoformat`` (which accepts a trailing ``Z`` from Python
  3.11); date-only and naive values are read as UTC, so every datetime is timezone-aware.
  Written back as RFC 3339 with a ``Z`` suffix.
- Which rule applies is found from the models themselves, never from a list of them: every
  attrs class of ``_models`` is a model, of one of three kinds. One without a field defaulting
  to ``UNSET`` is a *response* model (read on the fast path, never written by the client but
  by :func:`unstructure` as it was read). One with such a field is written, UNSET fields left
  out: a *request* model (a body, never read) or, when a response model holds it (in a field,
  a tuple, an optional: ``ContactChannelOption`` rows, sent in an import and received back in
  its result), a *two-way* model, also read on the fast path: a field missing from the data
  is its default (UNSET, or None when the field's type says so), a present one is read as
  the field's type without ``Unset``. A field annotated ``SomeEnum | str`` (``| None``) is an
  open enum: a value this SDK does not know arrives as a plain ``str`` instead of failing.
- Reading is lenient about *extra* keys (ignored) and strict about *types*: a missing required
  field, a ``null`` where a string is required or ``"true"`` where a bool is required is an
  error that names the field path (``@ $.channels[0].id``).
- Request and two-way models omit every field left at :data:`~invent_async.UNSET`. ``UNSET``
  itself never reaches the wire: unstructuring it anywhere else (a required field, inside a
  list, on its own) raises ``TypeError``, and so does structuring into a request model or an
  ``Unset`` type.
- ``ContactField.type`` is read from the top level or, when absent, from ``schema.type``.
- A message part (``TextPart | OtherPart``) is a union tagged by its ``type``: ``"text"`` is
  a ``TextPart`` (written with its ``type``), any other type, or none, an ``OtherPart`` that
  keeps the JSON object as it came and writes it back unchanged (an unknown part type
  round-trips, never fails).

Structuring runs a fast converter first (``detailed_validation=False``); only when that fails
is the input structured again with a detailed converter, to name the bad field path. Both are
built, and cattrs imported, on the first model read or written (:func:`_converters`), not at
``import invent_async``; nor is ``_models`` imported here before then (``import invent_async``
does not load it: see its docstring), each function that needs the module importing it.
"""

from __future__ import annotations

import enum
import functools
import json as _stdlib_json
import operator
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from ._public import defined_in
from ._types import JSON, UNSET, Unset

if TYPE_CHECKING:
    import cattrs

    from . import _models as m

__all__ = [
    "InvalidData",
    "builds_directly",
    "dumps",
    "format_datetime",
    "is_model",
    "is_request_model",
    "is_response_model",
    "is_two_way_model",
    "json_backend",
    "loads",
    "open_enum",
    "parse_datetime",
    "set_json_backend",
    "structure",
    "structure_detailed",
    "unstructure",
]

T = TypeVar("T")

_MODELS: Final = f"{__package__}._models"
"""The module whose attrs classes are the models (named, not imported: see the docstring)."""


class InvalidData(ValueError):
    """Raised by :func:`structure`: ``errors`` lists each problem with its field path."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


# --------------------------------------------------------------------------- JSON backend


def _stdlib_loads(data: bytes | str) -> JSON:
    return _stdlib_json.loads(data)


def _stdlib_dumps(obj: JSON) -> bytes:
    return _stdlib_json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


_loads: Callable[[bytes | str], JSON]
_dumps: Callable[[JSON], bytes]
_backend_name: str | None = None  # None: not chosen yet (orjson is imported on first use)


def _first_loads(data: bytes | str) -> JSON:
    _choose_default()
    return _loads(data)


def _first_dumps(obj: JSON) -> bytes:
    _choose_default()
    return _dumps(obj)


_loads, _dumps = _first_loads, _first_dumps


def _import_orjson() -> types.ModuleType | None:
    """orjson, imported now (None when it is not installed): on the first JSON encoded or
    decoded, not with the package (importing it is about 2 ms, with ``dataclasses``)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the installed extras
        return None
    return orjson


def _choose_default() -> None:
    """The default backend, chosen once: orjson when installed, else the standard library."""
    if _backend_name is None:
        set_json_backend("orjson" if _import_orjson() is not None else "json")


def set_json_backend(name: str) -> None:
    """Choose ``"orjson"`` or ``"json"`` (the standard library). Used by tests and benchmarks."""
    global _loads, _dumps, _backend_name
    if name == "orjson":
        orjson = _import_orjson()
        if orjson is None:
            raise RuntimeError(
                "orjson is not installed: pip install orjson (the package's orjson extra)"
            )
        _loads, _dumps = orjson.loads, orjson.dumps
    elif name == "json":
        _loads, _dumps = _stdlib_loads, _stdlib_dumps
    else:
        raise ValueError(f"unknown JSON backend {name!r}; expected 'orjson' or 'json'")
    _backend_name = name


def json_backend() -> str:
    """The name of the JSON backend in use: ``"orjson"`` or ``"json"``."""
    _choose_default()
    assert _backend_name is not None
    return _backend_name


def loads(data: bytes | str) -> JSON:
    """Decode JSON with the active backend (raises ``ValueError`` on invalid JSON)."""
    return _loads(data)


def dumps(obj: JSON) -> bytes:
    """Encode JSON (already unstructured data) with the active backend."""
    return _dumps(obj)


# --------------------------------------------------------------------------- scalar rules


def parse_datetime(value: object) -> datetime:
    """Parse an RFC 3339 / ISO 8601 date-time (or a bare date) into an aware datetime."""
    if type(value) is str:
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value)
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)  # noqa: DTZ001 - made aware below
    else:
        raise TypeError(f"expected an ISO 8601 date-time string, got {type(value).__name__}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_datetime(value: datetime) -> str:
    """Format a datetime as RFC 3339 in UTC, written with a ``Z`` (naive values are UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _strict_str(value: object, _: type) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _strict_bool(value: object, _: type) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected a boolean, got {type(value).__name__}")


def _strict_int(value: object, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _strict_float(value: object, _: type) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _optional_str(value: object, cl: type) -> str | None:
    if value is None or type(value) is str:
        return value
    return _strict_str(value, cl)


def _optional_bool(value: object, cl: type) -> bool | None:
    if value is None or value is True or value is False:
        return value
    return _strict_bool(value, cl)


def _optional_int(value: object, cl: type) -> int | None:
    if value is None or type(value) is int:
        return value
    return _strict_int(value, cl)


def _optional_datetime(value: object, _: type) -> datetime | None:
    return None if value is None else parse_datetime(value)


def _is_homogeneous_tuple(t: Any) -> bool:
    args: tuple[Any, ...] = getattr(t, "__args__", ())
    return getattr(t, "__origin__", None) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_hook(
    conv: cattrs.Converter, t: Any, *, detailed: bool
) -> Callable[[Any, Any], tuple[Any, ...]]:
    """``tuple[X, ...]`` from a JSON array only (a string or an object is an error)."""
    from cattrs.errors import IterableValidationError, IterableValidationNote

    item_type = t.__args__[0]
    item_hook = conv.get_structure_hook(item_type)

    def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise TypeError(f"expected a JSON array, got {type(value).__name__}")
        return tuple([item_hook(item, item_type) for item in value])

    def structure_tuple_detailed(value: Any, _: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise TypeError(f"expected a JSON array, got {type(value).__name__}")
        items, errors = [], []
        for index, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except Exception as exc:
                note = IterableValidationNote(f"Structuring {t} @ index {index}", index, item_type)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {t!r}", errors, t)
        return tuple(items)

    return structure_tuple_detailed if detailed else structure_tuple


def _json_object(value: object, _: type) -> Mapping[str, Any]:
    if isinstance(value, dict):
        return value
    raise TypeError(f"expected a JSON object, got {type(value).__name__}")


def _open_enum(enum_type: type[enum.Enum], nullable: bool) -> Callable[[object, type], Any]:
    known = {member.value: member for member in enum_type}

    def structure_open_enum(value: object, _: type) -> Any:
        if isinstance(value, str):
            return known.get(value, value)
        if value is None and nullable:
            return None
        raise TypeError(f"expected a string, got {type(value).__name__}")

    return structure_open_enum


def _enum_value(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


# --------------------------------------------------------------------------- which rule


def is_model(t: Any) -> bool:
    """Whether ``t`` is one of the attrs classes of ``_models``."""
    return isinstance(t, type) and attrs.has(t) and defined_in(t) == _MODELS


def _is_written(t: Any) -> bool:
    """A model with a field defaulting to ``UNSET``: written with that field left out."""
    return is_model(t) and any(a.default is UNSET for a in attrs.fields(t))


def is_request_model(t: Any) -> bool:
    """Whether ``t`` is a request body model: written (a field defaults to ``UNSET``), never
    read (no response model holds it)."""
    return _is_written(t) and t not in _held_by_responses()


def is_two_way_model(t: Any) -> bool:
    """Whether ``t`` is both sent and received: written (a field defaults to ``UNSET``) and
    held by a response model, so also read."""
    return _is_written(t) and t in _held_by_responses()


def is_response_model(t: Any) -> bool:
    """Whether ``t`` is a model read from responses and never written by the client: a model
    without a field defaulting to ``UNSET``."""
    return is_model(t) and not _is_written(t)


def _is_read(t: Any) -> bool:
    return is_response_model(t) or is_two_way_model(t)


def _models_in(t: Any) -> typing.Iterator[type]:
    """The models an annotation names (itself, or inside a union, a tuple, ...)."""
    if is_model(t):
        yield t
    for arg in typing.get_args(t):
        yield from _models_in(arg)


def _held_by_responses() -> frozenset[type]:
    """Every model of ``_models`` that a response model holds, directly or through others.

    Walked afresh on each call (a few dozen fields): it is asked once per written model,
    cattrs keeping the hook it chose for each type."""
    from . import _models as m

    todo = [t for t in vars(m).values() if is_response_model(t)]
    held: set[type] = set()
    while todo:
        for a in attrs.fields(attrs.resolve_types(todo.pop())):
            for inner in _models_in(a.type):
                if inner not in held and _is_written(inner):
                    held.add(inner)
                    todo.append(inner)
    return frozenset(held)


def _union_args(t: Any) -> tuple[Any, ...]:
    if typing.get_origin(t) in (types.UnionType, typing.Union):
        return typing.get_args(t)
    return ()


def _read_as(t: Any) -> Any:
    """What a field of a two-way model is read as: its type without ``Unset`` (``str | Unset``
    is read as ``str``, ``str | Unset | None`` as ``str | None``)."""
    args = _union_args(t)
    if Unset not in args:
        return t
    return functools.reduce(operator.or_, [a for a in args if a is not Unset])


def open_enum(t: Any) -> type[enum.Enum] | None:
    """The enum of an open-enum annotation (``E | str``, ``E | str | None``), else None."""
    args = _union_args(t)
    enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
    if len(enums) == 1 and str in args and set(args) <= {enums[0], str, type(None)}:
        return enums[0]
    return None


def _mentions_unset(t: Any) -> bool:
    return t == Unset or Unset in _union_args(t)


def _never_read(value: object, cl: Any) -> Any:
    name = getattr(cl, "__name__", None) or repr(cl)
    raise TypeError(f"{name} is written to the wire, never read from it (UNSET cannot be read)")


def _unset_on_the_wire(value: object) -> Any:
    raise TypeError(
        "UNSET reached the wire: it may only be the value of an optional field of a request "
        "model, which is then left out"
    )


def _reject_unset(value: object) -> None:
    """Raise if UNSET is in unstructured data (a field whose hook passed it through as is)."""
    if value is UNSET:
        _unset_on_the_wire(value)
    elif isinstance(value, dict):
        for item in value.values():
            _reject_unset(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_unset(item)


# --------------------------------------------------------------------------- converters


# Field types whose check is written inline by _fast_model_hook: (test, allows None).
_INLINE_CHECKS: Final[dict[Any, tuple[str, bool]]] = {
    str: ("{v}.__class__ is str", False),
    str | None: ("{v}.__class__ is str", True),
    bool: ("{v} is True or {v} is False", False),
    bool | None: ("{v} is True or {v} is False", True),
    Mapping[str, Any]: ("{v}.__class__ is dict", False),
    Mapping[str, Any] | None: ("{v}.__class__ is dict", True),
}

# Field types converted inline on their common form, the hook doing everything else (other
# forms, None, the error): (the common form's test, its conversion or "" for none).
_AWARE: Final = "{v} = _fromiso({v})\nif {v}.tzinfo is None: {v} = {v}.replace(tzinfo=UTC)"

_INLINE_CONVERSIONS: Final[dict[Any, tuple[str, str]]] = {
    int: ("{v}.__class__ is int", ""),
    int | None: ("{v}.__class__ is int", ""),
    datetime: ("{v}.__class__ is str", _AWARE),
    datetime | None: ("{v}.__class__ is str", _AWARE),
}


def builds_directly(cl: type[Any]) -> bool:
    """Whether instances of ``cl`` may be made without its ``__init__``: a slotted attrs
    class whose ``__init__`` only stores its arguments (no validator, converter, hook, or
    field left out of ``__init__``). The fast structure function of such a class calls
    ``object.__new__`` and each slot's setter instead (attrs' frozen ``__init__`` goes
    through ``object.__setattr__`` once per field)."""
    if not attrs.has(cl) or "__slots__" not in cl.__dict__:
        return False
    if any(hasattr(cl, h) for h in ("__attrs_pre_init__", "__attrs_post_init__")):
        return False
    return all(
        a.init and a.validator is None and a.converter is None and a.alias == a.name
        for a in attrs.fields(cl)
    )


def _builder(cl: type[Any]) -> type[Any] | None:
    """A mutable class with the slots of ``cl``, laid out alike, or None where there is none.

    The fast structure function of such a class fills a builder's slots with plain
    assignments, then makes it an instance of ``cl`` by assigning ``__class__``: one step per
    object instead of one slot-setter call per field (3x faster for a 16-field channel).
    CPython allows it between heap types of the same layout: no base but ``object``, the same
    slots, no ``__weakref__`` slot (CPython places it after the others, which it then counts
    as a different layout: the models are ``weakref_slot=False`` for this). Tried once here
    on an empty instance; where it fails (another interpreter or a class it refuses), None.
    """
    if cl.__bases__ != (object,) or "__slots__" not in cl.__dict__:
        return None
    slots = tuple(cl.__dict__["__slots__"])
    if set(slots) != {a.name for a in attrs.fields(cl)}:
        return None
    builder = type(f"_{cl.__name__}Builder", (), {"__slots__": slots, "__module__": __name__})
    probe: Any = object.__new__(builder)
    try:
        probe.__class__ = cl
    except TypeError:
        return None
    return builder


def _fast_model_hook(conv: cattrs.Converter, cl: type[Any]) -> Callable[[Any, Any], Any]:
    """A structure function for a response (or two-way) model, generated from its fields.

    Compared with cattrs' own: the checks of plain string/bool/object fields are inline, and
    so are the usual forms of datetimes (an ISO string), open enums (a string, known or not),
    integers and tuples of models (a list), the field's hook handling every other form; a
    class that :func:`builds_directly` is built without its ``__init__``: through a
    :func:`_builder` where there is one, else with ``object.__new__`` and its slot setters.
    It only has to be fast and correct on valid input and to *fail* on invalid input; the
    detailed converter then explains the failure with field paths. ``tests/test_converter``
    checks it builds what the detailed (stock cattrs) converter builds, for every model.
    """
    attrs.resolve_types(cl)  # the models use string annotations
    direct = builds_directly(cl)
    lines = ["def structure(o, _):", "  if o.__class__ is not dict: raise TypeError(o)"]
    names: dict[str, Any] = {
        "cl": cl,
        "NOTHING": attrs.NOTHING,
        "_new": object.__new__,
        "_fromiso": datetime.fromisoformat,
        "UTC": UTC,
    }
    builder = _builder(cl) if direct else None
    if builder is not None:
        names["builder"] = builder
        lines.append("  self = _new(builder)")
    elif direct:
        lines.append("  self = _new(cl)")
    args = []
    for i, a in enumerate(attrs.fields(cl)):
        v = f"v{i}"
        key = repr(a.name)
        field_type = _read_as(a.type)  # a two-way model's UNSET field: present, it is a value
        if isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            names[f"f{i}"] = a.default.factory
            lines.append(f"  {v} = o.get({key}, NOTHING)")
            lines.append(f"  if {v} is NOTHING: {v} = f{i}()")
            default = None
        elif a.default is not attrs.NOTHING:
            names[f"d{i}"] = a.default
            lines.append(f"  {v} = o.get({key}, d{i})")
            default = f"d{i}"
        else:
            lines.append(f"  {v} = o[{key}]")
            default = None
        # code run when the value was given (not the default)
        body: list[str] = []
        check = _INLINE_CHECKS.get(field_type)
        conversion = _INLINE_CONVERSIONS.get(field_type)
        enum_type = open_enum(field_type)
        if check is not None:
            test, nullable = check
            cond = test.format(v=v)
            if nullable:
                cond = f"{v} is None or {cond}"
            body.append(f"if not ({cond}): raise TypeError({key})")
        else:
            names[f"h{i}"] = conv.get_structure_hook(field_type)
            names[f"t{i}"] = field_type
            hook_call = f"{v} = h{i}({v}, t{i})"
            if conversion is not None:
                test, convert = conversion
                if convert:
                    body.append(f"if {test.format(v=v)}:")
                    body.extend("  " + line for line in convert.format(v=v).split("\n"))
                    body.append(f"else: {hook_call}")
                else:
                    body.append(f"if not ({test.format(v=v)}): {hook_call}")
            elif enum_type is not None:
                names[f"k{i}"] = {member.value: member for member in enum_type}
                body.append(f"if {v}.__class__ is str: {v} = k{i}.get({v}, {v})")
                body.append(f"else: {hook_call}")
            elif _is_homogeneous_tuple(field_type):
                item_type = field_type.__args__[0]
                names[f"i{i}"] = conv.get_structure_hook(item_type)
                names[f"it{i}"] = item_type
                body.append(f"if {v}.__class__ is list: {v} = tuple([i{i}(x, it{i}) for x in {v}])")
                body.append(f"else: {hook_call}")
            else:
                body.append(hook_call)
        if default is not None and (check is None or not check[1] or a.default is not None):
            # the default (None excepted where the check lets None through: "", False, UNSET)
            # is what an absent field reads as: nothing to check then
            body = [f"if {v} is not {default}:", *("  " + b for b in body)]
        lines.extend("  " + b for b in body)
        if builder is not None:
            lines.append(f"  self.{a.name} = {v}")
        elif direct:
            names[f"s{i}"] = cl.__dict__[a.name].__set__
            lines.append(f"  s{i}(self, {v})")
        args.append(f"{a.alias}={v}")
    if builder is not None:
        lines.append("  self.__class__ = cl")
    lines.append("  return self" if direct else f"  return cl({', '.join(args)})")
    exec("\n".join(lines), names)  # noqa: S102 - source built above from the model's fields
    hook: Callable[[Any, Any], Any] = names["structure"]
    return hook


def _two_way_structure_fn(conv: cattrs.Converter, cl: type[Any]) -> Callable[[Any, Any], Any]:
    """cattrs' own structure function of a two-way model (the detailed converter's), its
    fields that may be UNSET read, when present, as their type without ``Unset``."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn

    overrides: dict[str, Any] = {
        a.name: cattrs.override(struct_hook=conv.get_structure_hook(_read_as(a.type)))
        for a in attrs.fields(attrs.resolve_types(cl))
        if a.type != _read_as(a.type)
    }
    return make_dict_structure_fn(cl, conv, **overrides)


def _detailed_model_hook(conv: cattrs.Converter, cl: type[Any]) -> Callable[[Any, Any], Any]:
    """cattrs' own structure function of a response or two-way model, given a JSON object
    only: cattrs' alone reads any container as a model whose fields all have defaults (a
    string as a ``ChatContact`` with every field None), where the fast path refuses it."""
    from cattrs.gen import make_dict_structure_fn

    if is_two_way_model(cl):
        structure_fields = _two_way_structure_fn(conv, cl)
    else:
        structure_fields = make_dict_structure_fn(attrs.resolve_types(cl), conv)

    def structure_object(value: Any, t: Any) -> Any:
        if value.__class__ is not dict:
            raise TypeError(f"expected a JSON object, got {type(value).__name__}")
        return structure_fields(value, t)

    return structure_object


def _configure(conv: cattrs.Converter, *, fast: bool) -> cattrs.Converter:
    import cattrs
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

    from . import _models as m

    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(datetime, lambda v, _: parse_datetime(v))
    # Optional scalars and tuples of models are on the hot path: direct hooks instead of
    # cattrs' generic Optional/tuple dispatch make structuring a contact about 2x faster.
    conv.register_structure_hook_func(lambda t: t == str | None, _optional_str)
    conv.register_structure_hook_func(lambda t: t == bool | None, _optional_bool)
    conv.register_structure_hook_func(lambda t: t == int | None, _optional_int)
    conv.register_structure_hook_func(
        lambda t: t == float | None, lambda v, t: None if v is None else _strict_float(v, t)
    )
    conv.register_structure_hook_func(lambda t: t == datetime | None, _optional_datetime)
    conv.register_structure_hook_factory(
        _is_homogeneous_tuple, lambda t: _tuple_hook(conv, t, detailed=not fast)
    )
    conv.register_unstructure_hook(datetime, format_datetime)
    conv.register_structure_hook_func(lambda t: t == Mapping[str, Any], _json_object)
    conv.register_structure_hook_func(
        lambda t: t == Mapping[str, Any] | None,
        lambda v, t: None if v is None else _json_object(v, t),
    )
    conv.register_structure_hook_factory(
        lambda t: open_enum(t) is not None,
        lambda t: _open_enum(open_enum(t), type(None) in _union_args(t)),  # type: ignore[arg-type]
    )
    conv.register_unstructure_hook_func(lambda t: open_enum(t) is not None, _enum_value)

    if fast:
        conv.register_structure_hook_factory(_is_read, lambda t: _fast_model_hook(conv, t))
    else:
        conv.register_structure_hook_factory(_is_read, lambda t: _detailed_model_hook(conv, t))

    # ContactField.type may only be present inside ``schema``.
    field_hook = (
        _fast_model_hook(conv, m.ContactField)
        if fast
        else make_dict_structure_fn(m.ContactField, conv)
    )

    def structure_contact_field(value: Any, cl: type) -> m.ContactField:
        if isinstance(value, dict) and "type" not in value:
            schema = value.get("schema")
            if isinstance(schema, dict) and "type" in schema:
                value = {**value, "type": schema["type"]}
        return field_hook(value, cl)

    conv.register_structure_hook(m.ContactField, structure_contact_field)

    _configure_message_parts(conv)

    # Request bodies and two-way models: every field left at its UNSET default is omitted;
    # UNSET goes nowhere.
    conv.register_unstructure_hook_factory(
        _is_written, lambda t: make_dict_unstructure_fn(t, conv, _cattrs_omit_if_default=True)
    )
    conv.register_unstructure_hook(type(UNSET), _unset_on_the_wire)
    conv.register_structure_hook_func(is_request_model, _never_read)
    conv.register_structure_hook_func(_mentions_unset, _never_read)
    # Segments embedded in contacts carry no ``boards`` key: omit it when it is None.
    conv.register_unstructure_hook(
        m.Segment,
        make_dict_unstructure_fn(m.Segment, conv, boards=cattrs.override(omit_if_default=True)),
    )
    return conv


@functools.cache
def _converters() -> tuple[cattrs.Converter, cattrs.Converter]:
    """The fast and the detailed converter, built (and cattrs imported) on first use."""
    import cattrs

    return (
        _configure(cattrs.Converter(detailed_validation=False), fast=True),
        _configure(cattrs.Converter(detailed_validation=True), fast=False),
    )


def _configure_message_parts(conv: cattrs.Converter) -> None:
    """The tagged union of message parts, with its open fallback (``OtherPart``)."""
    from cattrs.gen import make_dict_unstructure_fn

    from . import _models as m

    message_part: Any = m.TextPart | m.OtherPart
    text_hook = conv.get_structure_hook(m.TextPart)
    text_fields = make_dict_unstructure_fn(m.TextPart, conv, _cattrs_omit_if_default=True)

    def structure_other_part(value: Any, _: type) -> m.OtherPart:
        return m.OtherPart(data=_json_object(value, dict))

    def structure_part(value: Any, _: Any) -> m.TextPart | m.OtherPart:
        if value.__class__ is dict and value.get("type") == "text":
            return text_hook(value, m.TextPart)  # type: ignore[no-any-return]
        return structure_other_part(value, dict)

    conv.register_structure_hook(m.OtherPart, structure_other_part)
    conv.register_structure_hook_func(lambda t: t == message_part, structure_part)
    conv.register_unstructure_hook(m.TextPart, lambda v: {"type": "text", **text_fields(v)})
    conv.register_unstructure_hook(m.OtherPart, lambda v: dict(v.data))
    conv.register_unstructure_hook_func(lambda t: t == message_part, lambda v: conv.unstructure(v))


_FAST_HOOKS: Final[dict[Any, Callable[[Any, Any], Any]]] = {}
"""The fast converter's hook of each type structured so far (skips cattrs' dispatch)."""


def structure(data: JSON, cl: type[T]) -> T:
    """Build a model (or ``tuple[Model, ...]``) from decoded JSON.

    Raises:
        InvalidData: the data does not match ``cl``; ``errors`` names each bad field path.
    """
    hook = _FAST_HOOKS.get(cl)
    if hook is None:
        hook = _converters()[0].get_structure_hook(cl)
        if len(_FAST_HOOKS) < 256:
            _FAST_HOOKS[cl] = hook
    try:
        return hook(data, cl)  # type: ignore[no-any-return]
    except Exception:
        errors = _explain(data, cl)
    raise InvalidData(errors)


def structure_detailed(data: JSON, cl: type[T]) -> T:
    """Build ``cl`` with the detailed converter only (cattrs' own structure functions, with
    field paths in its errors): what :func:`structure` falls back to on bad input, and what
    the tests compare its fast path with. Raises what cattrs raises."""
    return _converters()[1].structure(data, cl)


def _explain(data: JSON, cl: type[Any]) -> list[str]:
    """Structure again with detailed validation, to name the bad field paths."""
    import cattrs

    try:
        _converters()[1].structure(data, cl)
    except Exception as exc:
        return cattrs.transform_error(exc, format_exception=_format_exception)
    return [f"does not match {getattr(cl, '__name__', cl)}"]  # pragma: no cover


def _format_exception(exc: BaseException, t: Any) -> str:
    """cattrs' message, naming the type a field is read as (``str``, not ``str | Unset``)."""
    from cattrs.v import format_exception

    return format_exception(exc, None if t is None else _read_as(t))


def unstructure(obj: Any) -> JSON:
    """Turn a model (request or response) into JSON-ready data.

    Raises:
        TypeError: ``UNSET`` is somewhere but in an optional field of a request model.
    """
    data = _converters()[0].unstructure(obj)
    _reject_unset(data)
    return data
