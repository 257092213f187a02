"""Retry waits: exponential backoff with jitter on the computed part only, Retry-After as a floor,
and the call's deadline, tested by driving the wait generator the way backoff does:
``send(None)`` to prime it, then ``send(exc)`` after each failed attempt."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from invent_async import APIConnectionError, APITimeoutError, RateLimitError
from invent_async._protocol import RawResponse, Request, error_from_response
from invent_async._retry import RetryPolicy, retry_waits

Waits = Generator[float, BaseException | None, None]

GET = Request(method="GET", path="/orgs/c/contacts")
CONNECTION_RESET = APIConnectionError("reset", method="GET", path="/p", request_sent=True)
TIMEOUT = APITimeoutError("timed out", method="GET", path="/p", request_sent=True)


def highest(low: float, high: float) -> float:
    """Jitter that always picks the top of its range."""
    return high


def lowest(low: float, high: float) -> float:
    """Jitter that always picks 0."""
    return low


def fixed_clock(now: float) -> Callable[[], float]:
    return lambda: now


NOW = fixed_clock(1000.0)


def start(
    policy: RetryPolicy | None = None,
    deadline_at: float | None = None,
    *,
    clock: Callable[[], float] = NOW,
    rand: Callable[[float, float], float] = highest,
) -> Waits:
    """A wait generator primed exactly as backoff primes it."""
    waits = retry_waits(policy or RetryPolicy(), deadline_at, clock=clock, rand=rand)
    waits.send(None)
    return waits


def failure(status: int, **headers: str) -> Any:
    return error_from_response(GET, RawResponse(status=status, headers=headers))


def rate_limited(retry_after: str) -> RateLimitError:
    exc = failure(429, **{"Retry-After": retry_after})
    assert isinstance(exc, RateLimitError)
    return exc


# --------------------------------------------------------------------------- backoff


def test_waits_double_from_half_a_second_up_to_the_cap() -> None:
    waits = start(RetryPolicy(max_retries=6))

    assert [waits.send(CONNECTION_RESET) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_waits_follow_the_policy_delays() -> None:
    waits = start(RetryPolicy(initial_delay=0.1, max_delay=0.3))

    assert [waits.send(TIMEOUT) for _ in range(4)] == [0.1, 0.2, 0.3, 0.3]


def test_jitter_draws_from_zero_to_the_computed_wait() -> None:
    ranges: list[tuple[float, float]] = []

    def recording(low: float, high: float) -> float:
        ranges.append((low, high))
        return (low + high) / 2

    waits = start(rand=recording)
    observed = [waits.send(CONNECTION_RESET) for _ in range(3)]

    assert ranges == [(0.0, 0.5), (0.0, 1.0), (0.0, 2.0)]
    assert observed == [0.25, 0.5, 1.0]


def test_full_jitter_can_retry_immediately() -> None:
    waits = start(rand=lowest)

    assert waits.send(failure(503)) == 0.0


# --------------------------------------------------------------------------- Retry-After


def test_retry_after_is_never_shortened_by_jitter() -> None:
    waits = start(rand=lowest)

    assert waits.send(rate_limited("5")) == 5.0


def test_retry_after_is_a_floor_not_a_replacement_for_a_longer_backoff() -> None:
    waits = start(RetryPolicy(initial_delay=4.0, max_delay=30.0), rand=highest)

    assert waits.send(rate_limited("1")) == 4.0


def test_retry_after_applies_at_any_attempt() -> None:
    waits = start(rand=highest)
    for _ in range(3):
        waits.send(CONNECTION_RESET)  # 0.5, 1.0, 2.0

    assert waits.send(rate_limited("5")) == 5.0  # computed 4.0 < 5
    assert waits.send(rate_limited("5")) == 8.0  # computed 8.0 > 5


def test_retry_after_longer_than_the_cap_is_honoured() -> None:
    waits = start(RetryPolicy(max_delay=8.0), rand=highest)

    assert waits.send(rate_limited("30")) == 30.0


def test_retry_after_on_a_503_is_honoured() -> None:
    waits = start(rand=lowest)

    assert waits.send(failure(503, **{"Retry-After": "5"})) == 5.0


def test_retry_after_as_http_date_in_the_past_does_not_add_a_wait() -> None:
    waits = start(rand=lowest)

    assert waits.send(rate_limited("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0


def test_rate_limit_without_retry_after_uses_the_computed_wait() -> None:
    waits = start(rand=highest)

    assert waits.send(failure(429)) == 0.5


# --------------------------------------------------------------------------- deadline


def test_wait_that_would_pass_the_deadline_gives_up_at_once() -> None:
    waits = start(deadline_at=1002.0, clock=fixed_clock(1000.0), rand=lowest)

    with pytest.raises(StopIteration):
        waits.send(rate_limited("5"))


def test_computed_wait_that_would_pass_the_deadline_gives_up_at_once() -> None:
    waits = start(deadline_at=1000.9, clock=fixed_clock(1000.0), rand=highest)
    assert waits.send(CONNECTION_RESET) == 0.5  # ends at 1000.5

    with pytest.raises(StopIteration):
        waits.send(CONNECTION_RESET)  # 1.0 would end at 1001.0


def test_wait_ending_exactly_at_the_deadline_is_allowed() -> None:
    waits = start(deadline_at=1005.0, clock=fixed_clock(1000.0), rand=lowest)

    assert waits.send(rate_limited("5")) == 5.0


def test_deadline_is_measured_from_the_current_clock() -> None:
    now = [1000.0]
    waits = start(deadline_at=1010.0, clock=lambda: now[0], rand=lowest)
    assert waits.send(rate_limited("5")) == 5.0

    now[0] = 1006.0

    with pytest.raises(StopIteration):
        waits.send(rate_limited("5"))


def test_without_a_deadline_waits_never_stop() -> None:
    waits = start(RetryPolicy(max_retries=0), deadline_at=None, rand=highest)

    assert [waits.send(rate_limited("3600")) for _ in range(50)] == [3600.0] * 50


@pytest.mark.parametrize(
    "response", [rate_limited("86400"), failure(503, **{"Retry-After": "1e9"})]
)
def test_a_retry_after_above_max_retry_after_gives_up_at_once(response: Exception) -> None:
    waits = retry_waits(RetryPolicy(), None, clock=NOW, rand=lowest, max_retry_after=300.0)
    waits.send(None)

    with pytest.raises(StopIteration):
        waits.send(response)


@pytest.mark.parametrize("retry_after", ["300", "-5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_retry_afters_up_to_max_retry_after_and_unreadable_ones_are_waited_as_before(
    retry_after: str,
) -> None:
    capped = retry_waits(RetryPolicy(), None, clock=NOW, rand=lowest, max_retry_after=300.0)
    uncapped = start(rand=lowest)
    capped.send(None)

    assert capped.send(rate_limited(retry_after)) == uncapped.send(rate_limited(retry_after))


# --------------------------------------------------------------------------- policy


@pytest.mark.parametrize("max_retries", [0, 1, 2, 10])
def test_retry_policy_accepts_non_negative_integers(max_retries: int) -> None:
    assert RetryPolicy(max_retries=max_retries).max_retries == max_retries


@pytest.mark.parametrize("max_retries", [-1, True, False, 2.0, "3", None])
def test_retry_policy_rejects_negative_bool_and_non_int_max_retries(max_retries: Any) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=max_retries)
