"""A rate budget kept on a Redis-protocol server (Redis, Valkey), shared by every process.

:class:`RedisBudget` is the fleet-wide counterpart of the governor's local pacing: the same
GCRA ("next free send time"), done atomically by one Lua script that reads the **server's**
clock (``TIME``), so processes on hosts with skewed clocks still share one budget. The 429
cool-down is a key of its own: one process's ``Retry-After`` holds back every process.

This module is the primitive only: reserve a slot, close the shared gate, read it. The
governor decides what to do with a reservation (sleep until it, check the gate again before
sending) and falls back to a local budget when the server does not answer (that wiring is
not here yet). Needs the ``redis`` extra (redis-py's asyncio client), imported on first use.

Keys, for a budget ``name``: ``invent:{name}:next`` (the next free send time, in server
microseconds) and ``invent:{name}:gate`` (the end of the cool-down, same unit). Both expire
once they are in the past, so an idle budget leaves nothing behind.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import attrs

from ._exceptions import InventError

if TYPE_CHECKING:  # pragma: no cover - types only
    import redis.asyncio

__all__ = ["DEFAULT_REDIS_TIMEOUT", "Gate", "RedisBudget", "RedisUnavailableError", "Reservation"]

DEFAULT_REDIS_TIMEOUT: Final = 0.25
"""Seconds a budget operation may take before the server counts as unreachable."""

_RESERVE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local slot = math.max(now - tau, tonumber(redis.call('GET', KEYS[1]) or '0'))
slot = math.max(slot, tonumber(redis.call('GET', KEYS[2]) or '0'))
local wait = math.max(0, slot - now)
if max_wait >= 0 and wait > max_wait then
  return {0, slot, now}
end
local next = slot + interval
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.floor((next - now) / 1000) + 1000)
return {1, slot, now}
"""
"""GCRA: reserve ``slot = max(now - tau, next, gate_end)`` and move ``next`` one interval on.

ARGV: interval, tau (``(burst - 1) * interval``) and the longest acceptable wait (negative:
any), in microseconds. Returns ``{admitted, slot, now}``; a refused reservation changes
nothing.
"""

_COOL_DOWN: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local gate = math.max(now + tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[2]) or '0'))
local ttl = math.floor((gate - now) / 1000) + 1000
redis.call('SET', KEYS[2], string.format('%d', gate), 'PX', ttl)
local next = tonumber(redis.call('GET', KEYS[1]) or '0')
if next < gate then
  redis.call('SET', KEYS[1], string.format('%d', gate), 'PX', ttl)
end
return {gate, now}
"""
"""Close the gate for ARGV[1] microseconds (never shortening it) and move ``next`` past it,
so that requests resume one interval apart after the gate, not as a burst."""

_GATE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return {tonumber(redis.call('GET', KEYS[2]) or '0'), now}
"""

_REOPEN: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local gate = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('DEL', KEYS[2])
local next = tonumber(redis.call('GET', KEYS[1]) or '0')
if next > now and next == gate then
  redis.call('SET', KEYS[1], string.format('%d', now), 'PX', 1000)
end
return {gate, now}
"""

_MICRO: Final = 1_000_000


class RedisUnavailableError(InventError):
    """The budget's server did not answer in time, or not at all (the governor falls back)."""


@attrs.frozen(kw_only=True)
class Reservation:
    """The answer to :meth:`RedisBudget.reserve`, in seconds of the server's clock.

    Attributes:
        admitted: False when the wait would have been longer than asked for (nothing was
            reserved then).
        slot: When the request may be sent.
        now: The server's time when it answered.
    """

    admitted: bool
    slot: float
    now: float

    @property
    def wait(self) -> float:
        """Seconds from the answer until the slot (0 when it may go at once)."""
        return max(0.0, self.slot - self.now)


@attrs.frozen(kw_only=True)
class Gate:
    """The shared cool-down gate, in seconds of the server's clock.

    Attributes:
        end: When it opens (in the past, or 0, when it is open).
        now: The server's time when it answered.
    """

    end: float
    now: float

    @property
    def remaining(self) -> float:
        """Seconds until it opens (0 when it is open)."""
        return max(0.0, self.end - self.now)


class RedisBudget:
    """One named budget on a Redis-protocol server: GCRA pacing and a shared cool-down gate.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS); the password, if any, is
            never shown in a repr or an error.
        name: The budget's name: every process using the same server and name shares it.
        per_minute: The budget's rate.
        burst: Requests that may go at once after an idle time.
        timeout: Seconds an operation may take before :class:`RedisUnavailableError`.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        per_minute: float,
        burst: int = 1,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
    ) -> None:
        if not (isinstance(per_minute, int | float) and math.isfinite(per_minute)) or not (
            per_minute > 0
        ):
            raise ValueError(f"per_minute must be a positive number, got {per_minute!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
        if not name or any(char in name for char in "{}\r\n "):
            raise ValueError(f"name must be non-empty, without braces or spaces, got {name!r}")
        import redis.asyncio  # the optional extra: only a Redis budget needs it

        self.name = name
        self._interval = round(60 * _MICRO / per_minute)
        self._tau = (burst - 1) * self._interval
        self._keys = (f"invent:{name}:next", f"invent:{name}:gate")
        self._client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._scripts = {
            "reserve": self._client.register_script(_RESERVE),
            "cool_down": self._client.register_script(_COOL_DOWN),
            "gate": self._client.register_script(_GATE),
            "reopen": self._client.register_script(_REOPEN),
        }

    def __repr__(self) -> str:
        return f"<RedisBudget {self.name!r} interval={self._interval / _MICRO:g}s>"

    async def _run(self, script: str, *args: int) -> list[int]:
        import redis.exceptions

        try:
            result = await self._scripts[script](keys=self._keys, args=args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            error = RedisUnavailableError(
                f"the rate budget's server did not answer: {type(exc).__name__}"
            )
        else:
            return [int(value) for value in result]
        raise error  # outside the except block: redis-py's error stays unreachable

    async def reserve(self, max_wait: float | None = None) -> Reservation:
        """Reserve the next send slot of the budget (unless it is more than ``max_wait`` away).

        Raises:
            RedisUnavailableError: the server did not answer within the timeout.
        """
        limit = -1 if max_wait is None else max(0, round(max_wait * _MICRO))
        admitted, slot, now = await self._run("reserve", self._interval, self._tau, limit)
        return Reservation(admitted=bool(admitted), slot=slot / _MICRO, now=now / _MICRO)

    async def cool_down(self, seconds: float) -> Gate:
        """Close the shared gate for ``seconds`` from now (a longer pause already set stays)."""
        end, now = await self._run("cool_down", max(0, round(seconds * _MICRO)))
        return Gate(end=end / _MICRO, now=now / _MICRO)

    async def gate(self) -> Gate:
        """The shared gate as it is now."""
        end, now = await self._run("gate")
        return Gate(end=end / _MICRO, now=now / _MICRO)

    async def reopen(self) -> Gate:
        """Open the shared gate now; return it as it was (``end``: when it would have opened)."""
        end, now = await self._run("reopen")
        return Gate(end=end / _MICRO, now=now / _MICRO)

    async def aclose(self) -> None:
        """Close the connections to the server."""
        await self._client.aclose()
