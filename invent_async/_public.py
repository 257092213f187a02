"""Public names report the module a user imports them from, not the private one that defines them.

``invent_async.APITimeoutError`` is defined in ``invent_async._exceptions``; without this, a
traceback, a ``repr`` of a class, ``pickle`` and the API reference would all say
``invent_async._exceptions.APITimeoutError``. :func:`publish` sets the ``__module__`` of each
exported class and function to the public module (as httpx does), and remembers the defining
module: :func:`defined_in` gives it back to the few that need the source (the code generator,
the converter's "is this one of the models" rule). Nothing else lives here.

Type checkers read the source, not ``__module__``: ``reveal_type`` in mypy still names the
defining module.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

__all__ = ["defined_in", "publish"]

_DEFINED_IN: Final[dict[object, str]] = {}
"""Object -> the module that defines it, for every object :func:`publish` moved."""


def publish(module: str, namespace: Mapping[str, object], names: Iterable[str]) -> None:
    """Make the classes and functions of ``namespace`` named in ``names`` report ``module``.

    Other values (sentinels, type aliases, names not loaded yet) are left alone. Idempotent.
    An attrs class's string annotations are evaluated first, in the module that wrote them:
    attrs, cattrs and Sphinx evaluate them later in ``__module__``, which does not hold every
    name its fields use (``datetime``, ``Unset``, a ``Literal`` alias). Other classes keep
    theirs (``InventClient.contacts: 'Contacts'``): they name exported types only, which the
    public module resolves (``tests/test_public_names.py``). A function needs nothing: its
    annotations are evaluated in its ``__globals__``.
    """
    for name in names:
        obj = namespace.get(name)
        if not isinstance(obj, type | types.FunctionType) or obj.__module__ == module:
            continue
        if isinstance(obj, type) and attrs.has(obj):
            _evaluate_annotations(obj)
        _DEFINED_IN.setdefault(obj, obj.__module__)
        obj.__module__ = module


def _evaluate_annotations(cls: type) -> None:
    """Replace ``cls``'s own string annotations by their values (left as they are when one
    names something only a type checker imports)."""
    try:
        evaluated = inspect.get_annotations(cls, eval_str=True)
    except NameError:
        evaluated = None
    if attrs.has(cls):
        attrs.resolve_types(cls)
    if evaluated:
        cls.__annotations__ = evaluated


def defined_in(obj: object) -> str:
    """The module that defines ``obj`` (its ``__module__`` before :func:`publish` moved it)."""
    found = _DEFINED_IN.get(obj)
    return found if found is not None else str(getattr(obj, "__module__", ""))
