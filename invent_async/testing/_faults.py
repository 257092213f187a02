"""Fault injection and traffic accounting for the fake: queued faults, the rate limiter, stats.

Nothing here touches HTTP objects; ``_app`` asks these classes what to do with each request.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias

import attrs

__all__ = [
    "FakeStats",
    "FaultQueue",
    "FaultRule",
    "RequestMatcher",
    "SlidingWindowLimiter",
    "TrafficCounter",
    "format_retry_after",
]

RequestMatcher: TypeAlias = str | re.Pattern[str] | Callable[[str, str], bool] | None
"""Which requests a fault applies to.

- ``None``: every request.
- a ``str`` or compiled pattern: searched (``re.search``) in ``"METHOD /raw/path"``, for example
  ``r"^POST /orgs/c/contacts/[^/]+/segments/"``. The path is the raw, percent-encoded path
  without the query string.
- a callable ``(method, raw_path) -> bool``.
"""

FaultKind: TypeAlias = Literal["fail", "drop", "delay"]


def _compile(match: RequestMatcher) -> Callable[[str, str], bool] | None:
    if match is None:
        return None
    if isinstance(match, str | re.Pattern):
        pattern = re.compile(match)
        return lambda method, path: pattern.search(f"{method} {path}") is not None
    if callable(match):
        return match
    raise TypeError(f"match must be a regex, a callable or None, got {type(match).__name__}")


@attrs.define(slots=True, eq=False)
class FaultRule:
    """One queued fault: applies to the next ``remaining`` matching requests."""

    kind: FaultKind
    remaining: int
    matcher: Callable[[str, str], bool] | None
    status: int = 503
    retry_after: str | None = None
    body: str | Mapping[str, Any] | None = None
    content_type: str | None = None
    seconds: float = 0.0

    def applies(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request."""
        return self.matcher is None or self.matcher(method, path)


class FaultQueue:
    """Faults in the order they were queued.

    For each request the first matching ``delay`` rule and the first matching terminal rule
    (``fail`` or ``drop``) are consumed; a rule is forgotten once it has been used up.
    """

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []

    def __len__(self) -> int:
        return sum(rule.remaining for rule in self._rules)

    def add(
        self,
        kind: FaultKind,
        n: int,
        match: RequestMatcher,
        **options: Any,
    ) -> None:
        """Queue a fault for the next ``n`` matching requests."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        if n:
            self._rules.append(FaultRule(kind, n, _compile(match), **options))

    def clear(self) -> None:
        """Forget every queued fault."""
        self._rules.clear()

    def take(self, method: str, path: str) -> tuple[float, FaultRule | None]:
        """Consume the faults for one request: (extra delay in seconds, terminal rule)."""
        if not self._rules:
            return 0.0, None
        delay = 0.0
        terminal: FaultRule | None = None
        have_delay = False
        for rule in self._rules:
            if rule.kind == "delay":
                if have_delay or not rule.applies(method, path):
                    continue
                have_delay = True
                delay = rule.seconds
            else:
                if terminal is not None or not rule.applies(method, path):
                    continue
                terminal = rule
            rule.remaining -= 1
            if have_delay and terminal is not None:
                break
        self._rules = [rule for rule in self._rules if rule.remaining > 0]
        return delay, terminal


def format_retry_after(seconds: float, precision: int) -> str:
    """A ``Retry-After`` value: rounded up to ``precision`` decimals, never below one unit."""
    if precision <= 0:
        return str(max(1, math.ceil(seconds)))
    scale = 10**precision
    units = max(1, math.ceil(seconds * scale - 1e-9))
    return f"{units / scale:.{precision}f}"


class SlidingWindowLimiter:
    """A sliding-window log: at most ``capacity`` accepted requests in any ``window`` seconds.

    ``capacity`` is ``rate_per_minute * window / 60`` rounded down (at least 1), so with the
    default 60 s window the limit is exactly ``rate_per_minute`` in any rolling minute; a
    burst of up to ``capacity`` requests is allowed. Rejected requests are not counted.
    """

    def __init__(self, rate_per_minute: float, window: float) -> None:
        if rate_per_minute <= 0:
            raise ValueError(f"rate_limit_per_minute must be positive, got {rate_per_minute!r}")
        if window <= 0:
            raise ValueError(f"rate_limit_window must be positive, got {window!r}")
        self.window = window
        self.capacity = max(1, math.floor(rate_per_minute * window / 60 + 1e-9))
        self._accepted: deque[float] = deque()

    def acquire(self, now: float) -> float | None:
        """Accept a request at ``now`` (None) or return how long until one would be accepted."""
        accepted = self._accepted
        horizon = now - self.window
        while accepted and accepted[0] <= horizon:
            accepted.popleft()
        if len(accepted) < self.capacity:
            accepted.append(now)
            return None
        return accepted[0] + self.window - now


@attrs.frozen(kw_only=True)
class FakeStats:
    """A snapshot of the traffic a :class:`FakeInvent` has seen (see ``FakeInvent.stats``).

    Attributes:
        total: every request that reached the fake, including faults and 429s.
        by_status: how many responses were sent with each status code.
        dropped: connections closed without a response (``drop_next``).
        injected: responses produced by ``fail_next``.
        rate_limited: 429 responses produced by the rate limiter.
        window_seconds: the length of the rolling window used by ``max_in_window``.
        max_in_window: the most requests that arrived within any rolling ``window_seconds``.
        by_operation: requests by the operationId of the route their method and path match
            (``"listContacts"``, ``"addSegmentToContact"``, ...), faults and 429s included;
            ``"unknown"`` for a path no route matches.
    """

    total: int
    by_status: Mapping[int, int] = attrs.field(hash=False)
    dropped: int
    injected: int
    rate_limited: int
    window_seconds: float
    max_in_window: int
    by_operation: Mapping[str, int] = attrs.field(factory=dict, hash=False)


class TrafficCounter:
    """Counts requests by outcome and the busiest rolling window of arrivals."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.reset()

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.total = 0
        self.by_status: dict[int, int] = {}
        self.dropped = 0
        self.injected = 0
        self.rate_limited = 0
        self.max_in_window = 0
        self.by_operation: dict[str, int] = {}
        self._arrivals: deque[float] = deque()

    def arrival(self, now: float) -> None:
        """Count a request arriving at ``now`` (monotonic seconds)."""
        self.total += 1
        arrivals = self._arrivals
        arrivals.append(now)
        horizon = now - self.window
        while arrivals[0] <= horizon:
            arrivals.popleft()
        if len(arrivals) > self.max_in_window:
            self.max_in_window = len(arrivals)

    def operation(self, name: str) -> None:
        """Count a request for the route ``name`` (its operationId)."""
        self.by_operation[name] = self.by_operation.get(name, 0) + 1

    def response(self, status: int | None) -> None:
        """Count a response (None: the connection was dropped)."""
        if status is None:
            self.dropped += 1
        else:
            self.by_status[status] = self.by_status.get(status, 0) + 1

    def snapshot(self) -> FakeStats:
        """An immutable copy of the counters."""
        return FakeStats(
            total=self.total,
            by_status=dict(self.by_status),
            dropped=self.dropped,
            injected=self.injected,
            rate_limited=self.rate_limited,
            window_seconds=self.window,
            max_in_window=self.max_in_window,
            by_operation=dict(self.by_operation),
        )
