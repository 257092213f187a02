"""P6: JSON bytes to a typed contact, the SDK next to pydantic v2, interleaved in one process.

Each round times, back to back and in a rotating order, a batch of each case; the figure of a
round is the SDK's time per object over pydantic's ``model_validate_json`` of an equivalent
frozen model (``benchmarks._peers.PContact``). Cases: the seed contact (1 channel, 1
segment), a big one (10 and 10), a page of 100 seed contacts (per item; pydantic validates a
``tuple[PContact, ...]``); times are CPU time of this process. The SDK side is
``_protocol.parse_response``, what a call runs.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

from pydantic import TypeAdapter

from benchmarks._interleave import rounds
from benchmarks._peers import BIG_BYTES, PAGE_BYTES, SEED_BYTES, PContact
from invent_async import Contact
from invent_async._protocol import RawResponse, Request, parse_response

REQUEST = Request(method="GET", path="/orgs/c/contacts/ct_1")
PAGE = TypeAdapter(tuple[PContact, ...])


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    """CPU microseconds per call (``time.process_time``: a neighbour that takes the CPU away
    for a while does not count, as it would in wall time)."""
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def case(name: str, body: bytes, items: int, target: str, n_rounds: int) -> None:
    raw = RawResponse(status=200, body=body)
    cl: type = Contact if items == 1 else tuple[Contact, ...]
    sides: dict[str, Callable[[], object]] = {
        "pydantic": (lambda: PContact.model_validate_json(body))
        if items == 1
        else (lambda: PAGE.validate_json(body)),
        "sdk": lambda: parse_response(REQUEST, raw, cl),
    }
    assert sides["sdk"]() is not None
    assert sides["pydantic"]() is not None
    n = max(20, 4000 // items // (1 if len(body) < 2000 else 5))
    times: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(n_rounds):
        gc.collect()
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for k in order:
            times[k].append(_per_call_us(sides[k], n) / items)
    ratios = [s / p for s, p in zip(times["sdk"], times["pydantic"], strict=True)]
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{name}: sdk {med['sdk']:.2f} us/item, pydantic {med['pydantic']:.2f} us/item "
        f"({n_rounds} rounds x {n})",
        flush=True,
    )
    print(
        f"RESULT p6_{name}_sdk_vs_pydantic ratio={statistics.median(ratios):.3f} "
        f"[{min(ratios):.3f}-{max(ratios):.3f}] "
        f"(sdk time / pydantic time per item; target {target})",
        flush=True,
    )


def main() -> None:
    n_rounds = rounds(41, 9)
    case("seed", SEED_BYTES, 1, "<= 1.25", n_rounds)
    case("big", BIG_BYTES, 1, "<= 1.25", n_rounds)
    case("page100", PAGE_BYTES, 100, "<= 1.0", n_rounds)


if __name__ == "__main__":
    main()
