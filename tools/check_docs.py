"""Check the built documentation (``nox -s docs``): what a user reads names public paths only.

Every page but the contributors' (``contributing``, ``changelog``) must not show a private
module path (``invent_async._exceptions.APITimeoutError``) nor a default given as a constant's
name (``timeout=DEFAULT_TIMEOUT``) instead of its value. Usage: ``python tools/check_docs.py
docs/_build/html``.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

FOR_CONTRIBUTORS = frozenset({"contributing.html", "changelog.html"})
PRIVATE_PATH = re.compile(r"invent_async(\.\w+)*\._[a-z]\w*")
CONSTANT_DEFAULT = re.compile(r"\w+=DEFAULT_[A-Z_]+")
TAG = re.compile(r"<[^>]+>")


def problems(page: Path) -> list[str]:
    text = html.unescape(TAG.sub("", page.read_text(encoding="utf-8")))
    found = [f"{page.name}: private path {m[0]}" for m in PRIVATE_PATH.finditer(text)]
    found += [
        f"{page.name}: default shown as a name: {m[0]}" for m in CONSTANT_DEFAULT.finditer(text)
    ]
    return found


def main(args: list[str]) -> int:
    root = Path(args[0]) if args else Path("docs/_build/html")
    pages = sorted(p for p in root.glob("*.html") if p.name not in FOR_CONTRIBUTORS)
    if not pages:
        print(f"check_docs: no pages under {root}")
        return 2
    found = [line for page in pages for line in problems(page)]
    for line in sorted(set(found)):
        print(line)
    print(f"check_docs: {len(pages)} pages, {len(set(found))} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
