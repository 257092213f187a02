"""``invent broadcasts list|create|send``, through click's ``CliRunner`` against a FakeInvent
served from a background thread (``--base-url`` plus ``INVENT_API_KEY``), as in
``test_cli.py``; the sandbox runs in-process too.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Final

import pytest
from _harness import API_KEY, ThreadedFake
from _harness import invent as run_invent
from click.testing import Result

from invent_async import Broadcast, BroadcastStatus
from invent_async.cli._broadcasts import (
    BROADCAST_VIEW,
    RECIPIENT_VIEW,
    broadcast_record,
    recipient_record,
)
from invent_async.testing import FakeInvent

FUTURE: Final = "2099-05-01T09:00:00Z"


@pytest.fixture
def fake() -> Iterator[FakeInvent]:
    """Segments sg_1 and sg_2, contacts ct_1..ct_3 (ct_1, ct_2 in sg_1), and broadcasts bc_1
    (a marketing draft to sg_1), bc_2 (sent to every contact), bc_3 (transactional, two
    templates: tpl_1 and tpl_2)."""
    with ThreadedFake(api_key=API_KEY) as server:
        server.add_segment("VIP customers")
        server.add_segment("Churned")
        server.add_contacts(2, segment_ids=["sg_1"])
        server.add_contact(name="Blocked", email="blocked@example.com", blocked=True)
        server.add_broadcast("Spring sale", segment_ids=["sg_1"])
        server.add_broadcast("Weekly", send_to_all=True, status=BroadcastStatus.SENT)
        server.add_broadcast("Order shipped", transactional=True, templates=["gmail", "twilio"])
        yield server


invent = functools.partial(run_invent, columns=160)
"""``invent`` of the harness, 160 columns wide."""


def cell_texts(line: str) -> list[str]:
    """The cells of one row of a rich table (its columns are split by a vertical line)."""
    return [cell.strip() for cell in line.split("│")] if "│" in line else []


def clean(result: Result) -> None:
    """Neither output stream shows a traceback or the API key."""
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text
        assert API_KEY not in text


# --------------------------------------------------------------------------- list


def test_list_as_a_table_shows_status_audience_and_counts(fake: FakeInvent) -> None:
    result = invent(fake, "broadcasts", "list")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rows = {cells[0]: cells for cells in (cell_texts(line) for line in lines) if cells}
    assert rows["bc_1"][:5] == ["bc_1", "Spring sale", "DRAFT", "VIP customers", ""]
    assert rows["bc_1"][5:] == ["2", "0", "0"]  # contacts, sent, failed
    assert rows["bc_2"][2:4] == ["SENT", "every contact"]
    assert lines[-1] == "3 broadcasts"
    assert "\x1b" not in result.stdout
    clean(result)


def test_list_jsonl_has_every_broadcast_in_the_sdk_form(fake: FakeInvent) -> None:
    result = invent(fake, "broadcasts", "list", "--format", "jsonl")

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["name"], r["status"]) for r in rows] == [
        ("bc_1", "Spring sale", "DRAFT"),
        ("bc_2", "Weekly", "SENT"),
        ("bc_3", "Order shipped", "DRAFT"),
    ]
    assert rows[0]["segments"][0]["id"] == "sg_1"
    assert rows[0]["contacts_count"] == 2
    assert rows[0]["created_at"].endswith("Z")


def test_list_csv_filters_by_status_and_stops_at_the_limit(fake: FakeInvent) -> None:
    result = invent(
        fake, "broadcasts", "list", "--status", "draft", "--limit", "1", "--format", "csv"
    )

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["id"], r["status"], r["segment_ids"]) for r in rows] == [("bc_1", "DRAFT", "sg_1")]
    assert rows[0]["send_to_all"] == "false"
    assert rows[0]["scheduled_at"] == ""
    (request,) = fake.requests
    assert request.params["status"] == "DRAFT"
    assert request.params["take"] == "1"


def test_list_of_an_unknown_status_is_a_usage_error(fake: FakeInvent) -> None:
    result = invent(fake, "broadcasts", "list", "--status", "PAUSED")

    assert result.exit_code == 2
    assert "'PAUSED' is not one of" in result.stderr
    assert fake.requests == []


def test_the_csv_headers_are_the_record_fields(fake: FakeInvent) -> None:
    result = invent(fake, "broadcasts", "send", "bc_3", "--to-contact", "ct_1")
    assert result.exit_code == 0, result.output
    (recipient, _) = fake.broadcast_recipients("bc_3")

    assert tuple(broadcast_record(fake.broadcast("bc_1"))) == BROADCAST_VIEW.header
    assert tuple(recipient_record(recipient)) == RECIPIENT_VIEW.header


# --------------------------------------------------------------------------- create


def test_create_without_at_makes_a_draft_and_sends_nothing(fake: FakeInvent) -> None:
    result = invent(
        fake, "broadcasts", "create", "Autumn", "--segment", "sg_1", "--segment", "sg_2"
    )

    assert result.exit_code == 0, result.output
    new_id = result.stdout.strip()
    created = fake.broadcast(new_id)
    assert created.status is BroadcastStatus.DRAFT
    assert created.started_at is None
    assert [s.id for s in created.segments] == ["sg_1", "sg_2"]
    (request,) = fake.requests
    assert request.json == {"name": "Autumn", "segment_ids": ["sg_1", "sg_2"], "send_to_all": False}
    assert f"a draft: `invent broadcasts send {new_id}` sends it" in result.stderr
    clean(result)


@pytest.mark.parametrize(
    ("at", "sent"),
    [
        ("2099-05-01T09:00:00Z", "2099-05-01T09:00:00Z"),
        ("2099-05-01T09:00", "2099-05-01T09:00:00Z"),  # naive: UTC, as the SDK reads it
        ("2099-05-01 11:00+02:00", "2099-05-01T09:00:00Z"),
    ],
)
def test_create_with_at_schedules_it(fake: FakeInvent, at: str, sent: str) -> None:
    result = invent(fake, "broadcasts", "create", "Later", "--all", "--at", at)

    assert result.exit_code == 0, result.output
    created = fake.broadcast(result.stdout.strip())
    assert created.status is BroadcastStatus.SCHEDULED
    assert created.scheduled_at == datetime(2099, 5, 1, 9, tzinfo=UTC)
    assert created.send_to_all is True
    (request,) = fake.requests
    assert request.json["scheduled_at"] == sent
    assert "SCHEDULED, at 2099-05-01 09:00 UTC" in result.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            [f"--segment=sg_{n}" for n in range(11)],
            "a broadcast targets 1 to 10 segments, got 11",  # the SDK's message
        ),
        (["--segment", "sg_1", "--all"], "pass segment_ids or send_to_all=True, not both"),
        ([], "--segment SEGMENT_ID (1 to 10 of them) or --all"),
        (["--all", "--at", "next tuesday"], "'next tuesday' is not an ISO 8601 date-time"),
        (["--all", "--at", "2001-01-01T00:00:00Z"], "is in the past"),
    ],
    ids=["11 segments", "segments and all", "no audience", "bad time", "past time"],
)
def test_create_refuses_bad_usage_with_exit_2_before_any_request(
    fake: FakeInvent, args: list[str], said: str
) -> None:
    result = invent(fake, "broadcasts", "create", "Wide", *args)

    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert fake.requests == []
    assert [b.name for b in _broadcasts(fake)] == ["Spring sale", "Weekly", "Order shipped"]
    clean(result)


def _broadcasts(fake: FakeInvent) -> list[Broadcast]:
    found = []
    for n in range(1, 10):
        try:
            found.append(fake.broadcast(f"bc_{n}"))
        except KeyError:
            break
    return found


def test_create_of_an_unknown_segment_is_one_error_line_and_exit_1(fake: FakeInvent) -> None:
    result = invent(fake, "broadcasts", "create", "Lost", "--segment", "sg_404")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: 404 Not Found")
    assert result.stdout == ""
    clean(result)


# --------------------------------------------------------------------------- send


def test_send_starts_a_marketing_draft_and_prints_its_new_status(fake: FakeInvent) -> None:
    result = invent(fake, "broadcasts", "send", "bc_1", "--format", "jsonl")

    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (row["id"], row["status"], row["recipients_count"]) == ("bc_1", "SENDING", 2)
    assert fake.broadcast("bc_1").status is BroadcastStatus.SENDING
    (request,) = fake.requests
    assert request.body == b""


def test_send_of_a_broadcast_that_cannot_be_sent_exits_1(fake: FakeInvent) -> None:
    result = invent(fake, "broadcasts", "send", "bc_2")  # already SENT

    assert result.exit_code == 1
    assert result.stderr.startswith("error: 400 Bad Request")
    assert "cannot be sent" in result.stderr
    clean(result)


def test_a_transactional_send_records_one_recipient_row_per_template(fake: FakeInvent) -> None:
    result = invent(
        fake,
        *("broadcasts", "send", "bc_3", "--to-contact", "ct_1"),
        *("--var", "order=A-1042", "--var", "eta=a=b", "--format", "csv"),
    )

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    recorded = fake.broadcast_recipients("bc_3")
    assert [r["id"] for r in rows] == [r.id for r in recorded]
    assert [(r["template_id"], r["contact_id"], r["outcome"]) for r in rows] == [
        (t.id, "ct_1", "sent") for t in fake.broadcast("bc_3").templates
    ]
    (request,) = fake.requests
    assert request.json == {"contact_id": "ct_1", "variables": {"order": "A-1042", "eta": "a=b"}}


def test_a_transactional_send_to_an_email_picks_templates(fake: FakeInvent) -> None:
    first_template = fake.broadcast("bc_3").templates[0].id
    assert first_template is not None

    result = invent(
        fake,
        *("broadcasts", "send", "bc_3", "--to-email", "contact2@example.com"),
        *("--template", first_template),
    )

    assert result.exit_code == 0, result.output
    (recorded,) = fake.broadcast_recipients("bc_3")
    assert recorded.contact is not None
    assert recorded.contact.id == "ct_2"
    assert recorded.template_id == first_template
    assert "sent" in result.stdout
    assert result.stdout.splitlines()[-1] == "1 recipient"


def test_a_skipped_recipient_is_noted_and_not_a_failure(fake: FakeInvent) -> None:
    result = invent(fake, "broadcasts", "send", "bc_3", "--to-contact", "ct_3")  # blocked

    assert result.exit_code == 0, result.output
    assert "skipped" in result.stdout
    assert "note: 2 of 2 messages skipped by the API" in result.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--to-contact", "ct_1", "--to-email", "a@example.com"], "--to-contact and --to-email"),
        (["--to-phone", "+1555", "--to-channel", "ch_1"], "--to-phone and --to-channel"),
        (["--var", "order=1"], "--var and --template are for a transactional send"),
        (["--template", "tpl_1"], "--var and --template are for a transactional send"),
        (["--to-contact", "ct_1", "--var", "order"], "'order' is not KEY=VALUE"),
        (["--to-contact", "ct_1", "--var", "=1"], "'=1' is not KEY=VALUE"),
        (["--to-phone", "1" * 257], "phone must be a string of at most 256 characters"),
    ],
    ids=[
        "contact and email",
        "phone and channel",
        "var alone",
        "template alone",
        "no =",
        "no key",
        "long phone",
    ],
)
def test_send_refuses_bad_usage_with_exit_2_before_any_request(
    fake: FakeInvent, args: list[str], said: str
) -> None:
    result = invent(fake, "broadcasts", "send", "bc_3", *args)

    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert fake.requests == []
    assert fake.broadcast_recipients("bc_3") == []
    clean(result)


# --------------------------------------------------------------------------- status, sandbox

COMMANDS: Final = {
    "list": ("broadcasts", "list"),
    "create": ("broadcasts", "create", "Spring", "--all"),
    "send": ("broadcasts", "send", "bc_1"),
    "send transactional": ("broadcasts", "send", "bc_3", "--to-contact", "ct_1"),
}


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_wrong_key_exits_3_and_changes_nothing(fake: FakeInvent, args: tuple[str, ...]) -> None:
    wrong = "wrong-key-123456"

    result = invent(fake, *args, key=wrong)

    assert result.exit_code == 3
    assert result.stderr.startswith("error: authentication failed: 401 Unauthorized")
    assert wrong not in result.stdout + result.stderr
    assert fake.broadcast("bc_1").status is BroadcastStatus.DRAFT
    assert fake.broadcast_recipients("bc_3") == []
    clean(result)


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_call_the_rate_limit_refuses_for_an_hour_exits_4(
    fake: FakeInvent, args: tuple[str, ...]
) -> None:
    fake.fail_next(100, status=429, retry_after="3600")

    result = invent(fake, *args)

    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("error: rate limited: 429 Too Many Requests")
    clean(result)


def test_a_missing_key_is_a_usage_error(fake: FakeInvent) -> None:
    result = invent(fake, "broadcasts", "list", key=None)

    assert result.exit_code == 2
    assert "INVENT_API_KEY" in result.stderr
    assert fake.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ["--sandbox", "broadcasts", "list", "--format", "jsonl"],
        ["broadcasts", "list", "--format", "jsonl", "--sandbox"],
    ],
    ids=["before", "after"],
)
def test_the_sandbox_lists_its_seeded_broadcasts(args: list[str]) -> None:
    result = invent(None, *args, key=None)

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["name"], r["status"]) for r in rows] == [
        ("bc_1", "Spring sale", "DRAFT"),
        ("bc_2", "Order shipped", "DRAFT"),
    ]


def test_the_sandbox_sends_both_kinds() -> None:
    marketing = invent(None, "--sandbox", "broadcasts", "send", "bc_1", key=None)
    transactional = invent(
        None, "broadcasts", "send", "bc_2", "--to-contact", "ct_7", "--sandbox", key=None
    )

    assert marketing.exit_code == 0, marketing.output
    assert "SENDING" in marketing.stdout
    assert transactional.exit_code == 0, transactional.output
    assert transactional.stdout.splitlines()[-1] == "2 recipients"
