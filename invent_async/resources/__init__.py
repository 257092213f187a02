"""Resource groups of the API: ``client.contacts``, ``client.segments`` and
``client.broadcasts``."""

from .broadcasts import AsyncBroadcasts
from .contacts import AsyncContacts
from .segments import AsyncSegments

__all__ = ["AsyncBroadcasts", "AsyncContacts", "AsyncSegments"]
