"""invent_async: an async-first SDK for the Invent API (contacts, segments and broadcasts).

Public names are re-exported here; everything in underscore modules is private. The models
and enums are those ``_models.__all__`` lists (so a new one is exported where it is written).
The synchronous client's names (``InventClient``, its resources ``Contacts``,
``Segments`` and ``Broadcasts``, ``SyncBulkStream``, ``Pager``, ``PortalThreadError``) load
on first use: an async-only program never imports the sync stack nor anyio. Every exported
class and function reports ``invent_async`` as its module (``_public``): tracebacks, reprs,
pickles and the API reference show ``invent_async.APITimeoutError``, never the private
module defining it.
"""

from typing import TYPE_CHECKING, Any

from . import _models
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
    ResponseTooLargeError,
    ResponseValidationError,
    UnprocessableEntityError,
    WrongEventLoopError,
    retry_after_header,
)
from ._jobs.engine import BulkOptions, BulkStream
from ._jobs.journal import JournalError
from ._jobs.results import (
    BulkAbortedError,
    BulkFailure,
    BulkProgress,
    BulkReport,
    ItemResult,
    MembershipChange,
    Outcome,
    SegmentSyncAbortedError,
    SegmentSyncPlan,
    SegmentSyncProgress,
    SegmentSyncReport,
    partial_report,
    partial_sync_report,
)
from ._jobs.segment_sync_plan import MemberTable
from ._limits import FleetStats, GovernorStats, Lane, RateLimit
from ._models import *  # noqa: F403 - the public models and enums: _models.__all__
from ._pagination import AsyncPager, Page
from ._protocol import Headers, RawResponse, TransportRequest
from ._public import publish
from ._raw import RawResult
from ._redis_budget import RedisUnavailableError
from ._serialize import from_dict, from_json, to_dict, to_json
from ._transport import AsyncTransport
from ._types import UNSET, Unset
from ._version import __version__ as __version__
from .resources import AsyncBroadcasts, AsyncContacts, AsyncSegments

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
    "JournalError",
    "RedisUnavailableError",
    "BudgetServerConfigError",
    "BudgetSettingsError",
    "retry_after_header",
]
__all__ += _models.__all__  # models

publish(__name__, globals(), __all__)

_SYNC_NAMES = frozenset(
    {
        "InventClient",
        "Contacts",
        "Segments",
        "Broadcasts",
        "SyncBulkStream",
        "Pager",
        "PortalThreadError",
    }
)

if TYPE_CHECKING:
    from ._sync import (
        Broadcasts,
        Contacts,
        InventClient,
        Pager,
        PortalThreadError,
        Segments,
        SyncBulkStream,
    )


def __getattr__(name: str) -> Any:
    """The sync client's names, imported on first use (see the module docstring)."""
    if name in _SYNC_NAMES:
        from . import _sync

        # all at once: InventClient's annotations name its resources, resolved here
        globals().update({sync_name: getattr(_sync, sync_name) for sync_name in _SYNC_NAMES})
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
