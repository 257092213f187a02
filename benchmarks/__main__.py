"""Run every ``benchmarks/bench_*.py`` (or those named on the command line), one process each.

Each benchmark prints its own figures as ratios against a baseline measured in the same run
(``benchmarks._interleave``). ``--quick`` (``nox -s bench -- --quick``) runs every benchmark
with fewer, shorter rounds, for a developer's inner loop.

``python -m benchmarks fleet`` runs the benchmarks whose module name contains ``fleet``. A word
that names no benchmark is passed on to each one selected, which reads it as the part(s) to
run: ``python -m benchmarks fleet lanes redis_cost`` runs two parts of ``bench_fleet``.

The host budgets of the clients (no Redis: shared by the processes of the machine) live in a
temporary ``INVENT_BUDGET_DIR`` of the run, removed at its end, unless one is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._interleave import QUICK_ENV


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    words = [a for a in argv if not a.startswith("-")]
    selectors = [w for w in words if any(w in n for n in names)]
    extra = [w for w in words if w not in selectors]
    if selectors:
        names = [n for n in names if any(w in n for w in selectors)]
    elif extra:
        print(f"no benchmark matches {' '.join(extra)!r}; there are: {', '.join(names)}")
        return 2
    env = dict(os.environ)
    budgets = tempfile.mkdtemp(prefix="bench-budgets-")
    env.setdefault("INVENT_BUDGET_DIR", budgets)  # host budgets of this run, not the home's
    if "--quick" in argv:
        env[QUICK_ENV] = "1"
    failed = 0
    for name in names:
        print(f"\n=== {name} {' '.join(extra)} ===".replace("  ", " "), flush=True)
        done = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}", *extra], check=False, env=env
        )
        failed |= done.returncode != 0
    shutil.rmtree(budgets, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
