"""The synchronous client: :class:`InventClient`, generated from the async one.

- ``_generated``: :class:`InventClient` and its resource classes (``client.contacts``, ...),
  written by ``python -m invent_async._codegen``; never edit it by hand.
- ``_client``: :class:`SyncClient`, the hand-written base: lifecycle, views, stats.
- ``_loop``: the event-loop thread each client owns; ``_runtime``: starting it and calling
  into it; ``_process``: exit and fork; ``_bridge``: sync iterators over async ones;
  ``_traceback``: trimming bridge frames; ``_pager``: :class:`Pager`, the blocking pager.

The names ``invent_async`` exports from here report ``invent_async`` as their module, from the
moment this package loads (an exception raised by the sync client says
``invent_async.PortalThreadError`` even if the user never named it).
"""

from .._public import publish
from ._bridge import SyncBulkStream, SyncIterator
from ._generated import Broadcasts, Contacts, InventClient, Segments
from ._loop import PortalThreadError
from ._pager import ItemIterator, Pager

__all__ = [
    "Broadcasts",
    "Contacts",
    "InventClient",
    "ItemIterator",
    "Pager",
    "PortalThreadError",
    "Segments",
    "SyncBulkStream",
    "SyncIterator",
]

PUBLIC = (
    "Broadcasts",
    "Contacts",
    "InventClient",
    "Pager",
    "PortalThreadError",
    "Segments",
    "SyncBulkStream",
)
"""What ``invent_async`` exports from here (loaded on first use there)."""
publish("invent_async", globals(), PUBLIC)
