"""What ``import invent_async`` loads: an async-only program pays for neither the sync client
(and anyio) nor backoff, which load on first use."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_importing_the_package_loads_neither_the_sync_client_nor_anyio_nor_backoff() -> None:
    loaded = _loaded_after("import invent_async")

    assert {"anyio", "backoff", "invent_async._sync"} & loaded == set()


def test_the_sync_client_loads_on_first_use() -> None:
    loaded = _loaded_after("from invent_async import InventClient")

    assert {"anyio", "invent_async._sync"} <= loaded


def test_every_public_name_is_importable_with_a_star_import() -> None:
    loaded = _loaded_after(
        "from invent_async import *\nassert InventClient and Pager and PortalThreadError"
    )

    assert "invent_async._sync" in loaded
