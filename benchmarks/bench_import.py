"""What importing the SDK costs next to importing aiohttp: fresh interpreters, interleaved.

Each round starts one fresh ``python -c CODE`` process per side, the order rotating each round,
and times it from ``subprocess.run`` to its exit. The sides: ``pass`` (the interpreter's own
start, shown for scale), ``import aiohttp`` (the baseline: the SDK cannot start faster than
its transport), ``import invent_async`` and ``from invent_async import AsyncInventClient``.
The figure of a round is ``side / aiohttp`` of that round's two processes (a slow phase of the
shared machine hits both); printed: its median and [min-max] over the rounds, the extra
milliseconds (``side - aiohttp``), and the same ratio in CPU time (user + system time of the
child, from ``getrusage(RUSAGE_CHILDREN)``: a neighbour that takes the CPU away does not
count), and ``best``: the fastest run of the side over the fastest of aiohttp (the runs least
disturbed by a neighbour, as ``timeit`` reads its repeats; the figure to trust when a busy
machine spreads the per-round ratios wide). The target of issue #23 is a wall ratio of at
most 1.10.

Why the wall time of the whole process, not ``-X importtime``: it is what a user waits for (a
CLI command, a cold-started worker), the interpreter's start being part of both sides alike;
``-X importtime`` leaves out the start and the work between imports, and its own bookkeeping
per module weighs on a package of many small modules more than on one of few large ones.
``python -X importtime -c "import invent_async"`` is the tool to find *what* loads.

The children import the package from this checkout (``PYTHONPATH``, checked before the
rounds), with bytecode written and read as an installed package has it: a warm-up run per
side compiles it (``PYTHONDONTWRITEBYTECODE`` is dropped from the children's environment).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from benchmarks._interleave import Spread, rounds

ROOT: Final = Path(__file__).resolve().parent.parent
TARGET: Final = 1.10

FLOOR: Final = ("python -c pass", "pass")
BASELINE: Final = ("import aiohttp", "import aiohttp")
SIDES: Final = (
    ("import invent_async", "import invent_async"),
    ("from invent_async import AsyncInventClient", "from invent_async import AsyncInventClient"),
)


def child_env() -> dict[str, str]:
    """This environment, the checkout first on ``PYTHONPATH``, bytecode cached."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run(code: str, env: dict[str, str]) -> tuple[float, float]:
    """One fresh interpreter running ``code``: (wall ms, CPU ms of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1e3, cpu * 1e3


def main() -> None:
    env = child_env()
    where = subprocess.run(
        [sys.executable, "-c", "import invent_async; print(invent_async.__file__)"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(ROOT), f"the children import {where}, not {ROOT}"
    sides = [FLOOR, BASELINE, *SIDES]
    for _, code in sides:  # bytecode written, files in the page cache
        run(code, env)
    n_rounds = rounds(21, 7)
    wall: dict[str, list[float]] = {name: [] for name, _ in sides}
    cpu: dict[str, list[float]] = {name: [] for name, _ in sides}
    for r in range(n_rounds):
        order = sides[r % len(sides) :] + sides[: r % len(sides)]
        for name, code in order:
            w, c = run(code, env)
            wall[name].append(w)
            cpu[name].append(c)
    print(
        f"import: {n_rounds} rounds, one fresh interpreter per side and round, interleaved "
        f"(package from {Path(where).parent})",
        flush=True,
    )
    base = BASELINE[0]
    for name, _ in sides:
        line = (
            f"  {name:44} {Spread(tuple(wall[name])).show('.0f')} ms wall  "
            f"{Spread(tuple(cpu[name])).show('.0f')} ms CPU"
        )
        if name not in (FLOOR[0], base):
            ratio, extra, cpu_ratio = figures(wall[name], wall[base], cpu[name], cpu[base])
            line += f"  ratio {ratio.show()}  extra {extra.show('+.0f')} ms"
        print(line, flush=True)
    for name, _ in SIDES:
        ratio, extra, cpu_ratio = figures(wall[name], wall[base], cpu[name], cpu[base])
        print(
            f"RESULT {name!r} ratio={ratio.show()} extra_ms={extra.show('+.0f')} "
            f"cpu_ratio={cpu_ratio.show()} best={min(wall[name]) / min(wall[base]):.3f} "
            f"(vs {base!r}, wall per round; "
            f"target <= {TARGET:.2f}: {'met' if ratio.median <= TARGET else 'NOT met'})",
            flush=True,
        )


def figures(
    wall: list[float], base_wall: list[float], cpu: list[float], base_cpu: list[float]
) -> tuple[Spread, Spread, Spread]:
    """Per round: wall ratio, extra wall ms and CPU ratio of a side over the baseline."""
    return (
        Spread(tuple(a / b for a, b in zip(wall, base_wall, strict=True))),
        Spread(tuple(a - b for a, b in zip(wall, base_wall, strict=True))),
        Spread(tuple(a / b for a, b in zip(cpu, base_cpu, strict=True))),
    )


if __name__ == "__main__":
    main()
