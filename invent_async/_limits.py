"""The rate limit's settings and what a governor reports: pure values, no I/O, no event loop.

:class:`RateLimit` (the 17 settings a client passes, each checked when it is built, and the
rules between them), the lanes of a request (:data:`INTERACTIVE`, :data:`BULK`), the defaults,
the stats a governor and a fleet's budget report (:class:`GovernorStats`, :class:`FleetStats`)
and :class:`GovernorDeadlineExceeded`. The governors that enforce a limit live elsewhere: the
:class:`~invent_async._governor.Governor` protocol and its implementations (``_ratelimit`` in
the process, ``_fleet`` on a Redis server). A Redis URL is checked, and its password hidden,
by ``_secret``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, Literal

import attrs

from ._secret import check_redis_url, redacted_url_repr, secret_constructor

__all__ = [
    "BULK",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_PER_MINUTE",
    "DEFAULT_REDIS_TIMEOUT",
    "INTERACTIVE",
    "LANES",
    "FleetStats",
    "GovernorDeadlineExceeded",
    "GovernorStats",
    "Lane",
    "RateLimit",
    "check_lane",
]

DEFAULT_PER_MINUTE: Final = 500.0
"""The Invent API's documented limit: 500 requests per minute per IP."""
DEFAULT_MAX_RETRY_AFTER: Final = 300.0
"""Longest ``Retry-After`` (seconds) a client waits for; a longer one fails the call at once."""
DEFAULT_REDIS_TIMEOUT: Final = 0.25
"""Seconds a budget operation on Redis may take before the server counts as unreachable."""

Lane = Literal["interactive", "bulk"]
"""The lane of a request: interactive calls may overtake bulk work (see ``interactive_share``)."""
INTERACTIVE: Final[Lane] = "interactive"
BULK: Final[Lane] = "bulk"
LANES: Final = (INTERACTIVE, BULK)


def check_lane(value: object) -> Lane:
    """``value`` if it names a lane; else ValueError."""
    if value == INTERACTIVE:
        return INTERACTIVE
    if value == BULK:
        return BULK
    raise ValueError(f"lane must be 'interactive' or 'bulk', got {value!r}")


_REDIS_EXACT: Final = 2**53
"""Microseconds a budget's scripts on Redis count exactly (Lua numbers are doubles)."""


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_Validator = Callable[[object, "attrs.Attribute[Any]", Any], None]


def _check_rate(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None or (_number(value) and value == 0):
        return
    if not _number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{attribute.name} must be a positive finite number, or 0 or None to disable "
            f"pacing, got {value!r}"
        )


def _check_count(minimum: int, *, optional: bool = False) -> _Validator:
    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            extra = " or None" if optional else ""
            raise ValueError(
                f"{attribute.name} must be an integer >= {minimum}{extra}, got {value!r}"
            )

    return check


def _check_fraction(*, one_allowed: bool, optional: bool = False) -> _Validator:
    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        if not _number(value) or not (value > 0 and (value <= 1 if one_allowed else value < 1)):
            interval = "(0, 1]" if one_allowed else "(0, 1)"
            extra = " or None" if optional else ""
            raise ValueError(
                f"{attribute.name} must be a number in {interval}{extra}, got {value!r}"
            )

    return check


