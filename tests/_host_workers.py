"""Worker processes of the host-budget tests (``test_host_budget``), started with
``multiprocessing.get_context("spawn")``; each puts one result dict on its queue (an
``"error"`` when it failed)."""

from __future__ import annotations

import traceback
from typing import Any


def reserve_worker(
    directory: str, name: str, per_minute: float, count: int, start: Any, out: Any
) -> None:
    """Reserve ``count`` slots of budget ``name`` in the store of ``directory`` once every
    worker is ready (``start``: a Barrier); put the slots and the store's rebuilds on ``out``."""
    try:
        import logging
        import time
        import warnings
        from pathlib import Path

        from invent_async._host_budget import HostBudget, HostBudgetBusyError

        warnings.simplefilter("error")
        said: list[str] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                said.append(record.getMessage())

        logging.getLogger("invent_async").addHandler(Keep())
        budget = HostBudget(Path(directory), name=name, per_minute=per_minute)

        def reserve() -> float:
            # as HostGovernor does: a lock held past BUSY_TIMEOUT (a busy machine put its
            # holder to sleep) is waited for, not an error of the store
            for _ in range(200):
                try:
                    return budget.reserve(bulk=True).slot
                except HostBudgetBusyError:
                    time.sleep(0.01)
            raise TimeoutError("the store stayed busy for 20+ s")

        start.wait(60)
        slots = [reserve() for _ in range(count)]
        budget.close()
        result: dict[str, Any] = {"slots": slots, "rebuilt": budget.rebuilt, "said": said}
    except BaseException as exc:
        result = {"error": f"{exc!r}\n{traceback.format_exc()}"}
    out.put(result)


def hold_worker(path: str, name: str, ready: Any) -> None:
    """Open the store's file with sqlite3, take its write lock, change the budget's row, say
    so on ``ready`` (an Event), then wait to be killed in the middle of the transaction."""
    import sqlite3
    import time

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "UPDATE budget SET next = next + 3600000000, gate = 4102444800000000 WHERE name = ?",
        (name,),
    )
    ready.set()
    time.sleep(120)  # killed long before
