"""The synchronous client: :class:`InventClient`, generated from the async one.

- ``_client``: :class:`InventClient` (hand-written: configuration, views, lifecycle).
- ``_generated``: the resource classes (``client.contacts``, ...), written by
  ``python -m invent_async._codegen``; never edit it by hand.
- ``_runtime``: the event-loop thread each client owns, and the call/iterator bridges.
- ``_pager``: :class:`Pager`, the blocking pager; ``_bulk``: :class:`SyncBulkStream`.
"""

from ._bulk import SyncBulkStream
from ._client import InventClient
from ._generated import Contacts, Segments
from ._pager import ItemIterator, Pager
from ._runtime import PortalThreadError, SyncContextManager, SyncIterator

__all__ = [
    "Contacts",
    "InventClient",
    "ItemIterator",
    "Pager",
    "PortalThreadError",
    "Segments",
    "SyncBulkStream",
    "SyncContextManager",
    "SyncIterator",
]
