"""P1: ``contacts.add_segment`` through the SDK next to its peers, at concurrency 1, 64, 256.

The method of ``benchmarks._interleave``: every side open at once in one event loop,
interleaved in chunks of calls over many rounds, against the loopback responder of
``benchmarks._server`` (its own process, pinned to its own CPU). The sides:

- raw aiohttp + orjson (dicts): the baseline of every ratio printed;
- raw aiohttp + pydantic v2 ``model_validate_json`` into an equivalent frozen model;
- the SDK (typed ``Contact``, status check, retry layer; rate governor off);
- httpx's ``AsyncClient`` + orjson (at concurrency 1 and 64 only, fewer rounds: it is an
  order of magnitude slower under concurrency, see ``perf-baseline.md``).

Printed for each: calls/s and client CPU µs per call, the ratio to raw dicts and the extra
client CPU per call, median [min-max] over rounds; ``RESULT`` lines with their targets.
"""

from __future__ import annotations

import asyncio
import sys

from benchmarks import _peers
from benchmarks._interleave import Figures, Side, Spread, compare_calls, result, rounds
from benchmarks._server import pin_to_cpus, running

CHUNK = 400


def _ratio(a: Figures, b: Figures) -> Figures:
    """``a`` against ``b`` instead of the baseline (per round, same rounds)."""
    return Figures(
        name=a.name,
        rate=a.rate,
        cpu_us=a.cpu_us,
        ratio=Spread(tuple(x / y for x, y in zip(a.rate.values, b.rate.values, strict=True))),
        extra_cpu_us=Spread(
            tuple(x - y for x, y in zip(a.cpu_us.values, b.cpu_us.values, strict=True))
        ),
        cpu_ratio=Spread(
            tuple(y / x for x, y in zip(a.cpu_us.values, b.cpu_us.values, strict=True))
        ),
    )


async def core(url: str, concurrency: int, n_rounds: int) -> None:
    sides = [
        Side("raw aiohttp+orjson dicts", _peers.raw_dicts(url)),
        Side("raw aiohttp+pydantic", _peers.raw_pydantic(url)),
        Side("sdk", _peers.sdk(url)),
    ]
    _, pyd, sdk = await compare_calls(
        sides,
        concurrency=concurrency,
        chunk=CHUNK,
        n_rounds=n_rounds,
        label=f"add_segment @ concurrency {concurrency}",
    )
    result(f"p1_c{concurrency}_sdk_vs_raw_dicts", sdk, "raw aiohttp+orjson dicts",
           ">= 0.88, extra CPU <= 20 us")  # fmt: skip
    result(f"p1_c{concurrency}_sdk_vs_raw_pydantic", _ratio(sdk, pyd), "raw aiohttp+pydantic",
           ">= 1.0")  # fmt: skip
    result(f"p1_c{concurrency}_pydantic_vs_raw_dicts", pyd, "raw aiohttp+orjson dicts",
           "none (peer)")  # fmt: skip


async def with_httpx(url: str, concurrency: int, n_rounds: int) -> None:
    sides = [
        Side("raw aiohttp+orjson dicts", _peers.raw_dicts(url)),
        Side("sdk", _peers.sdk(url)),
        Side("httpx+orjson dicts", _peers.httpx_dicts(url)),
    ]
    _, sdk, hx = await compare_calls(
        sides,
        concurrency=concurrency,
        chunk=CHUNK if concurrency == 1 else 200,
        n_rounds=n_rounds,
        label=f"add_segment @ concurrency {concurrency}, with httpx",
    )
    result(f"p1_c{concurrency}_httpx_vs_raw_dicts", hx, "raw aiohttp+orjson dicts",
           "none (peer)")  # fmt: skip
    result(f"p1_c{concurrency}_sdk_vs_httpx", _ratio(sdk, hx), "httpx+orjson dicts",
           "none (peer)")  # fmt: skip


def main(argv: list[str]) -> None:
    with running("benchmarks._server", cpus=pin_to_cpus()) as url:
        for concurrency, full in ((64, 24), (1, 12), (256, 12)):
            asyncio.run(core(url, concurrency, rounds(full, 6 if concurrency == 64 else 3)))
        for concurrency in (1, 64):
            asyncio.run(with_httpx(url, concurrency, rounds(4, 2)))
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
