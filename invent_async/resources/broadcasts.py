"""``client.broadcasts``: every broadcasts endpoint, each one declared once and called as
build -> send -> parse (the endpoint builds the request, the pipeline sends it, the converter
parses).

``POST /orgs/{org_id}/broadcasts/{broadcast_id}/send`` has two documented meanings, so it is
two methods, one per meaning, each with its own operation name and answer: :meth:`send`
starts a marketing broadcast (no body, the :class:`Broadcast` back) and
:meth:`send_transactional` fires a transactional one to one recipient (a body naming it, a
:class:`TransactionalSendResult` back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .._endpoints import Endpoint
from .._models import (
    Broadcast,
    BroadcastCreate,
    BroadcastSend,
    BroadcastStatus,
    TransactionalSendResult,
)
from .._pagination import AsyncPager
from .._pipeline import Pipeline
from .._types import UNSET, Unset

__all__ = ["AsyncBroadcasts"]

LIST = Endpoint("GET", "/orgs/{org_id}/broadcasts", "broadcasts.list")
CREATE = Endpoint("POST", "/orgs/{org_id}/broadcasts", "broadcasts.create", idempotent=False)
SEND = Endpoint(
    "POST", "/orgs/{org_id}/broadcasts/{broadcast_id}/send", "broadcasts.send", idempotent=False
)
SEND_TRANSACTIONAL = Endpoint(
    "POST",
    "/orgs/{org_id}/broadcasts/{broadcast_id}/send",
    "broadcasts.send_transactional",
    idempotent=False,
)

MAX_SEGMENTS = 10
"""The most segments one broadcast may target (the docs' ``maxItems``)."""


def _ids(value: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{what} must be a sequence of ids, not {type(value).__name__}")
    ids = tuple(value)
    for index, item in enumerate(ids):
        if not isinstance(item, str) or not item:
            raise TypeError(f"{what}[{index}] must be a non-empty string, got {item!r}")
    return ids


def _short(value: str | Unset, what: str, limit: int = 256) -> str | Unset:
    if value is not UNSET and (not isinstance(value, str) or len(value) > limit):
        raise ValueError(f"{what} must be a string of at most {limit} characters")
    return value


class AsyncBroadcasts:
    """Broadcasts of the client's organisation: ``client.broadcasts``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._prefix = pipeline.prefix  # "/orgs/{org}", encoded once

    @LIST.documents
    def list(
        self,
        *,
        status: BroadcastStatus | str | None = None,
        take: int = 100,
        page: int = 1,
    ) -> AsyncPager[Broadcast]:
        """List broadcasts, walking every page.

        Args:
            status: Only broadcasts in this status: a :class:`BroadcastStatus` or its string
                (``"SENT"``), or ``"ALL"`` (the same as None: no filter is sent then).
            take: Page size, 1 to 100.
            page: First page to fetch (1-based).

        Returns:
            An async-iterable pager over the broadcasts (no request is made until you iterate).
        """
        if status is not None and not isinstance(status, str):
            raise TypeError(f"status must be a BroadcastStatus or a string, got {status!r}")
        params = {"status": None if status is None else str(status)}
        first = LIST.request(self._prefix)
        return self._pipeline.paginate(first, params, Broadcast, take=take, page=page)

    @CREATE.documents
    async def create(
        self,
        name: str,
        *,
        segment_ids: Iterable[str] | None = None,
        send_to_all: bool = False,
        scheduled_at: datetime | Unset | None = UNSET,
    ) -> Broadcast:
        """Create a broadcast to the contacts of up to 10 segments, or to every contact.

        Its messages (templates) are not part of this call. Not idempotent: retried only
        when the request certainly did not reach the server.

        Args:
            name: The broadcast's name, 1 to 255 characters.
            segment_ids: The segments whose contacts receive it, 1 to 10 of them.
            send_to_all: Send to every contact instead (then no ``segment_ids``).
            scheduled_at: When to send it (a timezone-aware datetime; a naive one is read as
                UTC). None means "send now", as the docs say: the broadcast goes out to its
                segments at once, without a :meth:`send`. Left out (the default), it is
                not sent with the request: the broadcast is a draft for :meth:`send`.

        Returns:
            The created broadcast.

        Raises:
            TypeError: ``segment_ids`` is a string or holds something but ids, or
                ``scheduled_at`` is not a datetime (nothing is sent).
            ValueError: a name out of bounds, more than 10 segments, an empty list of them,
                or segments together with ``send_to_all`` (nothing is sent).
        """
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise ValueError("a broadcast name must be a string of 1 to 255 characters")
        if not isinstance(send_to_all, bool):
            raise TypeError(f"send_to_all must be True or False, got {send_to_all!r}")
        segments: tuple[str, ...] | Unset = UNSET
        if segment_ids is not None:
            segments = _ids(segment_ids, "segment_ids")
            if send_to_all:
                raise ValueError("pass segment_ids or send_to_all=True, not both")
            if not 1 <= len(segments) <= MAX_SEGMENTS:
                raise ValueError(
                    f"a broadcast targets 1 to {MAX_SEGMENTS} segments, got {len(segments)}"
                )
        if scheduled_at not in (UNSET, None) and not isinstance(scheduled_at, datetime):
            raise TypeError(f"scheduled_at must be a datetime, got {scheduled_at!r}")
        body = BroadcastCreate(
            name=name, scheduled_at=scheduled_at, segment_ids=segments, send_to_all=send_to_all
        )
        return await self._pipeline.call(CREATE.request(self._prefix, body=body), Broadcast)

    @SEND.documents
    async def send(self, broadcast_id: str) -> Broadcast:
        """Start sending a marketing broadcast to its segments (or to every contact).

        The request has no body. The API allows it while the broadcast is ``DRAFT``,
        ``CANCELLED`` or ``FAILED`` (documented on a legacy docs page). A transactional
        broadcast is fired with :meth:`send_transactional` instead; the docs do not say how
        the server tells the two apart (presumably by the broadcast's kind), so an answer of
        the other meaning fails this call with :class:`ResponseValidationError`. Not
        idempotent: retried only when the request certainly did not reach the server.

        Args:
            broadcast_id: The broadcast.

        Returns:
            The broadcast, now sending.
        """
        return await self._pipeline.call(SEND.request(self._prefix, broadcast_id), Broadcast)

    @SEND_TRANSACTIONAL.documents
    async def send_transactional(
        self,
        broadcast_id: str,
        *,
        contact_channel_id: str | Unset = UNSET,
        contact_id: str | Unset = UNSET,
        phone: str | Unset = UNSET,
        email: str | Unset = UNSET,
        name: str | Unset = UNSET,
        variables: Mapping[str, Any] | Unset = UNSET,
        template_ids: Iterable[str] | Unset = UNSET,
        background: bool | Unset = UNSET,
    ) -> TransactionalSendResult:
        """Fire a transactional broadcast once, to one recipient.

        The trigger fans out over the broadcast's templates (or ``template_ids``) and records
        one recipient row per template, sent or skipped. Name the recipient by at least one
        of, from the most specific: ``contact_channel_id``, ``contact_id``, ``phone`` or
        ``email`` (with no contact resolved, the server finds or creates one by phone or
        email; with one, they replace its phone or email for this send only). A marketing
        broadcast is started with :meth:`send` instead. Not idempotent: each request that
        reaches the server sends, so it is retried only when it certainly did not.

        Args:
            broadcast_id: The transactional broadcast.
            contact_channel_id: The exact contact channel to send to (skips resolving the
                contact).
            contact_id: A known contact; the channel is chosen per template.
            phone: A phone number (up to 256 characters).
            email: An email address (up to 256 characters).
            name: A display name for this send only (up to 256 characters; never creates a
                contact).
            variables: Values of the broadcast's fields, over the contact's stored ones.
            template_ids: Fire only these templates (default: every one).
            background: True queues the sends and answers at once; False (the server's
                default) waits for them and reports each message's ``external_message_id``.

        Returns:
            The recipient rows, one per template.

        Raises:
            ValueError: no recipient named, or a value out of bounds (nothing is sent).
            TypeError: ``template_ids`` is a string, ``variables`` not a mapping,
                ``background`` not a bool (nothing is sent).
        """
        if all(v is UNSET for v in (contact_channel_id, contact_id, phone, email)):
            raise ValueError(
                "send_transactional() needs a recipient: contact_channel_id, contact_id, "
                "phone or email"
            )
        for value, what in ((contact_channel_id, "contact_channel_id"), (contact_id, "contact_id")):
            if value is not UNSET and (not isinstance(value, str) or not value):
                raise ValueError(f"{what} must be a non-empty string")
        if variables is not UNSET and not isinstance(variables, Mapping):
            raise TypeError(f"variables must be a mapping, not {type(variables).__name__}")
        if background is not UNSET and not isinstance(background, bool):
            raise TypeError(f"background must be True or False, got {background!r}")
        body = BroadcastSend(
            contact_channel_id=contact_channel_id,
            contact_id=contact_id,
            phone=_short(phone, "phone"),
            email=_short(email, "email"),
            name=_short(name, "name"),
            variables=UNSET if variables is UNSET else dict(variables),
            template_ids=UNSET if template_ids is UNSET else _ids(template_ids, "template_ids"),
            background=background,
        )
        request = SEND_TRANSACTIONAL.request(self._prefix, broadcast_id, body=body)
        return await self._pipeline.call(request, TransactionalSendResult)
