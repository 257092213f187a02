"""A hostile HTTP server and a client call against it, in a process of their own.

Run as ``python tests/_hostile.py SCENARIO [MIB]``; it prints one JSON line: the error the
call raised, the peak RSS over the process's baseline (``ru_maxrss`` before and after) and the
largest gap a heartbeat task saw, both on the wall clock and in this thread's CPU time (a gap
the OS caused by running something else costs no CPU here; one our code caused does).

Scenarios (all on 127.0.0.1, the server stops when the client hangs up or after 60 s):

- ``endless``: a 200 with a chunked body that never ends;
- ``bomb``: a 200 whose gzip body unpacks to ``MIB`` MiB of zeros (default 256);
- ``big``: a 200 with a ``MIB`` MiB JSON body and its Content-Length (default 50);
- ``big-error``: the same as a 500.

A separate process, so that the peak RSS belongs to this call alone and nothing a test ran
before it counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
import zlib

from invent_async import AsyncInventClient, RateLimit

CHUNK = 64 * 1024
SERVER_LIFETIME = 60.0


def gzip_of_zeros(mib: int) -> bytes:
    """A gzip stream of ``mib`` MiB of zeros, about 1/1000 of that on the wire."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join([*(packer.compress(zeros) for _ in range(mib)), packer.flush()])


def head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


async def serve(scenario: str, mib: int) -> asyncio.Server:
    body = gzip_of_zeros(mib) if scenario == "bomb" else b""
    # The big bodies are written chunk by chunk, never held whole: the baseline of the peak
    # RSS must not already hold what the client might read.
    head_of_json, tail_of_json = b'{"id": "sg_1", "name": "', b'"}'
    big_length = len(head_of_json) + (mib << 20) + len(tail_of_json)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            async with asyncio.timeout(SERVER_LIFETIME):
                await reader.readuntil(b"\r\n\r\n")
                json_type = {"Content-Type": "application/json"}
                if scenario == "endless":
                    chunk = b"%x\r\n%s\r\n" % (CHUNK, b" " * CHUNK)
                    writer.write(head("200 OK", {**json_type, "Transfer-Encoding": "chunked"}))
                    while True:
                        writer.write(chunk)
                        await writer.drain()
                status = "500 Internal Server Error" if scenario == "big-error" else "200 OK"
                if scenario == "bomb":
                    headers = {**json_type, "Content-Length": str(len(body))}
                    writer.write(head(status, {**headers, "Content-Encoding": "gzip"}))
                    for start in range(0, len(body), CHUNK):
                        writer.write(body[start : start + CHUNK])
                        await writer.drain()
                else:
                    writer.write(head(status, {**json_type, "Content-Length": str(big_length)}))
                    writer.write(head_of_json)
                    filler = b"x" * CHUNK
                    for _ in range((mib << 20) // CHUNK):
                        writer.write(filler)
                        await writer.drain()
                    writer.write(tail_of_json)
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def main(scenario: str, mib: int) -> dict[str, object]:
    server = await serve(scenario, mib)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    gaps = {"wall": 0.0, "cpu": 0.0}
    stop = asyncio.Event()

    async def heartbeat() -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        while not stop.is_set():
            await asyncio.sleep(0.002)
            now_wall, now_cpu = time.perf_counter(), time.thread_time()
            gaps["wall"] = max(gaps["wall"], now_wall - wall)
            gaps["cpu"] = max(gaps["cpu"], now_cpu - cpu)
            wall, cpu = now_wall, now_cpu

    rate = RateLimit(per_minute=None)
    async with AsyncInventClient("k", base_url=url, max_retries=0, rate_limit=rate) as client:
        baseline = peak_rss_mib()
        beat = asyncio.create_task(heartbeat())
        started = time.perf_counter()
        outcome: dict[str, object] = {}
        try:
            await client.segments.get("sg_1")
        except Exception as exc:  # the point: which error, and what it carries
            outcome = {"error": type(exc).__name__, "message": str(exc)[:200]}
            body = getattr(exc, "body", None)
            if body is not None:
                outcome["body_chars"] = len(body) if isinstance(body, str) else -1
        else:
            outcome = {"error": None}
        elapsed = time.perf_counter() - started
        stop.set()
        await beat
    server.close()
    await server.wait_closed()
    return {
        **outcome,
        "scenario": scenario,
        "mib": mib,
        "elapsed_s": round(elapsed, 3),
        "peak_rss_over_baseline_mib": round(peak_rss_mib() - baseline, 1),
        "max_gap_wall_ms": round(gaps["wall"] * 1000, 1),
        "max_gap_cpu_ms": round(gaps["cpu"] * 1000, 1),
    }


if __name__ == "__main__":
    name = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else {"bomb": 256}.get(name, 50)
    print(json.dumps(asyncio.run(main(name, size))))
