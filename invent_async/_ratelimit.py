"""The in-process governor: a rate budget that is this process's alone.

One :class:`RateGovernor` serves every request of a client and its views, and by default of
every client of the process that shares its budget (see ``_governor_registry``). It is an
:class:`~invent_async._admission.Admission` built from the user's ``RateLimit``: the process
paces its requests itself (``_pacing``: GCRA, the express lane for interactive calls,
adaptive mode), behind the 429 cool-down gate (``_cooldown``), the probe after a capped
``Retry-After`` (``_probe``) and the concurrency cap (``_cap``). Everything runs on asyncio
with an injectable ``clock`` and ``sleep``, so the tests drive it in virtual time; it is
thread-safe and bound to no event loop (see ``_admission``).

The budget shared by the processes of a fleet on Redis is ``_fleet``'s; both implement the
:class:`~invent_async._governor.Governor` protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ._admission import Admission
from ._cooldown import CooldownRule
from ._limits import FleetStats, RateLimit
from ._pacing import Adaptive, Pacing

__all__ = ["RateGovernor"]


def _pacing(limit: RateLimit) -> Pacing | None:
    """The pacing ``limit`` asks of the process (None when it is not paced)."""
    if not limit.per_minute:
        return None
    return Pacing(
        per_minute=limit.per_minute * (1 - limit.headroom),
        burst=limit.burst,
        interactive_share=limit.interactive_share,
        adaptive=(
            Adaptive(
                decrease=limit.decrease,
                min_fraction=limit.min_fraction,
                recovery=limit.recovery,
            )
            if limit.adaptive
            else None
        ),
    )


class RateGovernor(Admission):
    """Paces, gates and caps the requests of one client, or of every client of the process
    sharing a budget (see the module docstring). A
    :class:`~invent_async._governor.Governor`.

    Args:
        config: The limits; defaults to ``RateLimit()`` (500/minute, burst 5, no cap).
        clock: Monotonic clock in seconds. ``deadline_at`` values use this clock.
        sleep: Coroutine function sleeping for a number of seconds of that clock.
    """

    def __init__(
        self,
        config: RateLimit | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        cfg = RateLimit() if config is None else config
        if not isinstance(cfg, RateLimit):
            raise TypeError(f"config must be a RateLimit, got {type(cfg).__name__}")
        self._config = cfg
        super().__init__(
            pacing=_pacing(cfg),
            max_in_flight=cfg.max_in_flight,
            interactive_first=bool(cfg.interactive_share),
            cooldown=CooldownRule.of(cfg),
            clock=clock,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"<RateGovernor {self._config!r}>"

    @property
    def config(self) -> RateLimit:
        """The limits this governor was built with."""
        return self._config

    async def fleet_stats(self) -> FleetStats | None:
        """None: the budget is this process's alone."""
        return None

    async def aclose(self) -> None:
        """Nothing to close: the governor holds nothing bound to an event loop."""
