"""Strict checks of what a request sends: query parameters, JSON bodies, and list pages.

The fake validates on its own, from ``invent-openapi.yaml``, never with the SDK's request
builders. Every problem of a body or a query is collected, each with its ``$.path``, and
raised as one :class:`~._store.ApiError` 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, TypeVar

from ._store import ApiError

__all__ = [
    "BROADCAST_FILTERS",
    "BROADCAST_STATUSES",
    "COLORS",
    "CONTACT_FILTERS",
    "MAX_TAKE",
    "NEW_CHANNEL_KEYS",
    "PAGINATION",
    "SEGMENT_FILTERS",
    "STATUSES",
    "BodyChecker",
    "QueryKind",
    "Reply",
    "json_kind",
    "paginate",
    "parse_query",
]

T = TypeVar("T")
Reply: TypeAlias = tuple[Any, Mapping[str, str]]
"""What a route handler returns: the JSON payload and extra response headers."""
QueryKind: TypeAlias = Literal["str", "bool", "page", "take", "status", "broadcast_status", "token"]

_DIGITS: Final = re.compile(r"[0-9]+")
MAX_TAKE: Final = 100
STATUSES: Final = frozenset({"ALL", "SUBSCRIBED", "UNSUBSCRIBED", "BLOCKED", "AI_REPLIES_DISABLED"})
BROADCAST_STATUSES: Final = frozenset(
    {"DRAFT", "SCHEDULED", "SENDING", "SENT", "CANCELLED", "FAILED"}
)
"""The ``BroadcastStatus`` values of the spec (the list filter also takes ``ALL``)."""
# The 17 SegmentColor values of the spec, spelled out here rather than taken from _models.
COLORS: Final = frozenset(
    {
        *("red", "orange", "amber", "yellow", "lime", "green", "teal", "cyan", "sky"),
        *("blue", "indigo", "violet", "purple", "fuchsia", "pink", "rose", "neutral"),
    }
)
PAGINATION: Final[Mapping[str, QueryKind]] = {"page": "page", "take": "take", "next": "token"}
CONTACT_FILTERS: Final[Mapping[str, QueryKind]] = {
    "search": "str",
    "unsubscribed": "bool",
    "user_id": "str",
    "name": "str",
    "username": "str",
    "email": "str",
    "segment_id": "str",
    "exclude_admins": "bool",
    "exclude_board_id": "str",
    "status": "status",
    "is_admin": "bool",
    **PAGINATION,
}
SEGMENT_FILTERS: Final[Mapping[str, QueryKind]] = {
    "search": "str",
    "exclude_board_columns": "bool",
    **PAGINATION,
}
BROADCAST_FILTERS: Final[Mapping[str, QueryKind]] = {
    "status": "broadcast_status",
    **PAGINATION,
}
NEW_CHANNEL_KEYS: Final = ("user_id", "name", "email", "phone", "contact_id")


class BodyChecker:
    """Collects every problem of a JSON object body, each with its ``$.path``."""

    def __init__(self, body: Any, allowed: Iterable[str], where: str = "$") -> None:
        self.errors: list[str] = []
        self.values: dict[str, Any] = {}
        self._body: dict[str, Any] = body if isinstance(body, dict) else {}
        self._where = where
        if not isinstance(body, dict):
            self.errors.append(f"{where}: expected a JSON object, got {json_kind(body)}")
            return
        allowed = set(allowed)
        for key in body:
            if key not in allowed:
                self.errors.append(f"{where}.{key}: unknown field")

    def string(
        self,
        key: str,
        *,
        nullable: bool = False,
        required: bool = False,
        min_length: int = 0,
        max_length: int | None = None,
        choices: frozenset[str] | None = None,
    ) -> None:
        where = f"{self._where}.{key}"
        if key not in self._body:
            if required:
                self.errors.append(f"{where}: required")
            return
        value = self._body[key]
        if value is None and nullable:
            self.values[key] = None
            return
        if not isinstance(value, str):
            expected = "a string or null" if nullable else "a string"
            self.errors.append(f"{where}: expected {expected}, got {json_kind(value)}")
        elif len(value) < min_length:
            self.errors.append(f"{where}: must be at least {min_length} characters long")
        elif max_length is not None and len(value) > max_length:
            self.errors.append(f"{where}: must be at most {max_length} characters long")
        elif choices is not None and value not in choices:
            self.errors.append(f"{where}: must be one of {', '.join(sorted(choices))}")
        else:
            self.values[key] = value

    def boolean(self, key: str) -> None:
        where = f"{self._where}.{key}"
        if key not in self._body:
            return
        value = self._body[key]
        if isinstance(value, bool):
            self.values[key] = value
        else:
            self.errors.append(f"{where}: expected a boolean, got {json_kind(value)}")

    def string_list(self, key: str, *, min_items: int = 0, max_items: int | None = None) -> None:
        where = f"{self._where}.{key}"
        if key not in self._body:
            return
        value = self._body[key]
        if not isinstance(value, list):
            self.errors.append(f"{where}: expected an array of strings, got {json_kind(value)}")
            return
        bad = [i for i, item in enumerate(value) if not isinstance(item, str)]
        for i in bad:
            self.errors.append(f"{where}[{i}]: expected a string, got {json_kind(value[i])}")
        if len(value) < min_items:
            self.errors.append(f"{where}: must have at least {min_items} items")
        elif max_items is not None and len(value) > max_items:
            self.errors.append(f"{where}: must have at most {max_items} items")
        if not bad:
            self.values[key] = value

    def number(self, key: str) -> None:
        where = f"{self._where}.{key}"
        if key not in self._body:
            return
        value = self._body[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.values[key] = value
        else:
            self.errors.append(f"{where}: expected a number, got {json_kind(value)}")

    def obj(self, key: str, *, nullable: bool = False) -> None:
        """A free-form JSON object (``additionalProperties: true``)."""
        where = f"{self._where}.{key}"
        if key not in self._body:
            return
        value = self._body[key]
        if isinstance(value, dict) or (value is None and nullable):
            self.values[key] = value
        else:
            expected = "an object or null" if nullable else "an object"
            self.errors.append(f"{where}: expected {expected}, got {json_kind(value)}")

    def check(self) -> dict[str, Any]:
        """The validated values, or ApiError 400 listing every problem."""
        if self.errors:
            raise ApiError(400, "Invalid request body", self.errors)
        return self.values


def json_kind(value: object) -> str:
    """How an error message names the JSON type of ``value`` (``"a string"``, ``"null"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # pragma: no cover - JSON has no other types


def parse_query(pairs: Iterable[tuple[str, str]], spec: Mapping[str, QueryKind]) -> dict[str, Any]:
    """The query parameters checked against ``spec``; ApiError 400 naming each problem."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    for name, raw in pairs:
        kind = spec.get(name)
        if kind is None:
            errors.append(f"{name}: unknown query parameter")
            continue
        if name in values:
            errors.append(f"{name}: given more than once")
            continue
        if kind == "str" or kind == "token":
            values[name] = raw
        elif kind == "bool":
            if raw not in ("true", "false"):
                errors.append(f"{name}: expected true or false, got {raw!r}")
            values[name] = raw == "true"
        elif kind == "status" or kind == "broadcast_status":
            choices = STATUSES if kind == "status" else BROADCAST_STATUSES | {"ALL"}
            if raw not in choices:
                errors.append(f"{name}: must be one of {', '.join(sorted(choices))}")
            values[name] = raw
        else:  # page, take
            number = int(raw) if _DIGITS.fullmatch(raw) else None
            if number is None:
                errors.append(f"{name}: expected an integer, got {raw!r}")
            elif kind == "page" and number < 1:
                errors.append(f"{name}: must be >= 1")
            elif kind == "take" and not 1 <= number <= MAX_TAKE:
                errors.append(f"{name}: must be between 1 and {MAX_TAKE}")
            values[name] = number
    if errors:
        raise ApiError(400, "Invalid query parameters", errors)
    return values


def paginate(items: Sequence[T], query: Mapping[str, Any], to_json: Callable[[T], Any]) -> Reply:
    """One page of ``items`` (``page``/``take`` from the query) and the pagination headers."""
    page: int = query.get("page", 1)
    take: int = query.get("take", MAX_TAKE)
    start = (page - 1) * take
    body = [to_json(item) for item in items[start : start + take]]
    headers = {
        "pagination-count": str(len(items)),
        "pagination-page": str(page),
        "pagination-take": str(take),
    }
    return body, headers
