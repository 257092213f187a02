"""Run every ``benchmarks/bench_*.py`` (or those named on the command line), one process each.

Each benchmark prints its own figures as ratios against a baseline measured in the same run
(``benchmarks._interleave``). ``--quick`` (``nox -s bench -- --quick``) runs every benchmark
with fewer, shorter rounds, for a developer's inner loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks._interleave import QUICK_ENV


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    wanted = [a for a in argv if not a.startswith("-")]
    if wanted:
        names = [n for n in names if any(w in n for w in wanted)]
    env = dict(os.environ)
    if "--quick" in argv:
        env[QUICK_ENV] = "1"
    failed = 0
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False, env=env)
        failed |= done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
