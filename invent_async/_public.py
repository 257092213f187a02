"""Public names report the module a user imports them from, not the private one that defines them.

``invent_async.APITimeoutError`` is defined in ``invent_async._exceptions``; without this, a
traceback, a ``repr`` of a class, ``pickle`` and the API reference would all say
``invent_async._exceptions.APITimeoutError``. :func:`publish` sets the ``__module__`` of each
exported class and function to the public module (as httpx does), and remembers the defining
module: :func:`defined_in` gives it back to the few that need the source (the code generator,
the converter's "is this one of the models" rule). A package that loads after the public module
(on first use) also binds its exported names there as it publishes them: the public module's
namespace, where ``typing.get_type_hints`` evaluates the annotations of a published class
(``AsyncInventClient.contacts: 'AsyncContacts'``), then holds them however the package was
loaded. Nothing else lives here.

Type checkers read the source, not ``__module__``: ``reveal_type`` in mypy still names the
defining module.
"""

from __future__ import annotations

import inspect
import sys
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
    Each name of ``names`` that ``namespace`` holds and module ``module`` (when loaded) does
    not is bound there too: a package loaded on first use (``resources``, ``_models``, ...)
    by another path than the public module's ``__getattr__`` (a client created, a job
    started) completes the public namespace.
    An attrs class's fields are resolved first (``attrs.resolve_types``), in the module that
    wrote their string annotations, and its annotations become those values: attrs, cattrs,
    Sphinx and ``typing.get_type_hints`` would evaluate them in ``__module__``, which does not
    hold every name the fields use (``datetime``, ``Unset``, a ``Literal`` alias). That is
    the resolution the converter does on a model's first use anyway, done when the class is
    published (about 4 ms for every exported attrs class, by ``python -X importtime``). Other
    classes keep theirs (``InventClient.contacts: 'Contacts'``): they name exported types
    only, which the public module resolves (``tests/test_public_names.py``) once they are
    loaded. A function needs nothing: its annotations are evaluated in its ``__globals__``.
    """
    public = vars(sys.modules[module]) if module in sys.modules else {}
    for name in names:
        obj = namespace.get(name)
        if name in namespace and namespace is not public:
            public.setdefault(name, obj)
        if not isinstance(obj, type | types.FunctionType) or obj.__module__ == module:
            continue
        if isinstance(obj, type) and attrs.has(obj):
            _resolve_annotations(obj)
        _DEFINED_IN.setdefault(obj, obj.__module__)
        obj.__module__ = module


def _resolve_annotations(cls: type) -> None:
    """Resolve the fields of attrs class ``cls`` and give its own annotations their values."""
    attrs.resolve_types(cls)
    resolved = {field.name: field.type for field in attrs.fields(cls)}
    own = inspect.get_annotations(cls)
    cls.__annotations__ = {name: resolved.get(name, value) for name, value in own.items()}


def defined_in(obj: object) -> str:
    """The module that defines ``obj`` (its ``__module__`` before :func:`publish` moved it)."""
    found = _DEFINED_IN.get(obj)
    return found if found is not None else str(getattr(obj, "__module__", ""))