def _check_seconds(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not _number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


def _check_budget(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value or any(char.isspace() for char in value):
        raise ValueError(
            f"{attribute.name} must be a non-empty name without whitespace, got {value!r}"
        )


def _check_share(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not _number(value) or not 0 <= value < 1:
        raise ValueError(f"{attribute.name} must be a number from 0 to below 1, got {value!r}")


def _check_redis_url(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_redis_url(attribute.name, value)


def _check_headroom(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not _number(value) or not 0 <= value < 0.5:
        raise ValueError(f"{attribute.name} must be a number from 0 to 0.5, got {value!r}")


@secret_constructor  # a Redis URL's password is in no frame of a refused URL's traceback
@attrs.frozen(kw_only=True)
class RateLimit:
    """How a client paces its requests. Shared by the client, its views and, by default, every
    client of the process that talks to the same API host (see ``budget``).

    .. code-block:: python

        from invent_async import AsyncInventClient, RateLimit

        nightly = RateLimit(per_minute=100, budget="nightly", max_in_flight=4)
        async with AsyncInventClient(rate_limit=nightly) as client:
            await client.contacts.get("ct_123")
            stats = client.rate_limit_stats()
        assert stats is not None and stats.acquired == 1
        assert stats.rate_per_minute == 98  # 2% headroom under per_minute

    Attributes:
        per_minute: Requests per minute the governor lets through on average (the Invent API
            allows 500 per minute per IP). ``None`` or ``0`` disables pacing; the cap and the
            429 cool-down still apply. With ``redis_url``, ``None`` joins the budget's
            settings stored on the server (a CLI job beside an app, say).
        burst: Requests that may go out at once after an idle period (the bucket's size).
            Any window of ``W`` seconds admits at most ``burst + W * per_minute / 60``.
        max_in_flight: Most requests sent and not yet answered at any time (None: no cap).
            With lanes (``interactive_share`` above 0), a freed slot goes to a waiting
            interactive request before the bulk ones.
        adaptive: Cut the rate on each 429 and win it back slowly on successes (AIMD), for
            limits shared with other processes or machines. Needs ``per_minute``.
        decrease: Factor applied to the rate on a 429 in adaptive mode.
        min_fraction: Floor of the adaptive rate, as a fraction of ``per_minute``.
        recovery: Fraction of ``per_minute`` regained per successful response in adaptive
            mode. The default (0.001) takes about 500 successes to recover from one halving.
        cooldown: Pause after a 429 that has no ``Retry-After``, doubled for each further
            429 in a row (a success resets it). A ``Retry-After`` is honoured as given.
        max_cooldown: Cap of the computed pause.
        max_retry_after: Longest ``Retry-After`` honoured, in seconds (default 300). A 429 (or
            503) asking for longer fails its call at once with the server's value in
            ``RateLimitError.retry_after``, without retrying, and stops a bulk job
            (``BulkAbortedError``); the shared gate then closes for ``max_retry_after`` only,
            after which one request probes the server again while the others wait for its
            answer (queued calls whose deadline ends first fail at once).
            ``client.rate_limit_reset()`` reopens the gate earlier.
        headroom: Fraction of ``per_minute`` left unused (default 2%): requests are paced at
            ``per_minute * (1 - headroom)``, so that network jitter bunching a few requests
            together cannot push a window of the server over its limit.
        budget: The name of the budget this limit is (default ``"default"``). Every client of
            the process with the same API host (host and port of ``base_url``) and the same
            budget name shares one governor: pacing, the cool-down gate, the cap, the
            adaptive rate and the stats. They must ask for equal settings: a client asking
            for others raises ``ValueError`` when it is created. Name another budget to give
            a group of clients a limit of its own. Without Redis, the processes of this host
            share the pacing, the cool-down and the lanes of a budget of the same name too
            (the host budget, ``docs/many-workers.md``).
        shared: False gives the client a governor of its own, shared with its views only
            (then ``budget`` must stay ``"default"``, and ``INVENT_REDIS_URL`` and the host
            budget are ignored).
        interactive_share: Share of the rate reserved for interactive calls while bulk work
            (``bulk_*``, ``stream_*``, the CLI's tag and untag) keeps the budget busy
            (default 0.2). Up to this share, an interactive call overtakes the queued bulk
            requests and goes at once, and the next bulk request gives up its slot for it;
            beyond it, interactive calls queue like the others. Bulk work uses whatever the
            interactive lane leaves idle, so a lone bulk job still runs at the full rate.
            0 puts every call in one queue, in arrival order.
        redis_url: A Redis or Valkey server holding the budget for every process that names
            the same server, API host and budget: the pacing, the 429 cool-down and fleet
            stats are shared by every worker on every host (see ``_fleet``). The budget
            stores its settings (``per_minute``, ``burst``, ``interactive_share``,
            ``headroom``) while any process uses it: a process asking for others fails at
            its first call with :class:`~invent_async.BudgetSettingsError`, and
            ``per_minute=None`` joins the stored ones (that error when none are stored). Plain
            ``redis://`` only on loopback; ``rediss://`` (TLS) for a server elsewhere;
            ``unix:///path`` for a socket. None (the default): ``INVENT_REDIS_URL`` if it is
            set (and the limit is shared, paced and not adaptive), else the budget of this
            host's processes (a sqlite file in ``INVENT_BUDGET_DIR``; ``off`` there: per
            process). The password (in the user info or a ``password=`` query parameter)
            never shows in a repr, log or error.
        redis_timeout: Seconds a Redis operation may take (default 0.25) before the server
            counts as unreachable, and the process paces itself at ``fallback_share`` of the
            rate until the server answers again. A call never fails because Redis is down.
        fallback_share: Share of ``per_minute`` a process uses on its own while the Redis
            server is unreachable. None (the default): ``INVENT_FALLBACK_SHARE`` if it is
            set, else 1 / the budget's live members when the server last answered (every
            process announces itself with each admission; 0.25 before any answer), so the
            fleet together stays at the limit whatever its size.
    """

    per_minute: float | None = attrs.field(default=DEFAULT_PER_MINUTE, validator=_check_rate)
    burst: int = attrs.field(default=5, validator=_check_count(1))
    max_in_flight: int | None = attrs.field(default=None, validator=_check_count(1, optional=True))
    adaptive: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    decrease: float = attrs.field(default=0.5, validator=_check_fraction(one_allowed=False))
    min_fraction: float = attrs.field(default=0.1, validator=_check_fraction(one_allowed=True))
    recovery: float = attrs.field(default=0.001, validator=_check_fraction(one_allowed=True))
    cooldown: float = attrs.field(default=1.0, validator=_check_seconds)
    max_cooldown: float = attrs.field(default=60.0, validator=_check_seconds)
    max_retry_after: float = attrs.field(default=DEFAULT_MAX_RETRY_AFTER, validator=_check_seconds)
    headroom: float = attrs.field(default=0.02, validator=_check_headroom)
    budget: str = attrs.field(default="default", validator=_check_budget)
    shared: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    interactive_share: float = attrs.field(default=0.2, validator=_check_share)
    redis_url: str | None = attrs.field(
        default=None, validator=_check_redis_url, repr=redacted_url_repr
    )
    redis_timeout: float = attrs.field(default=DEFAULT_REDIS_TIMEOUT, validator=_check_seconds)
    fallback_share: float | None = attrs.field(
        default=None, validator=_check_fraction(one_allowed=True, optional=True)
    )

    def __attrs_post_init__(self) -> None:
        if self.redis_url is not None:
            if not self.shared:
                raise ValueError(
                    "redis_url shares the budget with other processes, but shared=False gives "
                    "the client a governor of its own: pass one or the other"
                )
            if self.adaptive:
                raise ValueError(
                    "adaptive=True guesses a rate shared with unknown others; with redis_url "
                    "the budget is shared exactly, so pass one or the other"
                )
            if self.per_minute is not None and not self.paced:
                raise ValueError(
                    "redis_url shares a pacing rate: per_minute=0 cannot be shared (None joins "
                    "the settings stored with the budget)"
                )
            if any(char in self.budget for char in "{}"):
                raise ValueError(
                    f"budget={self.budget!r}: a budget on Redis names its keys, which cannot "
                    "hold braces"
                )
            if self.per_minute is not None:  # None joins the stored settings
                self._check_redis_range()
        if not self.shared and self.budget != "default":
            raise ValueError(
                f"budget={self.budget!r} names a shared budget, but shared=False gives the "
                "client a governor of its own: pass one or the other"
            )
        if self.adaptive and not self.paced:
            raise ValueError("adaptive=True needs a per_minute rate to adapt")
        if self.max_cooldown < self.cooldown:
            raise ValueError(
                f"max_cooldown ({self.max_cooldown!r}) must be >= cooldown ({self.cooldown!r})"
            )

    def _check_redis_range(self) -> None:
        """A budget on Redis counts whole microseconds in its scripts, exactly below 2**53."""
        assert self.per_minute is not None
        interval = 60e6 / self.per_minute
        if interval < 1:
            raise ValueError(
                f"per_minute={self.per_minute!r} is too high for a budget on Redis, which "
                "paces in whole microseconds: at most 60,000,000"
            )
        longest = interval * self.burst
        if self.interactive_share:
            longest = max(longest, interval / self.interactive_share)
        if longest >= _REDIS_EXACT:
            raise ValueError(
                f"per_minute={self.per_minute!r} with burst={self.burst!r} and "
                f"interactive_share={self.interactive_share!r} spans more time than a budget on "
                "Redis counts (2**53 microseconds, about 285 years): raise per_minute, or lower "
                "burst, or raise interactive_share"
            )

    @property
    def paced(self) -> bool:
        """True when requests are paced (``per_minute`` is set and not 0)."""
        return bool(self.per_minute)


class GovernorDeadlineExceeded(Exception):
    """The wait for the governor would end at or after the caller's deadline.

    Raised at once when the wait is known in advance (pacing, cool-down), or at the deadline
    while queued for a concurrency slot. Nothing is consumed: no slot is held and no pacing
    token is spent. Deliberately not an ``InventError`` (so the retry layer does not retry it):
    the client turns it into an ``APITimeoutError``.

    Attributes:
        wait: Seconds the request would still have had to wait, or None when unknown (it was
            queued for a concurrency slot).
    """

    def __init__(self, wait: float | None) -> None:
        self.wait = wait
        if wait is None:
            message = "the deadline ran out while waiting for a free request slot"
        else:
            message = f"the rate governor would delay this request {wait:.3f}s, past its deadline"
        super().__init__(message)


@attrs.frozen(kw_only=True)
class GovernorStats:
    """A snapshot of a governor's counters (for progress reports and benchmarks).

    Attributes:
        acquired: Tickets handed out so far.
        waited: Seconds spent waiting in ``acquire``, summed over those tickets.
        rate_limited: 429 responses signalled.
        deadline_exceeded: Acquisitions refused because of the caller's deadline.
        rate_per_minute: The pacing rate now (below the configured one after adaptive cuts),
            or None when pacing is disabled.
        in_flight: Tickets held now.
        max_in_flight: Most tickets held at the same time so far.
        waiting: Calls of ``acquire`` waiting now.
        cooldown_remaining: Seconds until the 429 cool-down gate opens (0 when open).
        fleet: The budget is shared on a Redis server (``RateLimit.redis_url``); the
            counters are this process's (``rate_limit_fleet_stats()`` reads the fleet's).
        fallback: The Redis server does not answer: this process paces itself at
            ``fallback_share`` of the rate until it does. With a host budget: its store
            cannot be used, and the process paces itself at the whole rate.
        given_back: Pacing slots handed back to the budget by requests that were not sent
            after all (``Ticket.release(sent=False)``, or a cancelled ``acquire`` on Redis).
        host: The budget is shared by the processes of this host (the default without
            Redis); the counters are this process's (``rate_limit_fleet_stats()`` reads the
            host's).
    """

    acquired: int
    waited: float
    rate_limited: int
    deadline_exceeded: int
    rate_per_minute: float | None
    in_flight: int
    max_in_flight: int
    waiting: int
    cooldown_remaining: float
    fleet: bool = False
    fallback: bool = False
    given_back: int = 0
    host: bool = False

    @property
    def gate_closed(self) -> bool:
        """True while a 429 cool-down holds requests back."""
        return self.cooldown_remaining > 0


@attrs.frozen(kw_only=True)
class FleetStats:
    """A budget's counters on the server, the same from every process that uses it.

    Attributes:
        acquired: Send slots handed out (the counters live until a day after their last
            change).
        express: Of those, slots taken by interactive calls ahead of queued bulk work.
        given_back: Slots handed back by requests that were not sent after all (the next
            request to book took each one instead of a later slot).
        rate_limited: 429 answers any process signalled.
        cooldown_remaining: Seconds until the shared cool-down gate opens (0: open).
        backlog: Seconds of slots booked ahead of now (0: a request would go at once).
    """

    acquired: int
    express: int
    rate_limited: int
    cooldown_remaining: float
    backlog: float
    given_back: int = 0
