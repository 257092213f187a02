"""Resource groups of the API: ``client.contacts`` and ``client.segments``."""

from .contacts import AsyncContacts
from .segments import AsyncSegments

__all__ = ["AsyncContacts", "AsyncSegments"]
