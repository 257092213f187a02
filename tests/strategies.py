"""Hypothesis strategies that build valid invent_async response models.

Every strategy produces instances a real response could turn into: aware datetimes at
microsecond resolution (UTC or a fixed offset), open-enum fields that are either a known member
or a string the SDK does not know yet, free-form mappings made of JSON values, and integers
that both JSON backends can encode.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, TypeVar

from hypothesis import strategies as st

from invent_async import (
    Board,
    Channel,
    ChannelType,
    Contact,
    ContactField,
    ContactFieldType,
    ContactNote,
    MergeResult,
    NoteAttachment,
    NoteAuthor,
    Segment,
    SegmentColor,
)

__all__ = [
    "aware_datetimes",
    "boards",
    "channels",
    "contact_fields",
    "contact_notes",
    "contacts",
    "merge_results",
    "segments",
]

E = TypeVar("E", bound=enum.StrEnum)

_INT64_MAX = 2**63 - 1

ids = st.text(min_size=1, max_size=24)
texts = st.text(max_size=40)
optional_texts = st.none() | texts
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

optional_datetimes = st.none() | aware_datetimes

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


# ------------------------------------------------------------------------- models

boards: st.SearchStrategy[Board] = st.builds(
    Board, board_id=optional_texts, board_name=optional_texts, column_id=optional_texts
)


def segments(*, with_boards: bool | None = None) -> st.SearchStrategy[Segment]:
    """Segments; ``with_boards`` True/False forces a ``boards`` tuple/None, None mixes both."""
    board_tuples = st.lists(boards, max_size=3).map(tuple)
    boards_strategy: st.SearchStrategy[tuple[Board, ...] | None]
    if with_boards is None:
        boards_strategy = st.none() | board_tuples
    elif with_boards:
        boards_strategy = board_tuples
    else:
        boards_strategy = st.none()
    return st.builds(
        Segment,
        id=ids,
        name=texts,
        color=st.none() | open_enum(SegmentColor),
        contacts_count=counts,
        created_at=aware_datetimes,
        updated_at=aware_datetimes,
        boards=boards_strategy,
    )


channels: st.SearchStrategy[Channel] = st.builds(
    Channel,
    id=ids,
    type=open_enum(ChannelType),
    user_id=texts,
    avatar=optional_texts,
    name=optional_texts,
    username=optional_texts,
    email=optional_texts,
    phone=optional_texts,
    country=optional_texts,
    agent=optional_texts,
    ip=optional_texts,
    language=optional_texts,
    platform_data=st.none() | json_objects,
    created_at=optional_datetimes,
    updated_at=optional_datetimes,
    link=optional_texts,
)

contacts: st.SearchStrategy[Contact] = st.builds(
    Contact,
    id=ids,
    name=optional_texts,
    blocked=st.booleans(),
    is_admin=st.booleans(),
    channels=st.lists(channels, max_size=3).map(tuple),
    # Segments embedded in a contact carry no ``boards``.
    segments=st.lists(segments(with_boards=False), max_size=3).map(tuple),
    created_at=aware_datetimes,
    updated_at=aware_datetimes,
    unsubscribed=st.none() | st.booleans(),
    blocked_at=optional_datetimes,
    unsubscribed_at=optional_datetimes,
    unsubscribe_reason=optional_texts,
    unsubscribe_feedback=optional_texts,
)

contact_fields: st.SearchStrategy[ContactField] = st.builds(
    ContactField,
    id=ids,
    table_id=ids,
    key=texts,
    type=st.none() | open_enum(ContactFieldType),
    schema=json_objects,
    readonly=st.booleans(),
    kind=texts,
)

note_attachments: st.SearchStrategy[NoteAttachment] = st.builds(
    NoteAttachment,
    id=optional_texts,
    file_path=optional_texts,
    file_filename=optional_texts,
    file_size=st.none() | counts,
    file_mimetype=optional_texts,
    file_url=optional_texts,
    created_at=optional_datetimes,
)

note_authors: st.SearchStrategy[NoteAuthor] = st.builds(
    NoteAuthor, id=ids, name=optional_texts, avatar=optional_texts
)

contact_notes: st.SearchStrategy[ContactNote] = st.builds(
    ContactNote,
    id=ids,
    contact_id=ids,
    content=optional_texts,
    attachments=st.lists(note_attachments, max_size=3).map(tuple),
    created_at=optional_datetimes,
    updated_at=optional_datetimes,
    user=st.none() | note_authors,
)

merge_results: st.SearchStrategy[MergeResult] = st.builds(
    MergeResult,
    merged=contacts,
    merged_contact_ids=st.lists(ids, max_size=5).map(tuple),
)
