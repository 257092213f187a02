"""Check the SDK and FakeInvent against the OpenAPI description with Prism's validating proxy.

Starts a seeded :class:`~invent_async.testing.FakeInvent` on loopback, puts ``prism proxy
<spec> <fake> --errors`` in front of it (on loopback too), and drives every operation of the
spec through :class:`~invent_async.AsyncInventClient` pointed at Prism, plus a 404 and a 400
to check the error bodies. Prism validates each request the SDK sends and each response the
fake gives; with ``--errors`` a violation also fails the call. Prints one line per call and
every violation Prism logs, and exits 1 when there is any (or a call failed, or an operation
of the spec was not driven).

Usage: ``python tools/prism_check.py path/to/invent-openapi.yaml [--prism path/to/prism]``
(``nox -s prism`` installs a pinned Prism and runs this). Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from invent_async import (
    AsyncInventClient,
    AsyncPager,
    BadRequestError,
    ContactChannelOption,
    NotFoundError,
    OtherPart,
    TextPart,
)
from invent_async.testing import FakeInvent

KEY = "prism-check-key"
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
VIOLATION = re.compile(r"violation", re.IGNORECASE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")

Call = Callable[[AsyncInventClient], Awaitable[Any]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _operation_ids(spec: Path) -> set[str]:
    """Every ``operationId`` of the spec (read as text: no YAML parser needed)."""
    return set(re.findall(r"^\s+operationId:\s*(\w+)\s*$", spec.read_text(), re.MULTILINE))


async def _first(pager: AsyncPager[Any]) -> Any:
    return await pager.first_page()


def _calls(fake: FakeInvent) -> list[tuple[str, Call, type[Exception] | None]]:
    """(operationId, call, the error it must raise or None) for every operation, in an order
    that leaves each one something to act on."""
    vip = fake.add_segment("VIP", "red")
    news = fake.add_segment("News")
    jane = fake.add_contact(
        name="Jane", email="jane@example.com", user_id="+15555550123", segment_ids=[vip.id]
    )
    sam = fake.add_contact(name="Sam", email="jane@example.com", channel_type="email")
    gone = fake.add_contact(name="Gone", email="gone@example.com")
    fake.add_note(jane.id, "Called back")
    fake.add_memory(jane.id, "Runs a bakery", created_at=date(2023, 12, 25))
    fake.add_memory(jane.id, "Prefers email", type="PREFERENCE", importance=0.8)
    channel = jane.channels[0].id
    draft = fake.add_broadcast("Sale", segment_ids=[vip.id])
    order = fake.add_broadcast("Order shipped", transactional=True, templates=["twilio", "gmail"])
    rows = [
        ContactChannelOption(type="email", email="jane@example.com", name="Jane Doe"),
        ContactChannelOption(type="email", email="new@example.com", name="New"),
        ContactChannelOption(type="email", email="not-an-email"),
    ]
    chat: dict[str, str] = {}

    async def create_chat(c: AsyncInventClient) -> Any:
        made = await c.contacts.create_chat(
            jane.id, channel, assistant_id="ast_1", title="Order", message="Where is it?"
        )
        chat["id"] = made.id
        return made

    audio = OtherPart(data={"type": "audio", "audio": {"url": "https://example.com/a.ogg"}})
    return [
        ("listContacts", lambda c: _first(c.contacts.list(segment_id=vip.id, status="ALL")), None),
        ("createContact", lambda c: c.contacts.create(name="Ada", phone="+15555550100"), None),
        ("listContactFields", lambda c: _first(c.contacts.list_fields()), None),
        ("dryRunImportContacts", lambda c: c.contacts.preview_import(rows), None),
        ("importContacts", lambda c: c.contacts.import_batch(rows, segment_id=news.id), None),
        ("getContact", lambda c: c.contacts.get(jane.id), None),
        ("updateContact", lambda c: c.contacts.update(jane.id, name="Jane Doe"), None),
        ("listContactSegments", lambda c: _first(c.contacts.list_segments(jane.id)), None),
        ("addSegmentToContact", lambda c: c.contacts.add_segment(jane.id, news.id), None),
        ("removeSegmentFromContact", lambda c: c.contacts.remove_segment(jane.id, news.id), None),
        ("mergeContacts", lambda c: c.contacts.merge(jane.id, [sam.id]), None),
        ("listContactNotes", lambda c: _first(c.contacts.list_notes(jane.id)), None),
        ("listContactMemories", lambda c: _first(c.contacts.list_memories(jane.id)), None),
        (
            "updateContactChannel",
            lambda c: c.contacts.update_channel(jane.id, channel, username="janedoe"),
            None,
        ),
        ("createContactChannelChat", create_chat, None),
        (
            "sendMessageAsContact",
            lambda c: c.contacts.send_message(
                jane.id,
                chat["id"],
                [TextPart(text="Thanks", start_timestamp=0.5, end_timestamp=1.5), audio],
                channel_id=channel,
            ),
            None,
        ),
        (
            "sendMessageAsContactOnChannel",
            lambda c: c.contacts.send_message_on_channel(jane.id, channel, chat["id"], "Bye"),
            None,
        ),
        ("deleteContact", lambda c: c.contacts.delete(gone.id), None),
        ("listSegments", lambda c: _first(c.segments.list(search="v")), None),
        ("createSegment", lambda c: c.segments.create("Leads", color="sky"), None),
        ("getSegment", lambda c: c.segments.get(vip.id), None),
        ("updateSegment", lambda c: c.segments.update(vip.id, name="VIPs"), None),
        ("deleteSegment", lambda c: c.segments.delete(news.id), None),
        (
            "createBroadcast",
            lambda c: c.broadcasts.create(
                "Spring", segment_ids=[vip.id], scheduled_at=datetime(2030, 3, 1, 9, tzinfo=UTC)
            ),
            None,
        ),
        ("listBroadcasts", lambda c: _first(c.broadcasts.list(status="ALL")), None),
        ("sendBroadcast", lambda c: c.broadcasts.send(draft.id), None),
        (
            "sendBroadcast",
            lambda c: c.broadcasts.send_transactional(
                order.id, contact_id=jane.id, variables={"order_number": "1042"}, background=False
            ),
            None,
        ),
        ("getContact", lambda c: c.contacts.get("ct_missing"), NotFoundError),
        ("sendBroadcast", lambda c: c.broadcasts.send(draft.id), BadRequestError),
    ]


async def _wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"prism exited with status {process.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"prism did not listen on {HOST}:{port} within {START_TIMEOUT:.0f} s")


async def _read(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while raw := await stream.readline():
        lines.append(ANSI.sub("", raw.decode(errors="replace")).rstrip())


async def check(spec: Path, prism: str) -> int:
    lines: list[str] = []
    failures: list[str] = []
    async with FakeInvent(api_key=KEY) as fake:
        calls = _calls(fake)
        port = _free_port()
        process = await asyncio.create_subprocess_exec(
            prism,
            *("proxy", str(spec), fake.url, "--errors", "--host", HOST, "--port", str(port)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        reader = asyncio.create_task(_read(process.stdout, lines))
        try:
            await _wait_listening(port, process)
            base_url = f"http://{HOST}:{port}"
            async with AsyncInventClient(
                KEY, base_url=base_url, max_retries=0, rate_limit=None
            ) as client:
                for operation, call, expected in calls:
                    before = len(lines)
                    outcome = "ok"
                    try:
                        await call(client)
                        if expected is not None:
                            outcome = f"FAILED: no {expected.__name__}"
                    except Exception as exc:
                        if expected is None or not isinstance(exc, expected):
                            body = getattr(exc, "body", None)  # Prism's problem+json
                            outcome = f"FAILED: {type(exc).__name__}: {exc} {body}"
                        else:
                            outcome = f"ok ({type(exc).__name__}, as expected)"
                    await asyncio.sleep(0.05)  # let prism log this exchange
                    found = [line for line in lines[before:] if VIOLATION.search(line)]
                    if found or outcome.startswith("FAILED"):
                        failures.append(operation)
                    print(f"{operation:32} {outcome}; {len(found)} violations")
                    for line in found:
                        print(f"    {line}")
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    driven = {operation for operation, _, _ in calls}
    missing = sorted(_operation_ids(spec) - driven)
    violations = sum(1 for line in lines if VIOLATION.search(line))
    print(
        json.dumps(
            {
                "calls": len(calls),
                "operations": len(driven),
                "violations": violations,
                "failed": failures,
                "not_driven": missing,
            }
        )
    )
    return 1 if violations or failures or missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="the OpenAPI description (invent-openapi.yaml)")
    parser.add_argument("--prism", default=shutil.which("prism") or "prism", help="prism CLI")
    args = parser.parse_args(argv)
    return asyncio.run(check(args.spec, args.prism))


if __name__ == "__main__":
    sys.exit(main())
