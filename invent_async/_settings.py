"""Client settings, checked once: what a client and its views share, and each view's options.

:class:`Settings` holds what a client shares with all of its views (the API root, the key, the
rate limit) and the :class:`Options` of one view (organisation, timeout, retries, deadline).
Both are frozen and checked when they are built or evolved, so ``AsyncInventClient`` and
``InventClient`` reject a bad argument the same way and no client is built just to check one.
:class:`Configured` is the configuration surface both clients inherit: the read-only settings
and the two kinds of view, ``for_org()`` and ``with_options()``. No I/O lives here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final, Self

import attrs

from ._limits import BULK, INTERACTIVE, Lane, RateLimit, check_lane
from ._protocol import DEFAULT_BASE_URL, path_segment, validate_base_url
from ._retry import RetryPolicy
from ._secret import Secret
from ._types import UNSET, Unset

__all__ = [
    "API_KEY_ENV",
    "LANE_ENV",
    "REDIS_URL_ENV",
    "FALLBACK_SHARE_ENV",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_TIMEOUT",
    "Configured",
    "Options",
    "Secret",
    "Settings",
]

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_DEADLINE: Final = 120.0
DEFAULT_MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024
"""8 MiB: a page of 100 contacts is a few hundred KiB even with many fields and notes."""
DEFAULT_RATE_LIMIT: Final = RateLimit()
"""500 requests per minute with a burst of 5: the Invent API's documented per-IP limit."""
API_KEY_ENV: Final = "INVENT_API_KEY"
REDIS_URL_ENV: Final = "INVENT_REDIS_URL"
FALLBACK_SHARE_ENV: Final = "INVENT_FALLBACK_SHARE"
BASE_URL_ENV: Final = "INVENT_BASE_URL"
LANE_ENV: Final = "INVENT_LANE"


def _seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


@attrs.frozen(kw_only=True)
class Options:
    """What a view of a client may change: which organisation, and the limits of a call.

    Build and change them with :meth:`checked`, :meth:`for_org` and :meth:`evolve`, which
    check every value (in the order the client's arguments have always been checked).

    Attributes:
        org_id: The organisation calls act on (``"c"``: the key's own).
        timeout: Seconds allowed for one HTTP attempt (None: no limit).
        retry: How failed attempts are repeated.
        deadline: Seconds allowed for a whole call, waits and retries included (None: no
            limit); a request is sent only with at least the send floor of it left
            (``_send_floor``).
        lane: The rate governor's lane of this view's calls: ``"interactive"`` (the default,
            unless ``INVENT_LANE`` names another) or ``"bulk"`` (what the bulk methods use
            unless a view names a lane).
        lane_chosen: True when the lane was chosen with ``with_options(lane=...)``.
        bulk_item: True for the calls of a bulk job's items, which make no spans of their
            own unless ``INVENT_OTEL_BULK_ITEMS`` asks for some (see ``_observe``).
    """

    org_id: str
    timeout: float | None
    retry: RetryPolicy
    deadline: float | None
    lane: Lane = INTERACTIVE
    lane_chosen: bool = False
    bulk_item: bool = False

    @classmethod
    def checked(
        cls,
        *,
        org_id: str,
        timeout: float | None,
        max_retries: int,
        deadline: float | None,
        lane: Lane = INTERACTIVE,
    ) -> Options:
        """Options from a client's arguments, checked: org_id, timeout, retries, deadline.

        ``lane`` is the lane of calls that name none (``INVENT_LANE``, see
        :func:`lane_from_environment`): not a choice of the view, so the bulk methods still
        use the bulk lane.
        """
        path_segment(org_id, "org_id")
        checked_timeout = _seconds("timeout", timeout)
        retry = RetryPolicy(max_retries=max_retries)
        return cls(
            org_id=org_id,
            timeout=checked_timeout,
            retry=retry,
            deadline=_seconds("deadline", deadline),
            lane=check_lane(lane),
        )

    def for_org(self, org_id: str) -> Options:
        """These options for another organisation (checked like any path parameter)."""
        path_segment(org_id, "org_id")
        return attrs.evolve(self, org_id=org_id)

    def evolve(
        self,
        *,
        timeout: float | Unset | None = UNSET,
        max_retries: int | Unset = UNSET,
        deadline: float | Unset | None = UNSET,
        lane: Lane | Unset = UNSET,
    ) -> Options:
        """These options with some limits changed (left out: unchanged; None: no limit).

        Checked in this order: timeout, deadline, retries, lane.
        """
        new_timeout = self.timeout if timeout is UNSET else _seconds("timeout", timeout)
        new_deadline = self.deadline if deadline is UNSET else _seconds("deadline", deadline)
        retry = self.retry
        if max_retries is not UNSET:
            retry = attrs.evolve(retry, max_retries=max_retries)
        new_lane, chosen = self.lane, self.lane_chosen
        if lane is not UNSET:
            new_lane, chosen = check_lane(lane), True
        return attrs.evolve(
            self,
            timeout=new_timeout,
            retry=retry,
            deadline=new_deadline,
            lane=new_lane,
            lane_chosen=chosen,
        )

    def for_bulk(self, max_retries: int) -> Options:
        """The options of a bulk job's items: its retries, and the bulk lane unless this view
        chose a lane."""
        retry = attrs.evolve(self.retry, max_retries=max_retries)
        lane = self.lane if self.lane_chosen else BULK
        return attrs.evolve(self, retry=retry, lane=lane, bulk_item=True)


