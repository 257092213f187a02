"""invent_async: an async-first SDK for the Invent API (contacts, segments and broadcasts).

Public names are re-exported here; everything in underscore modules is private. The models
and enums are those ``_models.__all__`` lists (:data:`_MODELS` repeats the list, which
``tests/test_imports.py`` checks). Four groups of names load on first use (PEP 562
``__getattr__``, from :data:`_LAZY`), so that a program pays at import for what it uses: the
models and enums (``Contact``, ``Segment``, ``SegmentColor``, ...: ``_models``, whose attrs
classes were most of the import's cost), the async resource groups (``AsyncContacts``,
``AsyncSegments``, ``AsyncBroadcasts``: ``resources``, with the models they use); both also
load when the first client is created. The synchronous client's (``InventClient``, its
resources ``Contacts``, ``Segments`` and ``Broadcasts``, ``SyncBulkStream``, ``Pager``,
``PortalThreadError``: the sync stack and anyio), and those of the bulk and segment-sync jobs
(``BulkStream``, ``BulkReport``, ``SegmentSyncReport``, ...: the ``_jobs`` package, which a
job also loads when it starts). The kinds of rate budget load when a client first needs one
(``_governor_registry``), and OpenTelemetry when the application uses it (``_otel``).
``tests/test_imports.py`` lists what ``import invent_async`` leaves out.

Every exported class and function reports ``invent_async`` as its module (``_public``):
tracebacks, reprs, pickles and the API reference show ``invent_async.APITimeoutError``, never
the private module defining it. A package loaded on first use publishes its names itself when
it loads, so that holds before the user names one too.
"""

import importlib
from typing import TYPE_CHECKING, Any, Final

from ._client import AsyncInventClient
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetServerConfigError,
    BudgetSettingsError,
    ClientClosedError,
    ClientStateError,
    ConflictError,
    InternalServerError,
    InventError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RedisUnavailableError,
    ResponseTooLargeError,
    ResponseValidationError,
    UnprocessableEntityError,
    WrongEventLoopError,
    retry_after_header,
)
from ._limits import FleetStats, GovernorStats, Lane, RateLimit
from ._pagination import AsyncPager, Page
from ._protocol import Headers, RawResponse, TransportRequest
from ._public import publish
from ._raw import RawResult
from ._serialize import from_dict, from_json, to_dict, to_json
from ._transport import AsyncTransport
from ._types import UNSET, Unset
from ._version import __version__ as __version__

_MODELS: Final = (
    "Board",
    "Broadcast",
    "BroadcastRecipient",
    "BroadcastSegment",
    "BroadcastStatus",
    "BroadcastTemplate",
    "Channel",
    "ChannelType",
    "Chat",
    "ChatContact",
    "ChatContactChannel",
    "ChatMember",
    "ChatMessage",
    "ChatMessageRole",
    "ChatMessageStatus",
    "ChatState",
    "Contact",
    "ContactChannelOption",
    "ContactField",
    "ContactFieldType",
    "ContactImportResult",
    "ContactMemory",
    "ContactMemoryType",
    "ContactNote",
    "ContactStatus",
    "ConversationState",
    "MergeResult",
    "MessageContent",
    "NoteAttachment",
    "NoteAuthor",
    "OtherPart",
    "Segment",
    "SegmentColor",
    "TextPart",
    "TransactionalSendResult",
)
"""The public models and enums: ``_models.__all__``, in its order, named here so that the module
loads on first use (``tests/test_imports.py`` fails when the two lists differ)."""

