"""``python -m invent_async.cli``: the same as the ``invent`` script."""

from . import main

main()
