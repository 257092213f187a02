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
from typing import Final, Self

import attrs

from ._protocol import path_segment, validate_base_url
from ._ratelimit import RateLimit
from ._retry import RetryPolicy
from ._types import NoLimit

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_DEADLINE",
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
DEFAULT_RATE_LIMIT: Final = RateLimit()
"""500 requests per minute with a burst of 5: the Invent API's documented per-IP limit."""
API_KEY_ENV: Final = "INVENT_API_KEY"


class Secret:
    """Holds a secret (the API key); its repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "<redacted>"

    def reveal(self) -> str:
        """The secret itself, for the one place that sends it."""
        return self._value


def _seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


def _timeout(value: float | None) -> float | None:
    return _seconds("timeout", value)


def _deadline(value: float | None) -> float | None:
    return _seconds("deadline", value)


def _org(_: object, __: object, org_id: str) -> None:
    path_segment(org_id, "org_id")


@attrs.frozen(kw_only=True)
class Options:
    """What a view of a client may change: which organisation, and the limits of a call.

    Attributes:
        org_id: The organisation calls act on (``"c"``: the key's own).
        timeout: Seconds allowed for one HTTP attempt (None: no limit).
        retry: How failed attempts are repeated.
        deadline: Seconds allowed for a whole call, waits and retries included (None: none).
    """

    org_id: str = attrs.field(validator=_org)
    timeout: float | None = attrs.field(converter=_timeout)
    retry: RetryPolicy
    deadline: float | None = attrs.field(converter=_deadline)

    def evolve(
        self,
        *,
        org_id: str | None = None,
        timeout: float | NoLimit | None = None,
        max_retries: int | None = None,
        deadline: float | NoLimit | None = None,
    ) -> Options:
        """These options with the given ones changed (None: unchanged; NO_LIMIT: no limit)."""
        if org_id is None and timeout is None and max_retries is None and deadline is None:
            return self
        return Options(
            org_id=self.org_id if org_id is None else org_id,
            timeout=_limit(timeout, self.timeout),
            retry=self.retry
            if max_retries is None
            else attrs.evolve(self.retry, max_retries=max_retries),
            deadline=_limit(deadline, self.deadline),
        )


def _limit(value: float | NoLimit | None, current: float | None) -> float | None:
    if value is None:
        return current
    return None if isinstance(value, NoLimit) else value


def _rate_limit(_: object, __: object, value: RateLimit | None) -> None:
    if value is not None and not isinstance(value, RateLimit):
        raise TypeError("rate_limit must be a RateLimit or None")


@attrs.frozen(kw_only=True)
class Settings:
    """Everything a client is configured with, checked.

    Attributes:
        base_url: The API root, without a trailing slash (https, or http on loopback).
        api_key: The API key, in a :class:`Secret`.
        rate_limit: The rate governor's settings (None: no governor).
        options: The options of this view.
    """

    base_url: str = attrs.field(converter=validate_base_url)
    api_key: Secret = attrs.field(eq=False)
    rate_limit: RateLimit | None = attrs.field(validator=_rate_limit)
    options: Options

    @classmethod
    def build(
        cls,
        api_key: str | None,
        *,
        org_id: str,
        base_url: str,
        timeout: float | None,
        max_retries: int,
        deadline: float | None,
        rate_limit: RateLimit | None,
    ) -> Settings:
        """Check a client's arguments (``api_key`` None: ``INVENT_API_KEY``) into Settings.

        Raises:
            ValueError: no key, a base URL that is not https (or loopback http), an org id
                that is not one path segment, a limit that is not a positive number.
            TypeError: an argument of the wrong type.
        """
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key or not key.strip():
            raise ValueError(
                f"no API key: pass api_key=... or set the {API_KEY_ENV} environment variable"
            )
        return cls(
            base_url=base_url,
            api_key=Secret(key.strip()),
            rate_limit=rate_limit,
            options=Options(
                org_id=org_id,
                timeout=timeout,
                retry=RetryPolicy(max_retries=max_retries),
                deadline=deadline,
            ),
        )

    def with_options(self, options: Options) -> Settings:
        """These settings for a view with other options."""
        return attrs.evolve(self, options=options)


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
        return self._view(self._settings.with_options(self._settings.options.evolve(org_id=org_id)))

    def with_options(
        self,
        *,
        timeout: float | NoLimit | None = None,
        max_retries: int | None = None,
        deadline: float | NoLimit | None = None,
    ) -> Self:
        """A view with other per-call settings, e.g. ``client.with_options(max_retries=0)``.

        Arguments left out keep this client's values; pass :data:`NO_LIMIT` (a module
        constant) as ``timeout`` or ``deadline`` to remove the limit.
        """
        options = self._settings.options.evolve(
            timeout=timeout, max_retries=max_retries, deadline=deadline
        )
        return self._view(self._settings.with_options(options))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, org_id={self.org_id!r})"