__all__ = [
    # clients
    "AsyncInventClient",
    "AsyncContacts",
    "AsyncSegments",
    "AsyncBroadcasts",
    "AsyncPager",
    "Page",
    "InventClient",
    "Contacts",
    "Segments",
    "Broadcasts",
    "Pager",
    "RateLimit",
    "GovernorStats",
    "FleetStats",
    "Lane",
    "UNSET",
    "Unset",
    # transports (advanced)
    "AsyncTransport",
    "TransportRequest",
    "Headers",
    "RawResponse",
    # raw responses
    "RawResult",
    # serialisation
    "to_dict",
    "to_json",
    "from_dict",
    "from_json",
    # bulk
    "BulkOptions",
    "BulkStream",
    "SyncBulkStream",
    "BulkReport",
    "BulkProgress",
    "BulkFailure",
    "ItemResult",
    "Outcome",
    "partial_report",
    # segment sync
    "SegmentSyncPlan",
    "SegmentSyncReport",
    "SegmentSyncProgress",
    "MembershipChange",
    "MemberTable",
    "partial_sync_report",
    # bulk import
    "ImportReport",
    "ImportPlan",
    "ImportProgress",
    "ImportRowResult",
    "ImportStatus",
    "partial_import_report",
    # errors
    "InventError",
    "ClientStateError",
    "ClientClosedError",
    "WrongEventLoopError",
    "PortalThreadError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "BulkAbortedError",
    "SegmentSyncAbortedError",
    "ImportAbortedError",
    "JournalError",
    "RedisUnavailableError",
    "BudgetServerConfigError",
    "BudgetSettingsError",
    "retry_after_header",
]
__all__ += _MODELS  # models

publish(__name__, globals(), __all__)

_LAZY: Final = {
    **dict.fromkeys(_MODELS, "._models"),
    **dict.fromkeys(("AsyncContacts", "AsyncSegments", "AsyncBroadcasts"), ".resources"),
    **dict.fromkeys(
        (
            "InventClient",
            "Contacts",
            "Segments",
            "Broadcasts",
            "SyncBulkStream",
            "Pager",
            "PortalThreadError",
        ),
        "._sync",
    ),
    **dict.fromkeys(
        (
            "BulkOptions",
            "BulkStream",
            "BulkReport",
            "BulkProgress",
            "BulkFailure",
            "ItemResult",
            "Outcome",
            "partial_report",
            "SegmentSyncPlan",
            "SegmentSyncReport",
            "SegmentSyncProgress",
            "MembershipChange",
            "MemberTable",
            "partial_sync_report",
            "BulkAbortedError",
            "SegmentSyncAbortedError",
            "JournalError",
            "ImportReport",
            "ImportPlan",
            "ImportProgress",
            "ImportRowResult",
            "ImportStatus",
            "partial_import_report",
            "ImportAbortedError",
        ),
        "._jobs",
    ),
}
"""Exported names loaded on first use -> the package that exports them (and publishes them
when it loads)."""

if TYPE_CHECKING:
    from ._jobs import (
        BulkAbortedError,
        BulkFailure,
        BulkOptions,
        BulkProgress,
        BulkReport,
        BulkStream,
        ImportAbortedError,
        ImportPlan,
        ImportProgress,
        ImportReport,
        ImportRowResult,
        ImportStatus,
        ItemResult,
        JournalError,
        MembershipChange,
        MemberTable,
        Outcome,
        SegmentSyncAbortedError,
        SegmentSyncPlan,
        SegmentSyncProgress,
        SegmentSyncReport,
        partial_import_report,
        partial_report,
        partial_sync_report,
    )
    from ._models import *  # noqa: F403 - the public models and enums: _models.__all__
    from ._sync import (
        Broadcasts,
        Contacts,
        InventClient,
        Pager,
        PortalThreadError,
        Segments,
        SyncBulkStream,
    )
    from .resources import AsyncBroadcasts, AsyncContacts, AsyncSegments


def __getattr__(name: str) -> Any:
    """The names of :data:`_LAZY`, imported on first use (see the module docstring)."""
    source = _LAZY.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(source, __name__)
    # all of a package's names at once: InventClient's annotations name Contacts and Segments,
    # resolved here
    globals().update({n: getattr(module, n) for n, s in _LAZY.items() if s == source})
    return globals()[name]


def __dir__() -> list[str]:
    """The module's names, those not loaded yet included."""
    return sorted({*globals(), *_LAZY})
