"""Benchmarks for invent_async; run them all with ``nox -s bench`` (or ``python -m benchmarks``)."""
