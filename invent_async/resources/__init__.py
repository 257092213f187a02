"""Resource groups of the API: ``client.contacts``, ``client.segments`` and
``client.broadcasts``.

Loaded when the first client is created, not by ``import invent_async`` (see ``_client``), so
this package publishes its exported names itself when it loads."""

from .._public import publish
from .broadcasts import AsyncBroadcasts
from .contacts import AsyncContacts
from .segments import AsyncSegments

__all__ = ["AsyncBroadcasts", "AsyncContacts", "AsyncSegments"]

publish("invent_async", globals(), __all__)
