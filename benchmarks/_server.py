"""A minimal, fast loopback HTTP/1.1 responder for throughput benchmarks.

It answers every request with one pre-encoded JSON contact (401 without the bearer token), so
that the client under test, not the server, is the bottleneck. It runs in its own process
(``python -m benchmarks._server``), binds 127.0.0.1 only, prints ``URL <url>`` once listening
and exits by itself after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Final

API_KEY: Final = "bench-key"

CONTACT: Final = {
    "id": "ct_1",
    "name": "Jane Doe",
    "blocked": False,
    "unsubscribed": False,
    "is_admin": False,
    "channels": [
        {
            "id": "ch_1",
            "type": "custom",
            "user_id": "+15555550123",
            "avatar": None,
            "name": "Jane Doe",
            "username": "janedoe",
            "email": "jane@example.com",
            "phone": "+15555550123",
            "country": "US",
            "agent": None,
            "ip": None,
            "language": "en",
            "platform_data": {},
            "created_at": "2023-11-07T05:31:56Z",
            "updated_at": "2023-11-07T05:31:56Z",
            "link": None,
        }
    ],
    "segments": [
        {
            "id": "sg_1",
            "name": "VIP customers",
            "color": "red",
            "contacts_count": 42,
            "created_at": "2023-11-07T05:31:56Z",
            "updated_at": "2023-11-07T05:31:56Z",
        }
    ],
    "created_at": "2023-11-07T05:31:56Z",
    "updated_at": "2023-11-07T05:31:56Z",
    "blocked_at": None,
    "unsubscribed_at": None,
    "unsubscribe_reason": None,
    "unsubscribe_feedback": None,
}


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


OK: Final = _response("200 OK", json.dumps(CONTACT).encode())
UNAUTHORIZED: Final = _response("401 Unauthorized", b'{"message":"Unauthorized"}')
AUTH_LINE: Final = f"authorization: bearer {API_KEY}".encode()


class _Responder(asyncio.Protocol):
    def __init__(self) -> None:
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        out = []
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self._buf[:end]
            length = 0
            lower = head.lower()
            pos = lower.find(b"content-length:")
            if pos >= 0:
                nl = lower.find(b"\r\n", pos)
                length = int(lower[pos + 15 : nl if nl >= 0 else None])
            total = end + 4 + length
            if len(self._buf) < total:
                break
            self._buf = self._buf[total:]
            out.append(OK if AUTH_LINE in lower else UNAUTHORIZED)
        if out and self._transport is not None:
            self._transport.write(b"".join(out))


async def _serve(port: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Responder, "127.0.0.1", port, backlog=1024)
    sock = server.sockets[0]
    print(f"URL http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.serve_forever(), max_seconds)


def pin_to_cpus(server_cpu: int = 0) -> tuple[int, ...]:
    """Pin this process to the CPUs other than ``server_cpu`` (when there are two or more).

    Server and client then stop competing for one core, which is the main source of
    run-to-run noise on a small machine. Returns the CPUs the server should use.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or server_cpu not in cpus:
        return tuple(cpus)
    os.sched_setaffinity(0, [c for c in cpus if c != server_cpu])
    return (server_cpu,)


@contextlib.contextmanager
def running(
    module: str, *args: str, max_seconds: float = 900, cpus: tuple[int, ...] = ()
) -> Iterator[str]:
    """Start ``python -m module --port 0 --max-seconds N *args``; yield its URL; stop it.

    ``cpus`` pins the server process to those CPUs (see :func:`pin_to_cpus`).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", "--max-seconds", str(max_seconds), *args],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("URL "):
            raise RuntimeError(f"{module} did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.max_seconds))


if __name__ == "__main__":
    main()
