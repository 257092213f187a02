"""Retry policy and its wiring into ``backoff``.

Waits are exponential with *full jitter on the computed part only*: a server's ``Retry-After``
is a floor that jitter never shortens (``wait = max(retry_after, uniform(0, computed))``). The
overall deadline is enforced here, not with backoff's ``max_time`` (which would cut the last
sleep short and retry early): when the next wait would end past the deadline, the wait
generator stops, and backoff re-raises the last error at once (a :class:`RateLimitError` when
the server asked for the long wait). So does a ``Retry-After`` above ``max_retry_after``,
whatever the deadline: a server asking for an hour or a day is not waited for. Which errors
are retryable is decided in ``_protocol``.

Only the API that ``python-backoff`` (our dependency) and the original ``backoff`` 2.x both
provide is used (``on_exception``, wait generators that are sent each exception): both
distributions install the import package ``backoff``, and either may own it
(``nox -s retry_backoff_221`` runs the retry tests with the original installed over the fork).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final, TypeVar

import attrs

from ._exceptions import InventError, RateLimitError
from ._protocol import Request, is_retryable, retry_after_of

__all__ = ["RetryPolicy", "logger", "retry_after", "retry_waits"]

T = TypeVar("T")

logger: Final = logging.getLogger("invent_async")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How failed attempts are repeated.

    Attributes:
        max_retries: Retries after the first attempt (0 disables retrying).
        initial_delay: Upper bound of the first computed wait, in seconds.
        max_delay: Cap of a computed wait (a longer ``Retry-After`` is still honoured).
    """

    max_retries: int = attrs.field(default=2)
    initial_delay: float = 0.5
    max_delay: float = 8.0

    @max_retries.validator
    def _check(self, _: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {value!r}")


def retry_waits(
    policy: RetryPolicy,
    deadline_at: float | None,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[float, float], float] = random.uniform,
    governed: bool = False,
    max_retry_after: float | None = None,
) -> Generator[float, BaseException | None, None]:
    """Wait generator for ``backoff``: send it the failed attempt's exception.

    Yields ``max(retry_after, uniform(0, min(max_delay, initial_delay * 2**n)))``; returns (so
    that backoff gives up and re-raises) when that wait would end after ``deadline_at``, or
    when the server's ``Retry-After`` is longer than ``max_retry_after`` (None: no cap).
    With ``governed=True`` a 429 is retried without sleeping here: the rate governor's
    cool-down gate holds the retry (with every other request) until the server's
    ``Retry-After`` has passed, then releases them spread out.
    """
    exc = yield 0.0  # primed by backoff with send(None)
    attempt = 0
    while True:
        computed = rand(0.0, min(policy.max_delay, policy.initial_delay * (2**attempt)))
        hint = retry_after_of(exc) if exc is not None else None
        if hint is not None and max_retry_after is not None and hint > max_retry_after:
            logger.warning(
                "giving up: the server asked to wait %.0fs, more than max_retry_after (%.0fs)",
                hint,
                max_retry_after,
            )
            return
        wait = computed if hint is None else max(hint, computed)
        if deadline_at is not None and clock() + wait > deadline_at:
            logger.info("giving up: waiting %.2fs would pass the call's deadline", wait)
            return
        attempt += 1
        if governed and isinstance(exc, RateLimitError):
            wait = 0.0
        exc = yield wait


def _log_backoff(details: Any) -> None:
    exc = details.get("exception")
    request: Request | None = details.get("request")
    wait = details["wait"]
    when = (
        "after the rate governor's cool-down"
        if wait == 0 and isinstance(exc, RateLimitError)
        else f"in {wait:.2f}s"
    )
    logger.info(
        "retrying %s %s %s (attempt %d failed: %s)",
        request.method if request else "?",
        request.path if request else "?",
        when,
        details["tries"],
        f"{type(exc).__name__}: {exc}",
    )


async def retry_after(
    failure: InventError,
    attempt: Callable[[], Awaitable[T]],
    request: Request,
    policy: RetryPolicy,
    deadline_at: float | None,
    *,
    governed: bool = False,
    max_retry_after: float | None = None,
) -> T:
    """Repeat ``attempt`` after its first ``failure``, until it succeeds or must give up.

    The caller made the first attempt itself (the common, successful case pays nothing for
    retries) and calls this only for a retryable failure; backoff takes over from that
    failure, so the first wait already knows its ``Retry-After``. Raises the last error when
    the retries or the deadline run out, at once for an error that is not retryable or that
    asks to wait longer than ``max_retry_after``.
    """
    replay: list[InventError] = [failure]

    def log(details: Any) -> None:
        _log_backoff({**details, "request": request})

    async def once() -> T:
        if replay:  # replay the first attempt's outcome into backoff
            raise replay.pop()
        return await attempt()

    # on_exception and the send protocol of wait generators are common to python-backoff and
    # the original backoff 2.x: either may own the import name ``backoff``. Imported here, at
    # the first retry: a client whose calls succeed never loads it.
    import backoff

    retrying = backoff.on_exception(
        retry_waits,
        InventError,
        max_tries=policy.max_retries + 1,
        max_time=None,
        jitter=None,
        giveup=lambda exc: not is_retryable(exc, request.idempotent),
        on_backoff=log,
        raise_on_giveup=True,
        logger=None,
        policy=policy,
        deadline_at=deadline_at,
        governed=governed,
        max_retry_after=max_retry_after,
    )(once)
    return await retrying()
