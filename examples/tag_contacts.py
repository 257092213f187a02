"""Tag contacts on the embedded sandbox: no account and no network needed.

Starts FakeInvent (the in-memory fake of the Invent API that ships with the SDK) on 127.0.0.1,
seeds it with contacts and a segment, then uses AsyncInventClient exactly as against the real
API: adds the segment to every contact, lists the segment's members, and prints a summary.

    python examples/tag_contacts.py [number-of-contacts]
"""

from __future__ import annotations

import asyncio
import sys
import time

from invent_async import AsyncInventClient, RateLimit, SegmentColor
from invent_async.testing import FakeInvent

API_KEY = "sandbox-key"
# The real API allows 500 requests/minute; the sandbox is scaled up 60x so this runs in seconds.
SANDBOX_RATE = 30_000


async def main(count: int) -> None:
    async with FakeInvent(api_key=API_KEY, rate_limit_per_minute=SANDBOX_RATE) as fake:
        segment = fake.add_segment("VIP customers", color=SegmentColor.RED)
        contact_ids = fake.add_contacts(count)
        print(f"sandbox at {fake.url}: {count} contacts, segment {segment.id} ({segment.name})")

        limit = RateLimit(per_minute=SANDBOX_RATE, burst=1)
        async with AsyncInventClient(API_KEY, base_url=fake.url, rate_limit=limit) as client:
            start = time.perf_counter()
            report = await client.contacts.bulk_add_segment(contact_ids, segment.id)
            elapsed = time.perf_counter() - start
            members = [c.id async for c in client.contacts.list(segment_id=segment.id)]
            updated = await client.segments.get(segment.id)

        print(
            f"tagged {report.succeeded} contacts in {elapsed:.2f}s "
            f"({report.failed} failed, {report.skipped} skipped, {report.retries} retries, "
            f"{report.rate_limited} answers 429 from a limit of {SANDBOX_RATE}/min)"
        )
        print(f"segment {updated.name!r} now has {updated.contacts_count} contacts")
        if len(members) != count or report.succeeded != count:
            raise SystemExit("some contacts were not tagged")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
