"""Check the built sdist and wheel (``nox -s build``): what each must and must not carry.

Prints the wheel's file list. Usage: ``python tools/check_dist.py DIST...``.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile

WHEEL_MUST = ("invent_async/py.typed", "invent_async/__init__.py", "licenses/LICENSE")
WHEEL_MUST_NOT = ("invent_async/_codegen/",)
SDIST_MUST = (
    "LICENSE",
    "README.md",
    "CHANGELOG.md",
    "pyproject.toml",
    "docs/conf.py",
    "conftest.py",
)


def check_wheel(path: str) -> list[str]:
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = wheel.read(metadata).decode()
    for info in names:
        print(f"  {info}")
    problems = [f"wheel lacks {m}" for m in WHEEL_MUST if not any(n.endswith(m) for n in names)]
    problems += [f"wheel carries {n}" for n in names for bad in WHEEL_MUST_NOT if bad in n]
    problems += [
        f"METADATA lacks {field}"
        for field in ("License-Expression: MIT", "License-File")
        if field not in meta
    ]
    # no release is published: an address would point at nothing (README, "Install")
    problems += [f"METADATA names {line!r}" for line in meta.splitlines() if "Project-URL" in line]
    return problems


def check_sdist(path: str) -> list[str]:
    with tarfile.open(path) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    return [f"sdist lacks {m}" for m in SDIST_MUST if m not in names]


def main(paths: list[str]) -> int:
    problems = []
    for path in paths:
        print(path)
        problems += check_wheel(path) if path.endswith(".whl") else check_sdist(path)
    for problem in problems:
        print("error:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
