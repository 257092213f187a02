"""The 429 cool-down gate: after a 429 nobody of the process goes until it opens.

A 429 closes the gate until ``now + Retry-After`` (without the header:
``cooldown * 2**(strikes - 1)``, capped at ``max_cooldown``, where ``strikes`` counts the
fresh 429s since the last fresh success; a ``Retry-After`` above ``max_retry_after`` closes
it for ``max_retry_after`` only, and then a probe goes first, see ``_probe``). A later 429
extends the gate, never shortens it. :meth:`CooldownGate.reopen` opens it at once and wakes
the requests sleeping for it, on every event loop.

A response is evidence about the moment its request was sent: the gate counts the fresh 429
signals (``generation``, which every ticket remembers), and a 429 for a request admitted
before the latest one is stale (it still extends the gate to its ``Retry-After``, but does
not escalate the pause).

A part of a governor (see ``_admission``): its methods run under the governor's lock. What
the governor does to its pacing when the gate closes (the queue laid out again behind it) is
the governor's. A request that is not paced waits at the gate itself: the gate is that
request's place in the governor's wait loop (:class:`~invent_async._governor.Place`).
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

import attrs

from ._governor import Place, Ticket
from ._limits import DEFAULT_MAX_RETRY_AFTER, RateLimit

__all__ = ["NEVER", "CooldownGate", "CooldownRule"]

NEVER: Final = -math.inf
"""A time before any other (a gate that never closed, a slot never booked)."""


@attrs.frozen(kw_only=True)
class CooldownRule:
    """How long a 429 closes the gate (the three ``RateLimit`` settings of that rule)."""

    cooldown: float = 1.0
    max_cooldown: float = 60.0
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER

    @classmethod
    def of(cls, limit: RateLimit) -> CooldownRule:
        """The rule ``limit`` asks for."""
        return cls(
            cooldown=limit.cooldown,
            max_cooldown=limit.max_cooldown,
            max_retry_after=limit.max_retry_after,
        )


class CooldownGate:
    """The gate's state.

    Attributes:
        end: When the gate opens (in the past, or :data:`NEVER`, while it is open).
        strikes: Fresh 429s since the last fresh success.
        generation: Fresh 429 signals so far (see :attr:`Ticket.generation`).
    """

    __slots__ = ("_rule", "_wakes", "end", "generation", "strikes")

    def __init__(self, rule: CooldownRule) -> None:
        self._rule = rule
        self.end = NEVER
        self.strikes = 0
        self.generation = 0
        # reopen() wakes the gate's sleepers: one future per event loop they sleep on
        self._wakes: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}

    def close(
        self, now: float, retry_after: float | None, ticket: Ticket | None
    ) -> tuple[bool, float, bool]:
        """A 429 came for ``ticket`` (None: unknown) with ``retry_after``: count it.

        Returns:
            Whether it is fresh; the pause it asks for (see the module docstring); whether
            its ``Retry-After`` is beyond ``max_retry_after`` (then a probe goes first).
            The caller extends the gate with :meth:`extend`.
        """
        fresh = ticket.generation == self.generation if ticket is not None else now >= self.end
        if fresh:
            self.generation += 1
            self.strikes += 1
        rule = self._rule
        if retry_after is None or not math.isfinite(retry_after):
            strikes = min(max(self.strikes - 1, 0), 60)
            return fresh, min(rule.max_cooldown, rule.cooldown * 2.0**strikes), False
        pause = min(max(0.0, float(retry_after)), rule.max_retry_after)
        return fresh, pause, retry_after > rule.max_retry_after

    def extend(self, until: float) -> bool:
        """Keep the gate closed until ``until`` at least; True when that moved its end."""
        if until > self.end:
            self.end = until
            return True
        return False

    def reopen(self, now: float) -> list[asyncio.Future[None]]:
        """Open the gate now and start the pause escalation over; the futures of its
        sleepers, to wake once the lock is released."""
        self.end = min(self.end, now)
        self.strikes = 0
        woken = list(self._wakes.values())
        self._wakes.clear()
        return woken

    def wake(self, now: float) -> asyncio.Future[None] | None:
        """While the gate is closed, the future of the running loop that :meth:`reopen`
        resolves (a sleeper waits for it or for its time, whichever comes first)."""
        if self.end <= now:
            return None
        loop = asyncio.get_running_loop()
        wakes = self._wakes
        wake = wakes.get(loop)
        if wake is None or wake.done():
            for gone in [other for other in wakes if other.is_closed()]:
                del wakes[gone]
            wake = wakes[loop] = loop.create_future()
        return wake

    # The place of a request that is not paced: it goes when the gate is open.

    def go_at(self) -> float:
        """When a request waiting at the gate may go: when it opens."""
        return self.end

    def arrive(self, now: float, deadline_at: float | None) -> Place | None:
        """The gate is open: go."""
        return None

    def abandon(self) -> None:
        """Nothing is held at the gate."""
