"""A fake Invent API for tests and benchmarks: :class:`FakeInvent`.

``FakeInvent`` serves every endpoint of ``invent-openapi.yaml`` (contacts, segments and
broadcasts) from memory over loopback HTTP (aiohttp.web on 127.0.0.1), validates requests
strictly, records them (:class:`RecordedRequest`), and injects faults on demand: failures
with any status and ``Retry-After``, dropped connections, latency and a real rate limiter.
Run a standalone one with ``python -m invent_async.testing --help``. :class:`MockTransport`
answers a client's requests in memory instead, from a function you write
(``AsyncInventClient(transport=...)``).
"""

from .._public import publish
from ._app import RecordedRequest
from ._fake import FakeInvent
from ._faults import FakeStats, RequestMatcher
from ._mock import MockTransport, mock_response
from ._threaded import ThreadedFake

__all__ = [
    "FakeInvent",
    "ThreadedFake",
    "RecordedRequest",
    "FakeStats",
    "RequestMatcher",
    "MockTransport",
    "mock_response",
]

publish(__name__, globals(), __all__)
