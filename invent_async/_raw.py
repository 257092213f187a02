"""Raw responses: :class:`RawResult` (status, headers, request id and the parsed result of a
call) and the :class:`Recorder` a client's ``with_raw_response`` fills.

A recording view of a client sends through the same pipeline as any call; its pipeline only
hands each final 2xx response to the recorder before the result is built from it. Nothing
here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from ._protocol import PageInfo, RawResponse, page_info, request_id

__all__ = ["RawResult", "Recorder"]

T = TypeVar("T")


class RawResult(Generic[T]):
    """The HTTP response of one call, and its result.

    Attributes:
        status: The HTTP status (a 2xx: an error status raises as usual, and the
            :class:`~invent_async.APIStatusError` carries its status, headers and request id).
        reason: The HTTP reason phrase.
        headers: The response headers (case-insensitive lookup).
        request_id: The server's request id (``x-request-id``), if it sent one.
        content: The response body as received.
    """

    __slots__ = ("_value", "content", "headers", "reason", "request_id", "status")

    def __init__(self, raw: RawResponse, value: T) -> None:
        self.status = raw.status
        self.reason = raw.reason
        self.headers: Mapping[str, str] = raw.headers
        self.request_id = request_id(raw.headers)
        self.content = raw.body
        self._value = value

    def parse(self) -> T:
        """The call's result, as the call itself returns it (built from this response once,
        when the call ran: a body that does not fit raised ``ResponseValidationError`` then)."""
        return self._value

    @property
    def pagination(self) -> PageInfo:
        """The ``pagination-count/page/take`` headers (None where absent)."""
        return page_info(self.headers)

    def __repr__(self) -> str:
        # no header values and no body: a traceback with locals copies neither
        request_id, status = getattr(self, "request_id", None), getattr(self, "status", "?")
        rid = f" request_id={request_id!r}" if request_id else ""
        return f"<RawResult status={status}{rid} headers={len(getattr(self, 'headers', ()))}>"


class Recorder:
    """Collects the final 2xx responses of the calls made through one recording view."""

    __slots__ = ("responses",)

    def __init__(self) -> None:
        self.responses: list[RawResponse] = []

    def record(self, raw: RawResponse) -> None:
        """One call's response (called on the client's loop)."""
        self.responses.append(raw)

    def result(self, value: T) -> RawResult[T]:
        """The :class:`RawResult` of the one call made, whose result is ``value``.

        Raises:
            ValueError: the function made no call, or more than one (a bulk job, a whole
                listing): there is no single response to return.
        """
        if len(self.responses) != 1:
            raise ValueError(
                "with_raw_response(fn): fn must make exactly one call (one response), it made "
                f"{len(self.responses)}; for a listing, ask for one page: "
                "lambda c: c.contacts.list().first_page()"
            )
        return RawResult(self.responses[0], value)
