"""``invent``: the command line of invent_async (installed by the ``cli`` extra).

The ``cli`` extra adds click and rich and the ``invent`` script, whose entry
point is :func:`main`. The command tree itself lives in :mod:`invent_async.cli.commands`
(``cli``, a click group); it is imported lazily so that a missing extra gives a clear message
instead of an ImportError traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_EXTRA_MODULES = frozenset({"click", "rich"})


def main(args: Sequence[str] | None = None) -> None:
    """Run the ``invent`` command (``args`` defaults to ``sys.argv[1:]``); exits the process."""
    try:
        from .commands import cli
    except ModuleNotFoundError as exc:
        if exc.name not in _EXTRA_MODULES:
            raise
        sys.stderr.write(
            f"invent: the command line needs {exc.name}, part of the 'cli' extra: "
            "pip install 'click>=8.1' 'rich>=13.7' (or reinstall the package with [cli])\n"
        )
        raise SystemExit(2) from None
    cli.main(args=args, prog_name="invent")