@attrs.frozen(kw_only=True)
class Settings:
    """Everything a client is configured with, checked (build them with :meth:`build`).

    Attributes:
        base_url: The API root, without a trailing slash (https, or http on loopback).
        api_key: The API key, in a :class:`Secret`.
        rate_limit: The rate governor's settings (None: no governor).
        max_response_bytes: The longest response body read, counted after decompression
            (None: no limit).
        options: The options of this view.
    """

    base_url: str
    api_key: Secret = attrs.field(eq=False)
    rate_limit: RateLimit | None
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES
    options: Options

    @staticmethod
    def key(api_key: str | None) -> Secret:
        """The API key (None: ``INVENT_API_KEY``), stripped of surrounding whitespace.

        Raises:
            ValueError: there is no key, or it holds a character that cannot be sent in an
                HTTP header (a control character, whitespace inside it, or one that is not
                ASCII). The message says which and where, never the key itself.
        """
        if api_key is not None and not isinstance(api_key, str):
            raise TypeError(f"api_key must be a str, got {type(api_key).__name__}")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key or not key.strip():
            raise ValueError(
                f"no API key: pass api_key=... or set the {API_KEY_ENV} environment variable"
            )
        key = key.strip()
        for position, char in enumerate(key):
            if not "!" <= char <= "~":  # visible ASCII: what an HTTP header can carry
                kind = (
                    "a control character"
                    if char < " " or char == "\x7f"
                    else ("whitespace" if char.isspace() else "a non-ASCII character")
                )
                raise ValueError(
                    f"the API key has {kind} at position {position} (of {len(key)}); "
                    "check how it was copied or loaded (the key is not shown)"
                )
        return Secret(key)

    @classmethod
    def build(
        cls,
        api_key: str | Secret | None,
        *,
        org_id: str,
        base_url: str | None,
        timeout: float | None,
        max_retries: int,
        deadline: float | None,
        rate_limit: RateLimit | None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> Settings:
        """Check a client's arguments into Settings.

        Checked in this order (the first problem is the one reported): the key (see
        :meth:`key`; a :class:`Secret` is already checked), base_url, org_id, timeout,
        max_retries, deadline, ``INVENT_LANE``, rate_limit, max_response_bytes.

        Raises:
            ValueError: no key, a base URL that is not https (or loopback http), an org id
                that is not one path segment, a limit that is not a positive number, an
                ``INVENT_LANE`` that names no lane.
            TypeError: an argument of the wrong type.
        """
        secret = api_key if isinstance(api_key, Secret) else cls.key(api_key)
        if base_url is None:
            base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        elif not isinstance(base_url, str):
            raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
        url = validate_base_url(base_url)
        options = Options.checked(
            org_id=org_id,
            timeout=timeout,
            max_retries=max_retries,
            deadline=deadline,
            lane=lane_from_environment(),
        )
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError("rate_limit must be a RateLimit or None")
        rate_limit = fleet_from_environment(rate_limit)
        if max_response_bytes is not None and (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise ValueError(
                f"max_response_bytes must be a positive integer or None, got {max_response_bytes!r}"
            )
        return cls(
            base_url=url,
            api_key=secret,
            rate_limit=rate_limit,
            max_response_bytes=max_response_bytes,
            options=options,
        )

    def with_options(self, options: Options) -> Settings:
        """These settings for a view with other options."""
        return attrs.evolve(self, options=options)


def lane_from_environment(environ: Mapping[str, str] | None = None) -> Lane:
    """The lane of calls that name none: ``INVENT_LANE`` (``"interactive"`` or ``"bulk"``,
    any case, surrounding whitespace ignored), ``"interactive"`` when it is unset or empty.

    ``INVENT_LANE=bulk`` in a task-queue worker's environment puts every call of its clients
    in the bulk lane, so that a web app's requests on the same budget overtake them;
    ``with_options(lane=...)`` still wins.

    Raises:
        ValueError: the variable names no lane (the message names the variable and the
            values it accepts).
    """
    raw = (os.environ if environ is None else environ).get(LANE_ENV, "")
    value = raw.strip().lower()
    if not value:
        return INTERACTIVE
    if value in (INTERACTIVE, BULK):
        return check_lane(value)
    raise ValueError(f"{LANE_ENV} must be {INTERACTIVE!r} or {BULK!r}, got {raw!r}")


def fleet_from_environment(
    rate_limit: RateLimit | None, environ: Mapping[str, str] | None = None
) -> RateLimit | None:
    """``rate_limit`` on the Redis server ``INVENT_REDIS_URL`` names, if it is set and the
    limit names no server, is shared and paced, and is not adaptive (``shared=False`` keeps
    a budget of its own; an adaptive limit guesses a rate shared with unknown others); and,
    on a Redis server, with the ``fallback_share`` of ``INVENT_FALLBACK_SHARE`` if that is
    set and the limit sets none.

    Raises:
        ValueError: a variable holds a value this SDK does not accept (the message names the
            variable and hides any password).
    """
    env = os.environ if environ is None else environ
    url = env.get(REDIS_URL_ENV, "").strip()
    if (
        url
        and rate_limit is not None
        and rate_limit.redis_url is None
        and rate_limit.shared
        and rate_limit.paced
        and not rate_limit.adaptive
    ):
        try:
            rate_limit = attrs.evolve(rate_limit, redis_url=url)
        except ValueError as exc:
            raise ValueError(f"{REDIS_URL_ENV}: {exc}") from None
    share = env.get(FALLBACK_SHARE_ENV, "").strip()
    if not share or rate_limit is None or rate_limit.redis_url is None:
        return rate_limit
    if rate_limit.fallback_share is not None:
        return rate_limit  # set in code (or by a CLI option): that wins
    try:
        return attrs.evolve(rate_limit, fallback_share=float(share))
    except ValueError:
        raise ValueError(
            f"{FALLBACK_SHARE_ENV} must be a number in (0, 1] (a process's share of the rate "
            f"while Redis is down), got {share!r}"
        ) from None


class Configured:
    """What both clients have on top of their calls: their settings, and views of themselves.

    A view shares its client's connections, rate governor and lifetime, and differs only in
    its :class:`Options`; each client makes its views in :meth:`_view`.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _view(self, settings: Settings) -> Self:
        raise NotImplementedError  # pragma: no cover - each client makes its own views

    @property
    def base_url(self) -> str:
        """The API root this client talks to."""
        return self._settings.base_url

    @property
    def org_id(self) -> str:
        """The organisation this client (or view) acts on."""
        return self._settings.options.org_id

    @property
    def rate_limit(self) -> RateLimit | None:
        """The rate governor's settings (None when the governor is off)."""
        return self._settings.rate_limit

    def for_org(self, org_id: str) -> Self:
        """A view of this client that acts on another organisation (a sub-organisation).

        The view shares this client's session, connection pool and lifetime.
        """
        return self._view(self._settings.with_options(self._settings.options.for_org(org_id)))

    def with_options(
        self,
        *,
        timeout: float | Unset | None = UNSET,
        max_retries: int | Unset = UNSET,
        deadline: float | Unset | None = UNSET,
        lane: Lane | Unset = UNSET,
    ) -> Self:
        """A view with other per-call settings, e.g. ``client.with_options(max_retries=0)``.

        Arguments left out keep this client's values. As in the client's constructor,
        ``timeout=None`` or ``deadline=None`` removes that limit. ``lane`` puts the view's
        calls in the rate governor's ``"interactive"`` lane (the default for single calls)
        or its ``"bulk"`` lane (the default of ``bulk_*`` and ``stream_*``): interactive
        calls overtake queued bulk work up to ``RateLimit.interactive_share`` of the rate.
        The environment variable ``INVENT_LANE=bulk`` (read when a client is created) makes
        ``"bulk"`` the lane of the calls that name none; a view's ``lane`` wins over it.
        """
        options = self._settings.options.evolve(
            timeout=timeout, max_retries=max_retries, deadline=deadline, lane=lane
        )
        return self._view(self._settings.with_options(options))

    def __repr__(self) -> str:
        if getattr(self, "_settings", None) is None:  # its constructor raised: a bad argument
            return f"<{type(self).__name__} not constructed>"
        return f"{type(self).__name__}(base_url={self.base_url!r}, org_id={self.org_id!r})"
