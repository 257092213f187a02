"""Type aliases and sentinels shared by every layer.

``UNSET`` marks "the caller did not pass this argument" (distinct from ``None``, which is a
value the API understands, e.g. clearing a contact's name, or no limit in ``with_options``).
Nothing else lives here.
"""

from __future__ import annotations

import enum
from typing import Any, Final, Literal, TypeAlias


class _UnsetType(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _UnsetType.UNSET
"""Sentinel: the argument was not given, so the field is left out of the request body."""

Unset: TypeAlias = Literal[_UnsetType.UNSET]
"""The type of :data:`UNSET`, for annotations such as ``name: str | None | Unset = UNSET``."""

JSON: TypeAlias = Any
"""A decoded JSON value (dict, list, str, int, float, bool or None)."""

QueryValue: TypeAlias = str | int | bool
"""A value that can be sent as a query parameter."""
