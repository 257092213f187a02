"""The contacts' chat endpoints (custom channels only): open a chat on a contact channel and
send messages written by the contact. A base class of :class:`AsyncContacts`, so that they
are ``client.contacts.create_chat(...)`` and so on, kept here to keep ``contacts.py`` about
contacts themselves. Each endpoint is declared once and called as build -> send -> parse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .._endpoints import Endpoint
from .._models import Chat, ChatCreate, ChatMessage, MessageSend, OtherPart, TextPart
from .._pipeline import Pipeline
from .._types import UNSET, Unset

__all__ = ["ContactChats", "message_parts"]

CREATE_CHAT = Endpoint(
    "POST",
    "/orgs/{org_id}/contacts/{contact_id}/channels/{channel_id}/chats",
    "contacts.create_chat",
    idempotent=False,
)
SEND_MESSAGE = Endpoint(
    "POST",
    "/orgs/{org_id}/contacts/{contact_id}/chats/{chat_id}/messages",
    "contacts.send_message",
    idempotent=False,
)
SEND_MESSAGE_ON_CHANNEL = Endpoint(
    "POST",
    "/orgs/{org_id}/contacts/{contact_id}/channels/{channel_id}/chats/{chat_id}/messages",
    "contacts.send_message_on_channel",
    idempotent=False,
    inferred=True,
)


def message_parts(
    message: str | TextPart | OtherPart | Iterable[TextPart | OtherPart],
) -> tuple[TextPart | OtherPart, ...]:
    """A message as the tuple of parts the API takes: a string is one text part.

    Raises:
        TypeError: neither a string, a part, nor an iterable of parts (or an
            :class:`OtherPart` whose ``data`` is not a mapping).
        ValueError: no part at all, or an empty string.
    """
    if isinstance(message, str):
        if not message:
            raise ValueError("a message must not be empty")
        return (TextPart(text=message),)
    if isinstance(message, TextPart | OtherPart):
        return message_parts([message])
    if isinstance(message, bytes | Mapping) or not isinstance(message, Iterable):
        raise TypeError(
            f"a message is a string, a TextPart, an OtherPart or a sequence of them, "
            f"not {type(message).__name__}"
        )
    parts = tuple(message)
    for index, part in enumerate(parts):
        if not isinstance(part, TextPart | OtherPart):
            raise TypeError(
                f"message[{index}] must be a TextPart or an OtherPart, got {type(part).__name__}"
            )
        if isinstance(part, OtherPart) and not isinstance(part.data, Mapping):
            raise TypeError(f"message[{index}].data must be a JSON object (a mapping)")
    if not parts:
        raise ValueError("a message needs at least one part")
    return parts


class ContactChats:
    """The chat endpoints of ``client.contacts`` (a base of :class:`AsyncContacts`)."""

    _pipeline: Pipeline
    _prefix: str

    @CREATE_CHAT.documents
    async def create_chat(
        self,
        contact_id: str,
        channel_id: str,
        *,
        assistant_id: str | Unset = UNSET,
        title: str | Unset = UNSET,
        message: str | TextPart | OtherPart | Iterable[TextPart | OtherPart] | Unset = UNSET,
    ) -> Chat:
        """Open a chat with a contact on one of its *custom* channels.

        The new chat's only member is the contact channel (you are not added), and an
        opening ``message`` counts as written by the contact. Not idempotent: retried only
        when the request certainly did not reach the server.

        Args:
            contact_id: The contact.
            channel_id: The contact's channel (of type ``custom``).
            assistant_id: An assistant (the docs do not describe its role in the chat).
            title: The chat's title.
            message: An opening message from the contact: a string (one text part), a
                :class:`TextPart` or :class:`OtherPart`, or a sequence of them.

        Returns:
            The new chat.
        """
        parts = UNSET if message is UNSET else message_parts(message)
        body = ChatCreate(assistant_id=assistant_id, title=title, message=parts)
        request = CREATE_CHAT.request(self._prefix, contact_id, channel_id, body=body)
        return await self._pipeline.call(request, Chat)

    @SEND_MESSAGE.documents
    async def send_message(
        self,
        contact_id: str,
        chat_id: str,
        message: str | TextPart | OtherPart | Iterable[TextPart | OtherPart],
        *,
        channel_id: str | Unset = UNSET,
    ) -> ChatMessage:
        """Add a message written by the contact (not by you) to one of its chats.

        Custom channels only. Not idempotent: a message is added each time the request
        reaches the server, so it is retried only when it certainly did not.

        Args:
            contact_id: The contact, the message's author.
            chat_id: The chat.
            message: A string (one text part), a :class:`TextPart` or :class:`OtherPart`,
                or a sequence of them (at least one).
            channel_id: The contact channel it is sent on
                (:meth:`send_message_on_channel` puts it in the path instead).

        Returns:
            The new message.
        """
        body = MessageSend(message=message_parts(message), channel_id=channel_id)
        request = SEND_MESSAGE.request(self._prefix, contact_id, chat_id, body=body)
        return await self._pipeline.call(request, ChatMessage)

    @SEND_MESSAGE_ON_CHANNEL.documents
    async def send_message_on_channel(
        self,
        contact_id: str,
        channel_id: str,
        chat_id: str,
        message: str | TextPart | OtherPart | Iterable[TextPart | OtherPart],
    ) -> ChatMessage:
        """Add a message written by the contact to one of its chats, naming the channel in
        the path.

        Inferred endpoint: its docs page shows the path's parameters (org, contact, channel,
        chat, in that order) but not the path itself, which is built from them in the style
        of :meth:`send_message`; otherwise the same call. Not idempotent.

        Args:
            contact_id: The contact, the message's author.
            channel_id: The contact's channel (of type ``custom``).
            chat_id: The chat.
            message: A string (one text part), a :class:`TextPart` or :class:`OtherPart`,
                or a sequence of them (at least one).

        Returns:
            The new message.
        """
        body = MessageSend(message=message_parts(message))
        request = SEND_MESSAGE_ON_CHANNEL.request(
            self._prefix, contact_id, channel_id, chat_id, body=body
        )
        return await self._pipeline.call(request, ChatMessage)
