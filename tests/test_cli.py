"""The ``invent`` command line, through its entry point.

Most tests invoke the click group with ``CliRunner`` against a FakeInvent served from a
background thread (``--base-url`` plus ``INVENT_API_KEY`` in the runner's environment); a few
run the installed ``invent`` script in a subprocess (the sandbox, the demo, Ctrl-C). The pure
helpers (id parsing, rows, summaries) are tested directly.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Final

import anyio
import pytest
from _harness import API_KEY, ThreadedFake, cli_runner, invent, needs_sigint
from click.testing import Result

from invent_async import BulkFailure, BulkReport, NotFoundError, SegmentSyncPlan
from invent_async.cli import _job_run as jobs
from invent_async.cli import _runtime as runtime
from invent_async.cli._ids import (
    BackgroundIds,
    batched,
    decode_lines,
    iter_csv_ids,
    iter_line_ids,
    line_id_batches,
    open_ids,
)
from invent_async.cli._job_run import default_failed_path
from invent_async.cli._output import (
    CONTACT_VIEW,
    SEGMENT_VIEW,
    contact_record,
    failure_row,
    job_summary,
    plan_lines,
    segment_record,
)
from invent_async.cli._runtime import InputError
from invent_async.cli._signals import StopSignals
from invent_async.cli._tag_jobs import demo_summary
from invent_async.cli.commands import cli
from invent_async.testing import FakeInvent, RecordedRequest

SUBPROCESS_TIMEOUT: Final = 30.0
INVENT: Final = Path(sysconfig.get_path("scripts")) / "invent"


@pytest.fixture
def fake() -> Iterator[FakeInvent]:
    """A FakeInvent on its own loop in a thread, with segment sg_1 and contacts ct_1..ct_5."""
    with ThreadedFake(api_key=API_KEY) as server:
        server.add_segment("VIP customers")
        server.add_contacts(5)
        yield server


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own directory: default failed-id files land there."""
    monkeypatch.chdir(tmp_path)


def write_ids(path: Path, *ids: str) -> Path:
    """Write one id per line; returns ``path``."""
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return path


def tagged(fake: FakeInvent, requests: list[RecordedRequest] | None = None) -> list[str]:
    """Contact ids of the tag requests the fake received, in arrival order."""
    return [
        r.path_params["contact_id"]
        for r in (fake.requests if requests is None else requests)
        if r.operation == "addSegmentToContact"
    ]


def no_traceback(result: Result) -> None:
    """Neither output stream shows a traceback or the API key."""
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text
        assert API_KEY not in text


# --------------------------------------------------------------------------- tag / untag


def test_tag_from_a_file_adds_the_segment_to_every_contact(
    fake: FakeInvent, tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1", "  ct_2  ", "", "ct_3")

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", str(ids))

    assert result.exit_code == 0, result.output
    assert sorted(fake.segment_members("sg_1")) == ["ct_1", "ct_2", "ct_3"]  # sent concurrently
    assert "tag sg_1: 3 succeeded, 0 failed, 0 skipped of 3 ids" in result.stdout
    assert not list(tmp_path.glob("failed-*.txt"))


def test_tag_reads_ids_from_stdin(fake: FakeInvent) -> None:
    result = invent(fake, "contacts", "tag", "sg_1", "--ids", "-", input="ct_4\nct_5\n\n")

    assert result.exit_code == 0, result.output
    assert sorted(fake.segment_members("sg_1")) == ["ct_4", "ct_5"]


def test_tag_reads_a_csv_column(fake: FakeInvent, tmp_path: Path) -> None:
    table = tmp_path / "contacts.csv"
    table.write_text(
        '\ufeffemail,Contact ID\n"a@example.com, b",ct_2\nc@example.com,\nd@example.com, ct_5 \n',
        encoding="utf-8",
    )

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", str(table), "--column", "contact id")

    assert result.exit_code == 0, result.output
    assert sorted(fake.segment_members("sg_1")) == ["ct_2", "ct_5"]


def test_a_missing_csv_column_is_a_usage_error_before_any_request(
    fake: FakeInvent, tmp_path: Path
) -> None:
    table = tmp_path / "contacts.csv"
    table.write_text("email,name\na@example.com,A\n", encoding="utf-8")

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", str(table), "--column", "id")

    assert result.exit_code == 2
    assert "no column 'id'" in result.stderr
    assert "'email', 'name'" in result.stderr
    assert fake.requests == []
    no_traceback(result)


@pytest.mark.parametrize("name", ["missing.txt", "a-directory"])
def test_an_unreadable_ids_file_is_a_usage_error(
    fake: FakeInvent, tmp_path: Path, name: str
) -> None:
    (tmp_path / "a-directory").mkdir()

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", str(tmp_path / name))

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot read {tmp_path / name}: ")
    assert fake.requests == []
    no_traceback(result)


@pytest.mark.parametrize("from_stdin", [False, True], ids=["file", "stdin"])
def test_ids_that_are_not_utf8_stop_the_job_with_a_usage_error(
    fake: FakeInvent, tmp_path: Path, from_stdin: bool
) -> None:
    data = b"ct_1\nct_2\n\xff\xfe\n"
    ids = tmp_path / "ids.txt"
    ids.write_bytes(data)
    source = ("-", data) if from_stdin else (str(ids), None)

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", source[0], input=source[1])

    assert result.exit_code == 2
    assert "not valid UTF-8" in result.stderr
    no_traceback(result)


def test_an_unwritable_journal_is_a_usage_error_before_any_request(
    fake: FakeInvent, tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1")
    journal = ids / "journal.txt"  # under a regular file: cannot be created

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", str(ids), "--journal", str(journal))

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot write {journal}: ")
    assert fake.requests == []


def test_a_journal_that_is_not_utf8_is_a_usage_error_before_any_tag_request(
    fake: FakeInvent, tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1", "ct_2")
    journal = tmp_path / "journal.txt"
    journal.write_bytes(b"ct_1\n\xff\xfe\n")

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", str(ids), "--journal", str(journal))

    assert result.exit_code == 2
    assert result.stderr == f"error: journal {journal}: line 2 is not valid UTF-8 text\n"
    assert tagged(fake) == []
    no_traceback(result)


@pytest.mark.parametrize(
    ("text", "from_stdin"),
    [
        ("contact_id,email\nct_1,a@example.com\nct_2,b@example.com\n", False),
        ("Contact ID\nct_1\nct_2\n", False),
        ("id;email\nct_1;a@example.com\n", True),
    ],
    ids=["comma-header", "one-column-header", "stdin"],
)
def test_a_csv_file_without_column_is_refused_before_any_tag_request(
    fake: FakeInvent, tmp_path: Path, text: str, from_stdin: bool
) -> None:
    ids = tmp_path / "export.csv"
    ids.write_text(text, encoding="utf-8")
    source = ("-", text) if from_stdin else (str(ids), None)

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", source[0], input=source[1])

    assert result.exit_code == 2
    header = text.splitlines()[0]
    assert f"the first line {header!r} looks like a CSV header" in result.stderr
    assert "--column" in result.stderr
    assert tagged(fake) == []
    assert not list(tmp_path.glob("failed-*.txt"))
    no_traceback(result)


def test_the_api_key_is_checked_before_the_ids_file_is_read(
    fake: FakeInvent, tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"ct_1\n\xff\n")  # reading it would fail

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", str(ids), key=None)

    assert result.exit_code == 2
    assert result.stderr.startswith("error: no API key: set the INVENT_API_KEY")
    assert "UTF-8" not in result.stderr
    assert fake.requests == []


@pytest.mark.parametrize("from_stdin", [False, True], ids=["file", "stdin"])
def test_an_input_without_ids_says_so_exits_0_and_tags_nothing(
    fake: FakeInvent, tmp_path: Path, from_stdin: bool
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "", "  ")
    source = ("-", "\n  \n") if from_stdin else (str(ids), None)
    name = "<stdin>" if from_stdin else str(ids)

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", source[0], input=source[1])

    assert result.exit_code == 0
    assert result.stderr == f"no ids in {name}: nothing to do\n"
    assert result.stdout == ""
    assert tagged(fake) == []
    if not from_stdin:
        assert fake.requests == []  # not even the segment check


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_ids_from_stdin_on_a_terminal_say_that_stdin_is_being_read() -> None:
    import pty

    with ThreadedFake(api_key=API_KEY) as server:
        server.add_segment("VIP customers")
        server.add_contacts(2)
        controller, terminal = pty.openpty()
        try:
            env = {**os.environ, "INVENT_API_KEY": API_KEY}
            args = [str(INVENT), "--base-url", server.url, "contacts", "tag", "sg_1", "--ids", "-"]
            with subprocess.Popen(
                args, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            ) as proc:
                os.write(controller, b"ct_1\nct_2\n\x04")  # two lines, then Ctrl-D
                _, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
        finally:
            os.close(terminal)
            os.close(controller)
        members = server.segment_members("sg_1")

    assert proc.returncode == 0, stderr
    assert b"reading contact ids from stdin, one per line (end with Ctrl-D)" in stderr
    assert sorted(members) == ["ct_1", "ct_2"]


def test_unknown_ids_fail_with_exit_1_and_a_failed_id_file_ready_for_a_rerun(
    fake: FakeInvent, tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1", "ct_6", "ct_2", "ct_7")

    first = invent(fake, "contacts", "tag", "sg_1", "--ids", str(ids))

    assert first.exit_code == 1
    failed = tmp_path / "failed-sg_1.txt"
    assert sorted(failed.read_text().split("\n")) == ["", "ct_6", "ct_7"]
    assert "2 succeeded, 2 failed" in first.stdout
    assert "NotFoundError" in first.stdout  # the table of first failures
    assert f"--ids {failed.name}" in first.stdout
    no_traceback(first)

    fake.add_contacts(2)  # ct_6, ct_7 now exist
    fake.clear_requests()
    second = invent(fake, "contacts", "tag", "sg_1", "--ids", failed.name)

    assert second.exit_code == 0, second.output
    assert sorted(tagged(fake)) == ["ct_6", "ct_7"]
    assert sorted(fake.segment_members("sg_1")) == ["ct_1", "ct_2", "ct_6", "ct_7"]


def test_an_explicit_failed_out_file_is_written_even_when_nothing_failed(
    fake: FakeInvent, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "failed.txt"
    out.parent.mkdir()
    out.write_text("stale\n")
    ids = write_ids(tmp_path / "ids.txt", "ct_1")

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", str(ids), "--failed-out", str(out))

    assert result.exit_code == 0
    assert out.read_text() == ""


def test_a_journal_lets_a_rerun_skip_the_ids_already_done(fake: FakeInvent, tmp_path: Path) -> None:
    journal = tmp_path / "journal.txt"
    first_ids = write_ids(tmp_path / "first.txt", "ct_1", "ct_2", "ct_3")
    all_ids = write_ids(tmp_path / "all.txt", "ct_1", "ct_2", "ct_3", "ct_4", "ct_5")
    args = ("contacts", "tag", "sg_1", "--journal", str(journal), "--ids")

    assert invent(fake, *args, str(first_ids)).exit_code == 0
    fake.clear_requests()
    result = invent(fake, *args, str(all_ids))

    assert result.exit_code == 0, result.output
    assert sorted(tagged(fake)) == ["ct_4", "ct_5"]
    assert "2 succeeded, 0 failed, 3 skipped of 5 ids" in result.stdout
    assert "3 already done (journal)" in result.stdout


def test_untag_removes_the_segment(fake: FakeInvent, tmp_path: Path) -> None:
    fake.add_contacts(3, segment_ids=["sg_1"])  # ct_6..ct_8
    ids = write_ids(tmp_path / "ids.txt", "ct_6", "ct_8")

    result = invent(fake, "contacts", "untag", "sg_1", "--ids", str(ids))

    assert result.exit_code == 0, result.output
    assert fake.segment_members("sg_1") == ["ct_7"]
    assert "untag sg_1: 2 succeeded" in result.stdout


def test_an_unknown_segment_is_one_error_line_and_no_tagging(
    fake: FakeInvent, tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1", "ct_2")

    result = invent(fake, "contacts", "tag", "sg_404", "--ids", str(ids))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: 404 Not Found for GET /orgs/c/segments/sg_404: ")
    assert result.stderr.count("\n") == 1
    assert tagged(fake) == []
    no_traceback(result)


# --------------------------------------------------------------------------- segments sync


def writes(fake: FakeInvent) -> list[tuple[str, str]]:
    """(method, contact id) of every add or removal the fake received."""
    return [
        (r.method, r.path_params["contact_id"])
        for r in fake.requests
        if r.operation in ("addSegmentToContact", "removeSegmentFromContact")
    ]


@pytest.fixture
def members(fake: FakeInvent) -> list[str]:
    """sg_1 holds ct_1..ct_3 (of ct_1..ct_5)."""
    fake.add_to_segment("sg_1", ["ct_1", "ct_2", "ct_3"])
    fake.clear_requests()
    return ["ct_1", "ct_2", "ct_3"]


def test_sync_dry_run_prints_the_plan_and_writes_nothing(
    fake: FakeInvent, members: list[str], tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_2", "ct_3", "ct_4", "ct_5", "ct_5")

    result = invent(fake, "segments", "sync", "sg_1", "--ids", str(ids), "--exact", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"segment sg_1: 3 members now; 5 ids in {ids} (1 duplicate)",
        "  to add     2",
        "  to remove  1",
        "  unchanged  2",
        "  strategy   diff: remove_others needs the whole membership",
        "  requests   4 (1 membership read, 3 writes): 0.5 s at 490/min",
        "dry run: nothing was changed (1 request sent)",
    ]
    assert writes(fake) == []
    assert fake.segment_members("sg_1") == members
    no_traceback(result)


def test_sync_exact_makes_the_segment_the_input_with_one_membership_read(
    fake: FakeInvent, members: list[str], tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_2", "ct_3", "ct_4", "ct_5")

    result = invent(fake, "segments", "sync", "sg_1", "--ids", str(ids), "--exact", "--verify")

    assert result.exit_code == 0, result.output
    assert sorted(fake.segment_members("sg_1")) == ["ct_2", "ct_3", "ct_4", "ct_5"]
    assert sorted(writes(fake)) == [("DELETE", "ct_1"), ("POST", "ct_4"), ("POST", "ct_5")]
    reads = [r for r in fake.requests if r.operation == "listContacts"]
    assert len(reads) == 2  # the plan's read (reused by the run) and the verify read
    assert "sync sg_1: 2 added, 1 removed, 2 unchanged, 0 failed, 0 skipped of 4 ids" in (
        result.stdout
    )
    assert "requests 5 (2 reads, 3 writes; 0 retries, 429s: 0) in " in result.stdout
    assert "x the ideal" in result.stdout
    assert "verify: OK, the segment holds what was asked" in result.stdout
    no_traceback(result)


def test_removing_more_members_than_the_threshold_needs_yes_without_a_terminal(
    fake: FakeInvent, members: list[str], tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_4")
    args = ("segments", "sync", "sg_1", "--ids", str(ids), "--exact", "--confirm-over", "2")

    refused = invent(fake, *args)

    assert refused.exit_code == 2
    assert "this sync removes 3 of the 3 members of sg_1; confirm with --yes" in refused.stderr
    assert "stdin is not a terminal" in refused.stderr
    assert writes(fake) == []  # not even the add went out
    assert "  to remove  3" in refused.stdout  # the plan was shown first

    confirmed = invent(fake, *args, "--yes")

    assert confirmed.exit_code == 0, confirmed.output
    assert fake.segment_members("sg_1") == ["ct_4"]


def test_ids_on_stdin_cannot_also_confirm_removals(fake: FakeInvent, members: list[str]) -> None:
    result = invent(
        fake, "segments", "sync", "sg_1", "--ids", "-", "--exact", "--confirm-over", "0",
        input="ct_1\nct_2\n",
    )  # fmt: skip

    assert result.exit_code == 2
    assert "stdin carries the ids" in result.stderr
    assert writes(fake) == []


def run_on_a_terminal(args: list[str], answer: bytes) -> tuple[int, str]:
    """Run the script with a pseudo-terminal as stdin, typing ``answer``; (status, stderr)."""
    leader, follower = os.openpty()
    try:
        env = {**os.environ, "INVENT_API_KEY": API_KEY}
        with subprocess.Popen(
            args, stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        ) as proc:
            os.write(leader, answer)
            _, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        os.close(leader)
        os.close(follower)
    return proc.returncode, stderr.decode()


@pytest.mark.parametrize(("answer", "status"), [(b"n\n", 1), (b"y\n", 0)])
def test_on_a_terminal_removals_wait_for_a_yes(
    fake: FakeInvent, members: list[str], tmp_path: Path, answer: bytes, status: int
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1")
    args = [str(INVENT), "--base-url", fake.url, "segments", "sync", "sg_1", "--ids", str(ids)]

    code, stderr = run_on_a_terminal([*args, "--exact", "--confirm-over", "1"], answer)

    assert code == status, stderr
    assert "this sync removes 2 of the 3 members of sg_1. Go ahead? [y/N]" in stderr
    if status:
        assert "not confirmed: nothing was changed" in stderr
        assert writes(fake) == []
    else:
        assert fake.segment_members("sg_1") == ["ct_1"]


def test_sync_writes_failed_adds_for_a_rerun_and_exits_1(
    fake: FakeInvent, members: list[str], tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1", "ct_4", "ct_404")

    result = invent(fake, "segments", "sync", "sg_1", "--ids", str(ids))

    assert result.exit_code == 1
    assert (tmp_path / "failed-sg_1.txt").read_text() == "ct_404\n"
    assert "failed adds written to failed-sg_1.txt (re-run the same sync, or: invent " in (
        result.stdout
    )
    assert "NotFoundError" in result.stdout
    assert not (tmp_path / "failed-removals-sg_1.txt").exists()
    no_traceback(result)


def test_a_sync_with_nothing_to_change_sends_no_write(
    fake: FakeInvent, members: list[str], tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", *members)

    result = invent(fake, "segments", "sync", "sg_1", "--ids", str(ids), "--exact")

    assert result.exit_code == 0, result.output
    assert "nothing to do: sg_1 already holds these ids" in result.stdout
    assert writes(fake) == []


def test_sync_of_an_unknown_segment_is_one_error_line(fake: FakeInvent, tmp_path: Path) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1")

    result = invent(fake, "segments", "sync", "sg_404", "--ids", str(ids))

    assert result.exit_code == 1
    assert result.stderr.startswith("error: 404 Not Found for GET /orgs/c/segments/sg_404")
    assert writes(fake) == []


def test_sync_with_a_wrong_key_exits_3(fake: FakeInvent, tmp_path: Path) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1")

    result = invent(fake, "segments", "sync", "sg_1", "--ids", str(ids), key="wrong-key-1234")

    assert result.exit_code == 3
    assert "authentication failed" in result.stderr
    no_traceback(result)


def test_sync_runs_in_the_sandbox(tmp_path: Path) -> None:
    ids = "".join(f"ct_{n}\n" for n in range(1, 21))

    result = invent(
        None, "--sandbox", "segments", "sync", "sg_1", "--ids", "-", "--exact", input=ids, key=None
    )

    assert result.exit_code == 0, result.output
    assert "sync sg_1: 20 added, 0 removed, 0 unchanged, 0 failed" in result.stdout


@pytest.mark.parametrize(
    ("signum", "status"),
    [pytest.param(signal.SIGINT, 130, marks=needs_sigint), (signal.SIGTERM, 143)],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_stops_a_sync_with_a_partial_summary(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    ids = write_ids(tmp_path / "ids.txt", *(f"ct_{n}" for n in range(1, 201)))
    journal = tmp_path / "journal.txt"
    with ThreadedFake(api_key=API_KEY, latency=0.05) as server:
        server.add_segment("VIP customers")
        server.add_contacts(200)
        env = {**os.environ, "INVENT_API_KEY": API_KEY}
        args = [str(INVENT), "--base-url", server.url, "segments", "sync", "sg_1"]
        args += ["--ids", str(ids), "--concurrency", "2", "--journal", str(journal)]
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        ) as proc:
            deadline = time.monotonic() + SUBPROCESS_TIMEOUT
            while len(tagged(server)) < 6 and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signum)
            stdout, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
        sent = len(tagged(server))

    assert proc.returncode == status, stderr
    label = "interrupted" if signum == signal.SIGINT else "terminated"
    assert f"({label})" in stdout
    assert sent < 100  # stopped promptly
    assert 4 <= len(journal.read_text().split()) < 100
    assert "re-run the same command to finish the sync" in stderr
    assert "Traceback" not in stderr


def test_the_plan_and_the_summary_read_as_documented() -> None:
    plan = SegmentSyncPlan(
        segment_id="sg_vip",
        org_id="c",
        strategy="add-only",
        reason="reading 1,000,000 members would cost 9,999 more requests",
        remove_others=False,
        members=1_000_000,
        inputs=30,
        to_add=29,
        to_remove=0,
        unchanged=1,
        duplicates=0,
        journal=0,
        read_requests=1,
        write_requests=29,
        verify_requests=0,
        requests=30,
        requests_sent=1,
        rate_per_minute=490.0,
        estimated_seconds=30 / 490 * 60,
    )

    assert plan_lines(plan, source="ids.txt") == [
        "segment sg_vip: 1,000,000 members now; 30 ids in ids.txt",
        "  to add     29",
        "  unchanged  1",
        f"  strategy   add-only: {plan.reason}",
        "  requests   30 (1 membership read, 29 writes): 3.7 s at 490/min",
    ]


# --------------------------------------------------------------------------- keys and auth


@pytest.mark.parametrize(
    "args",
    [("segments", "list"), ("contacts", "list"), ("contacts", "tag", "sg_1", "--ids", "-")],
)
def test_a_wrong_key_exits_3_with_a_clear_message(fake: FakeInvent, args: tuple[str, ...]) -> None:
    wrong = "wrong-key-123456"

    result = invent(fake, *args, input="ct_1\n", key=wrong)

    assert result.exit_code == 3
    assert result.stderr.startswith("error: authentication failed: 401 Unauthorized")
    assert "INVENT_API_KEY" in result.stderr
    assert wrong not in result.stdout + result.stderr
    no_traceback(result)


@pytest.mark.parametrize(
    "args", [("segments", "list"), ("contacts", "list"), ("segments", "create", "VIP")]
)
def test_a_call_the_rate_limit_refuses_for_an_hour_exits_4(
    fake: FakeInvent, args: tuple[str, ...]
) -> None:
    """Not only jobs: any command the API's rate limit stops ends with the same status."""
    fake.fail_next(100, status=429, retry_after="3600")

    result = invent(fake, *args)

    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("error: rate limited: 429 Too Many Requests")
    assert "the API asked to wait 3,600 s, longer than the 300 s" in result.stderr
    no_traceback(result)


def test_a_401_in_the_middle_of_a_job_aborts_it_with_exit_3(
    fake: FakeInvent, tmp_path: Path
) -> None:
    fake.fail_next(100, status=401, match=r"^POST ")  # the segment check (GET) still works
    ids = write_ids(tmp_path / "ids.txt", "ct_1", "ct_2", "ct_3")

    result = invent(fake, "contacts", "tag", "sg_1", "--ids", str(ids), "--concurrency", "1")

    assert result.exit_code == 3
    assert "(stopped early)" in result.stdout
    assert "error: authentication failed" in result.stderr
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 1  # nothing more was sent after the first 401
    no_traceback(result)


def test_a_missing_api_key_is_a_usage_error(fake: FakeInvent) -> None:
    result = invent(fake, "segments", "list", key=None)

    assert result.exit_code == 2
    assert "INVENT_API_KEY" in result.stderr
    assert fake.requests == []


def test_sandbox_needs_no_key(tmp_path: Path) -> None:
    ids = "".join(f"ct_{n}\n" for n in range(1, 11))

    result = invent(None, "--sandbox", "contacts", "tag", "sg_1", "--ids", "-", input=ids, key=None)

    assert result.exit_code == 0, result.output
    assert "10 succeeded, 0 failed" in result.stdout


def test_sandbox_and_base_url_cannot_be_combined(fake: FakeInvent) -> None:
    result = invent(fake, "--sandbox", "segments", "list")

    assert result.exit_code == 2
    assert "--sandbox and --base-url" in result.stderr


# --------------------------------------------------------------------------- listing


def test_contacts_list_jsonl_has_every_contact_in_the_sdk_form(fake: FakeInvent) -> None:
    fake.add_contacts(120)  # more than one page of 100

    result = invent(fake, "contacts", "list", "--format", "jsonl")

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == fake.contact_ids()
    assert rows[0]["channels"][0]["email"] == "contact1@example.com"
    assert rows[0]["created_at"].endswith("Z")
    assert "\x1b" not in result.stdout


def test_contacts_list_csv_has_a_header_and_honours_filters_and_limit(fake: FakeInvent) -> None:
    fake.add_contacts(4, segment_ids=["sg_1"])  # ct_6..ct_9

    result = invent(
        fake, "contacts", "list", "--segment-id", "sg_1", "--limit", "3", "--format", "csv"
    )

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["id"] for r in rows] == ["ct_6", "ct_7", "ct_8"]
    assert rows[0]["segment_ids"] == "sg_1"
    assert rows[0]["email"] == "contact6@example.com"
    assert rows[0]["blocked"] == "false"
    (request,) = fake.requests
    assert request.params["segment_id"] == "sg_1"


def test_contacts_list_table_shows_ids_names_and_flags(fake: FakeInvent) -> None:
    fake.add_contact(name="[bold]Jane[/bold]", email="jane@example.com", blocked=True)

    result = invent(fake, "contacts", "list", "--status", "blocked")

    assert result.exit_code == 0, result.output
    assert "ct_6" in result.stdout
    assert "[bold]Jane[/bold]" in result.stdout  # data is never read as markup
    assert "jane@example.com" in result.stdout
    assert "blocked" in result.stdout
    assert "\x1b" not in result.stdout
    assert fake.requests[0].params["status"] == "BLOCKED"


@pytest.mark.parametrize("fmt", ["table", "jsonl", "csv"])
def test_segments_list_in_each_format(fake: FakeInvent, fmt: str) -> None:
    fake.add_segment("Churned", "red")

    result = invent(fake, "segments", "list", "--format", fmt)

    assert result.exit_code == 0, result.output
    if fmt == "jsonl":
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [(r["id"], r["name"]) for r in rows] == [
            ("sg_1", "VIP customers"),
            ("sg_2", "Churned"),
        ]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert [(r["id"], r["color"]) for r in rows] == [("sg_1", "neutral"), ("sg_2", "red")]
    else:
        assert "VIP customers" in result.stdout
        assert "Churned" in result.stdout


def test_segments_create_prints_the_new_id(fake: FakeInvent) -> None:
    result = invent(fake, "segments", "create", "Newsletter", "--color", "TEAL")

    assert result.exit_code == 0, result.output
    new_id = result.stdout.strip()
    assert fake.segment(new_id).name == "Newsletter"
    assert fake.segment(new_id).color == "teal"


def test_segments_create_with_a_bad_colour_lists_the_valid_ones(fake: FakeInvent) -> None:
    result = invent(fake, "segments", "create", "Newsletter", "--color", "mauve")

    assert result.exit_code == 2
    assert "'mauve' is not one of 'red', 'orange'" in result.stderr
    assert fake.requests == []


# --------------------------------------------------------------------------- exit status

JOBS: Final = {
    "contacts tag": ("contacts", "tag", "sg_1"),
    "contacts untag": ("contacts", "untag", "sg_1"),
    "segments sync": ("segments", "sync", "sg_1"),
}
WRITES: Final = r"^(POST|DELETE) /orgs/c/contacts/"
Arrange = Callable[[FakeInvent, Path], tuple[str, ...]]
"""Sets a scene up for a job over ``ids``; returns more arguments for the command."""


def no_column(fake: FakeInvent, ids: Path) -> tuple[str, ...]:
    """A CSV file without ``--column``: a usage error before any request."""
    ids.write_text("email,id\na@example.com,ct_1\n", encoding="utf-8")
    return ()


def refused_writes(status: int, retry_after: str | None = None) -> Arrange:
    """The API answers every add and removal with ``status``: the job is aborted."""

    def arrange(fake: FakeInvent, ids: Path) -> tuple[str, ...]:
        fake.fail_next(100, status=status, retry_after=retry_after, match=WRITES)
        return ("--concurrency", "1")

    return arrange


def refused_reads(fake: FakeInvent, ids: Path) -> tuple[str, ...]:
    """The API's first answer (the segment check) is a 429 asking to wait an hour."""
    fake.fail_next(100, status=429, retry_after="3600", match=r"^GET ")
    return ()


def one_unknown_id(fake: FakeInvent, ids: Path) -> tuple[str, ...]:
    """One id of the input is no contact: its write fails (404), the others succeed."""
    write_ids(ids, "ct_1", "ct_404")
    return ()


def as_is(fake: FakeInvent, ids: Path) -> tuple[str, ...]:
    """Contacts that exist, nothing refused."""
    return ()


EXIT_CASES: Final[dict[str, tuple[int, Arrange]]] = {
    "ok": (0, as_is),
    "some failed": (1, one_unknown_id),
    "usage": (2, no_column),
    "401": (3, refused_writes(401)),
    "403": (3, refused_writes(403)),
    "rate limited, a write": (4, refused_writes(429, "3600")),
    "rate limited, a read": (4, refused_reads),
}
"""Every documented exit status (``docs/cli.md``) of ``contacts tag/untag`` and ``segments
sync``, and how to provoke it. 130 and 143 need a real process and a signal: the two signal
tests above (tag, sync) and the one below (untag, the demo). The demo ends with 0 (see
``test_demo_tags_every_contact_without_failures``), 2 and the signals' statuses; nothing
outside it can make it fail, nor refuse its key or limit its rate (its own fake)."""


@pytest.mark.parametrize("case", EXIT_CASES)
@pytest.mark.parametrize("command", JOBS)
def test_every_job_command_ends_with_the_documented_exit_status(
    fake: FakeInvent, tmp_path: Path, command: str, case: str
) -> None:
    status, arrange = EXIT_CASES[case]
    ids = write_ids(tmp_path / "ids.txt", "ct_1", "ct_2")
    extra = arrange(fake, ids)

    result = invent(fake, *JOBS[command], "--ids", str(ids), *extra)

    assert result.exit_code == status, result.output
    no_traceback(result)
    if status == 4:
        assert "error: rate limited: 429 Too Many Requests" in result.stderr
        assert "the API asked to wait 3,600 s, longer than the 300 s" in result.stderr


def test_the_demo_ends_with_the_documented_exit_status_for_bad_usage() -> None:
    result = invent(None, "demo", "--contacts", "0", key=None)

    assert result.exit_code == 2, result.output


def stop_a_job(args: list[str], signum: signal.Signals) -> subprocess.CompletedProcess[str]:
    """Run ``invent <args>`` (slowly) and send ``signum`` once the job is under way."""
    demo = args[0] == "demo"
    with ThreadedFake(api_key=API_KEY, latency=0.05) as server:
        server.add_segment("VIP customers")
        write_ids(Path("ids.txt"), *server.add_contacts(200, segment_ids=["sg_1"]))
        env = {**os.environ, "INVENT_API_KEY": API_KEY}
        base = [] if demo else ["--base-url", server.url]
        with subprocess.Popen(
            [str(INVENT), *base, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        ) as proc:
            assert proc.stdout is not None
            deadline = time.monotonic() + SUBPROCESS_TIMEOUT
            if demo:  # its fake runs inside it: wait for its first line, then a little
                proc.stdout.readline()
                time.sleep(1.0)
            while len(server.requests) < 6 and not demo and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signum)
            stdout, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
        return subprocess.CompletedProcess(args, proc.returncode, stdout.decode(), stderr.decode())


@pytest.mark.parametrize(
    ("signum", "status"),
    [pytest.param(signal.SIGINT, 130, marks=needs_sigint), (signal.SIGTERM, 143)],
    ids=["SIGINT", "SIGTERM"],
)
@pytest.mark.parametrize(
    "args",
    [["contacts", "untag", "sg_1", "--ids", "ids.txt", "--concurrency", "2"], ["demo"]],
    ids=["contacts untag", "demo"],
)
def test_a_signal_ends_untag_and_the_demo_with_the_documented_exit_status(
    args: list[str], signum: signal.Signals, status: int
) -> None:
    done = stop_a_job(args, signum)  # contacts tag and segments sync: the tests above

    assert done.returncode == status, done.stderr
    said = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert said in [line.partition(":")[0] for line in done.stderr.splitlines()]
    summary = "items      " if args == ["demo"] else f"({said.split()[0]})"
    assert summary in done.stdout  # the job had started: its partial summary is shown
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("page", ["docs/cli.md", "README.md"])
def test_the_exit_status_table_lists_exactly_the_exit_constants(page: str) -> None:
    text = (Path(__file__).parent.parent / page).read_text(encoding="utf-8")
    table = text.split("| Status | Meaning |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    documented = [int(row.split("|")[1]) for row in table.splitlines()]
    constants = {v for k, v in vars(runtime).items() if k.startswith("EXIT_")}

    assert sorted(documented) == sorted(constants)


# --------------------------------------------------------------------------- demo and script


def test_demo_tags_every_contact_without_failures() -> None:
    result = invent(None, "demo", "--contacts", "200", "--rate-limit", "60000", key=None)

    assert result.exit_code == 0, result.output
    assert "items      200 (200 succeeded, 0 failed, 0 skipped)" in result.stdout
    assert "failures   0" in result.stdout
    assert "segment sg_1 has 200 contacts, 200 expected: OK" in result.stdout
    assert "of the 60,000/min limit" in result.stdout


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``invent`` console script."""
    return subprocess.run(
        [str(INVENT), *args],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env=env,
        check=False,
    )


def test_the_installed_script_runs_the_sandbox() -> None:
    env = {k: v for k, v in os.environ.items() if k != "INVENT_API_KEY"}

    done = run_script("--sandbox", "segments", "list", "--format", "jsonl", env=env)

    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert (row["id"], row["name"]) == ("sg_1", "VIP customers")


def test_the_installed_script_reports_its_version() -> None:
    from invent_async import __version__

    done = run_script("--version")

    assert (done.returncode, done.stdout.strip()) == (0, f"invent {__version__}")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table"])
def test_a_closed_pipe_ends_contacts_list_quietly_with_exit_0(fmt: str) -> None:
    with ThreadedFake(api_key=API_KEY) as server:
        server.add_contacts(1000)  # far more output than a pipe holds
        env = {**os.environ, "INVENT_API_KEY": API_KEY, "COLUMNS": "120"}
        args = [str(INVENT), "--base-url", server.url, "contacts", "list", "--format", fmt]
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        ) as proc:
            assert proc.stdout is not None
            head = [proc.stdout.readline() for _ in range(3)]  # `| head -3`
            proc.stdout.close()
            _, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)

    assert all(head)
    assert proc.returncode == 0, stderr
    assert stderr == ""


def test_a_closed_pipe_after_a_tag_job_keeps_its_exit_status_and_failed_ids(
    tmp_path: Path,
) -> None:
    ids = tmp_path / "ids.txt"
    failed = tmp_path / "failed.txt"
    with ThreadedFake(api_key=API_KEY) as server:
        server.add_segment("VIP customers")
        known = server.add_contacts(3)
        ids.write_text("\n".join([*known, "ct_missing"]) + "\n")
        env = {**os.environ, "INVENT_API_KEY": API_KEY}
        args = [str(INVENT), "--base-url", server.url, "contacts", "tag", "sg_1", "--quiet"]
        args += ["--ids", str(ids), "--failed-out", str(failed)]
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        ) as proc:
            assert proc.stdout is not None
            proc.stdout.close()  # `| head -0`: nobody reads the summary
            _, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)

    assert proc.returncode == 1, stderr  # one id failed: not a clean 0
    assert failed.read_text() == "ct_missing\n"
    assert f"failed ids written to {failed}" in stderr
    assert "Traceback" not in stderr


def stop_a_tag_job(
    ids: Path, journal: Path | None, signum: signal.Signals
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the script over ``ids`` (slowly) and send ``signum`` once a few ids are done.

    Returns:
        The finished process and how many tag requests the server had received by then.
    """
    with ThreadedFake(api_key=API_KEY, latency=0.05) as server:
        server.add_segment("VIP customers")
        server.add_contacts(200)
        env = {**os.environ, "INVENT_API_KEY": API_KEY}
        args = [str(INVENT), "--base-url", server.url, "contacts", "tag", "sg_1"]
        args += ["--ids", str(ids), "--concurrency", "2"]
        args += ["--journal", str(journal)] if journal is not None else []
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        ) as proc:
            deadline = time.monotonic() + SUBPROCESS_TIMEOUT
            while len(tagged(server)) < 6 and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signum)
            stdout, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
        done = subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)
        return done, len(tagged(server))


@pytest.mark.parametrize(
    ("signum", "status"),
    [pytest.param(signal.SIGINT, 130, marks=needs_sigint), (signal.SIGTERM, 143)],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_stops_the_job_with_a_partial_summary_and_the_failed_ids(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_404", *(f"ct_{n}" for n in range(1, 201)))
    journal = tmp_path / "journal.txt"

    done, sent = stop_a_tag_job(ids, journal, signum)

    assert done.returncode == status, done.stderr
    label = "interrupted" if signum == signal.SIGINT else "terminated"
    assert f"({label})" in done.stdout
    label = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert sent < 100  # stopped promptly
    assert (tmp_path / "failed-sg_1.txt").read_text() == "ct_404\n"
    assert 4 <= len(journal.read_text().split()) < 100
    assert f"{label}: re-run the same command to resume from {journal}" in done.stderr
    assert "Traceback" not in done.stderr


@needs_sigint
def test_an_interrupted_job_without_a_journal_suggests_one(tmp_path: Path) -> None:
    ids = write_ids(tmp_path / "ids.txt", *(f"ct_{n}" for n in range(1, 201)))

    done, sent = stop_a_tag_job(ids, None, signal.SIGINT)

    assert done.returncode == 130, done.stderr
    assert "interrupted: re-run the same command to finish (it sends every id again" in done.stderr
    assert "with --journal FILE a job keeps its place" in done.stderr
    assert sent < 100


@needs_sigint
def test_the_rate_after_an_interruption_counts_finished_ids_only(tmp_path: Path) -> None:
    ids = write_ids(tmp_path / "ids.txt", *(f"ct_{n}" for n in range(1, 201)))

    done, _ = stop_a_tag_job(ids, None, signal.SIGINT)

    summary = re.search(
        r"(\d+) succeeded, (\d+) failed, (\d+) skipped .*\ntime ([\d.]+)s, ([\d.,]+) ids/s",
        done.stdout,
    )
    assert summary is not None, done.stdout
    succeeded, failed, skipped = (int(summary[n]) for n in (1, 2, 3))
    seconds, rate = float(summary[4]), float(summary[5].replace(",", ""))
    assert skipped > 0  # the ids in flight, cancelled
    assert rate == pytest.approx((succeeded + failed) / seconds, rel=0.05, abs=0.1)


@needs_sigint
def test_an_interrupted_rerun_leaves_its_input_file_alone(tmp_path: Path) -> None:
    ids = write_ids(tmp_path / "failed-sg_1.txt", "ct_404", *(f"ct_{n}" for n in range(1, 201)))
    before = ids.read_text()

    done, _ = stop_a_tag_job(ids, tmp_path / "journal.txt", signal.SIGINT)

    assert done.returncode == 130, done.stderr
    assert ids.read_text() == before
    assert "is the input of this job: left as it is" in done.stderr


def full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is already full: a process writing to it blocks until it is read."""
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    try:
        while True:
            os.write(writer, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(writer, True)  # the flag belongs to the pipe, which the child shares
    return reader, writer


@needs_sigint
def test_a_second_ctrl_c_during_the_summary_cannot_lose_the_failed_ids(tmp_path: Path) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_404", *(f"ct_{n}" for n in range(1, 201)))
    failed = tmp_path / "failed-sg_1.txt"
    reader, writer = full_pipe()
    drained = bytearray()

    def drain() -> None:
        while chunk := os.read(reader, 65536):
            drained.extend(chunk)

    with ThreadedFake(api_key=API_KEY, latency=0.05) as server:
        server.add_segment("VIP customers")
        server.add_contacts(200)
        env = {**os.environ, "INVENT_API_KEY": API_KEY}
        args = [str(INVENT), "--base-url", server.url, "contacts", "tag", "sg_1"]
        args += ["--ids", str(ids), "--concurrency", "2"]
        with subprocess.Popen(args, stdout=writer, stderr=subprocess.PIPE, env=env) as proc:
            os.close(writer)
            deadline = time.monotonic() + SUBPROCESS_TIMEOUT
            while len(tagged(server)) < 6 and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)  # stop the job; its summary then blocks on stdout
            deadline = time.monotonic() + 5.0
            while not failed.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)  # a second Ctrl-C while the summary is printed
            reading = threading.Thread(target=drain, daemon=True)
            reading.start()
            _, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
            reading.join(SUBPROCESS_TIMEOUT)
    os.close(reader)

    assert proc.returncode == 130, stderr
    assert failed.read_text() == "ct_404\n"
    assert not list(tmp_path.glob(".failed-sg_1.txt.*"))  # no temporary file left behind
    assert b"Traceback" not in stderr


# --------------------------------------------------------------------------- helpers


def test_a_regular_file_is_counted_first_and_stdin_is_not(tmp_path: Path) -> None:
    ids = write_ids(tmp_path / "ids.txt", "ct_1", "", "ct_2", "ct_1")

    from_file = open_ids(str(ids), column=None, stdin=io.StringIO())
    from_stdin = open_ids("-", column=None, stdin=io.StringIO("ct_1\nct_2\n"))
    try:
        assert (from_file.total, list(from_file.ids)) == (3, ["ct_1", "ct_2", "ct_1"])
        assert (from_stdin.total, list(from_stdin.ids)) == (None, ["ct_1", "ct_2"])
    finally:
        from_file.close()
        from_stdin.close()


def test_decoding_names_the_first_line_that_is_not_utf8() -> None:
    lines = decode_lines([b"\xef\xbb\xbfct_1\n", b"ct_2\n", b"ct_\xff\n"], name="ids.txt")

    assert [next(lines), next(lines)] == ["ct_1\n", "ct_2\n"]
    with pytest.raises(InputError, match=r"^ids.txt: line 3 is not valid UTF-8 text$"):
        next(lines)


def test_line_ids_skip_blank_lines_and_whitespace() -> None:
    assert list(iter_line_ids(["a\n", "  \n", "\tb \r\n", "c"])) == ["a", "b", "c"]


def test_csv_ids_find_the_column_case_insensitively_and_skip_blanks() -> None:
    lines = ["Name,ID\n", "a,ct_1\n", "b,\n", "c\n", 'd," ct_2 "\n']

    assert list(iter_csv_ids(lines, "id", name="x")) == ["ct_1", "ct_2"]


def test_csv_ids_without_a_header_are_an_input_error() -> None:
    with pytest.raises(InputError, match="no CSV header row"):
        iter_csv_ids([], "id", name="empty.csv")


def test_background_ids_read_ahead_only_a_bounded_amount() -> None:
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        while True:
            pulled += 1
            yield f"ct_{pulled}"

    async def take_three() -> list[str]:
        reader = BackgroundIds(batched(endless(), 4), buffer=16)
        try:
            first = [await anext(reader) for _ in range(3)]
            await asyncio.sleep(0.1)  # let the thread run ahead as far as it can
            return first
        finally:
            reader.close()

    assert asyncio.run(take_three()) == ["ct_1", "ct_2", "ct_3"]
    # the batch taken and the ids pending (each at most the buffer and a batch), one batch read
    assert pulled <= 2 * (16 + 4) + 4


def test_background_ids_hand_over_an_id_from_a_slow_pipe_at_once() -> None:
    # Ids are read in blocks of 64 KiB, but an id written to a pipe that then goes quiet (a
    # producer writing one id now and then) is not held back for a block to fill.
    read_end, write_end = os.pipe()
    reading = os.fdopen(read_end, "rb")
    writing = os.fdopen(write_end, "wb", buffering=0)

    async def take() -> list[str]:
        reader = BackgroundIds(line_id_batches(reading, name="<pipe>"))
        try:
            writing.write(b"ct_1\n")  # the pipe then stays open and quiet
            with anyio.fail_after(5):
                first = await anext(reader)
            writing.write(b"ct_2\nct_3")  # the last line without its line end
            writing.close()
            return [first, *[i async for i in reader]]
        finally:
            reader.close()

    try:
        assert asyncio.run(take()) == ["ct_1", "ct_2", "ct_3"]
    finally:
        writing.close()
        reading.close()


def test_line_batches_are_the_ids_line_by_line_reading_finds(tmp_path: Path) -> None:
    # The block reader against the line reader it replaced, on lines that straddle blocks,
    # blank lines, whitespace, CRLF, a BOM, non-ASCII ids and a last line without its end.
    lines = [f"  ct_{n}é\r\n" if n % 7 else "\n" for n in range(40_000)]
    data = "\ufeff".encode() + "".join(lines).encode() + b"\tct_last "
    path = tmp_path / "ids.txt"
    path.write_bytes(data)

    with path.open("rb") as stream:
        batches = list(line_id_batches(stream, name="ids.txt"))
    with path.open("rb") as stream:
        expected = list(iter_line_ids(decode_lines(stream, name="ids.txt")))

    assert len(batches) > 1
    assert [i for batch in batches for i in batch] == expected
    assert (expected[0], expected[-1]) == ("ct_1é", "ct_last")


def test_a_line_without_its_end_over_many_blocks_is_one_id(tmp_path: Path) -> None:
    # a file with no line feed at all (old Mac line ends): read block by block, joined once
    path = tmp_path / "ids.txt"
    path.write_bytes(b"ct_" + b"x" * 300_000 + b"\r")

    with path.open("rb") as stream:
        batches = list(line_id_batches(stream, name="ids.txt"))

    assert batches == [["ct_" + "x" * 300_000]]


def _stdin_pipe() -> tuple[io.TextIOWrapper, IO[bytes]]:
    """A stdin whose bytes come from a pipe the test writes to (and keeps open)."""
    read_end, write_end = os.pipe()
    return io.TextIOWrapper(os.fdopen(read_end, "rb")), os.fdopen(write_end, "wb", buffering=0)


def test_csv_ids_from_a_pipe_are_handed_on_as_they_come() -> None:
    stdin, writing = _stdin_pipe()
    got: list[list[str]] = []
    try:
        writing.write(b"id,name\nc1,x\n")  # the producer then pauses, the pipe open
        source = open_ids("-", column="id", stdin=stdin)  # (reads the header at once)
        reader = threading.Thread(target=lambda: got.append(next(source.batches)), daemon=True)
        reader.start()
        reader.join(5)
        assert got == [["c1"]]  # not held back for a batch of 4,096 to fill
    finally:
        writing.close()
        stdin.close()


def test_csv_ids_before_a_bad_line_of_a_pipe_are_used_before_the_error() -> None:
    stdin, writing = _stdin_pipe()
    writing.write(b"id,name\nc1,x\nc2,y\n\xff\xfe,z\n")
    writing.close()
    seen: list[str] = []

    def read() -> None:
        for batch in open_ids("-", column="id", stdin=stdin).batches:
            seen.extend(batch)

    try:
        with pytest.raises(InputError, match="line 4 is not valid UTF-8"):
            read()
    finally:
        stdin.close()
    assert seen == ["c1", "c2"]


def test_line_batches_name_the_line_that_is_not_utf8_after_the_ids_before_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(b"".join(b"ct_%d\n" % n for n in range(1, 20_001)) + b"ct_\xff\nct_x\n")
    seen: list[str] = []

    def read() -> None:
        with path.open("rb") as stream:
            for batch in line_id_batches(stream, name="ids.txt"):
                seen.extend(batch)

    with pytest.raises(InputError) as raised:
        read()

    assert str(raised.value) == "ids.txt: line 20001 is not valid UTF-8 text"
    assert seen == [f"ct_{n}" for n in range(1, 20_001)]


def test_background_ids_raise_the_reader_error() -> None:
    def broken() -> Iterator[str]:
        yield "ct_1"
        raise InputError("bad line")

    async def drain() -> list[str]:
        reader = BackgroundIds(batched(broken(), 1))
        try:
            return [i async for i in reader]
        finally:
            reader.close()

    with pytest.raises(InputError, match="bad line"):
        asyncio.run(drain())


def test_failure_rows_show_the_api_message_and_status() -> None:
    error = NotFoundError(
        "404 Not Found for POST /orgs/c/contacts/ct_9/segments/sg_1: nope",
        status=404,
        method="POST",
        path="/orgs/c/contacts/ct_9/segments/sg_1",
        body={"message": "Contact 'ct_9' not found"},
        request_id="req_1",
        headers={},
    )

    row = failure_row(BulkFailure(contact_id="ct_9", error=error, attempts=1))

    assert row == ("ct_9", "NotFoundError", "404", "Contact 'ct_9' not found")
    assert failure_row(BulkFailure(contact_id="x", error=ValueError("bad id"), attempts=0)) == (
        "x",
        "ValueError",
        "",
        "bad id",
    )


def test_job_summary_counts_every_outcome() -> None:
    report = BulkReport(
        total=10,
        succeeded=6,
        failed=1,
        skipped=3,
        failures=(),
        cancelled_ids=("ct_9",),
        retries=1,
        rate_limited=2,
        elapsed=2.0,
        cancelled=True,
    )

    lines = job_summary(
        report, action="tag", segment_id="sg_1", skipped={"journal": 2}, stopped="interrupted"
    )

    assert lines == [
        "tag sg_1: 6 succeeded, 1 failed, 3 skipped of 10 ids (interrupted)",
        "time 2.00s, 4.5 ids/s, 1 retry, 2 rate-limited (429)",  # 9 finished: 1 cancelled
        "skipped: 2 already done (journal), 1 cancelled while in flight",
    ]


def test_csv_headers_are_the_record_fields(fake: FakeInvent) -> None:
    contact = fake.contact("ct_1")
    segment = fake.segment("sg_1")

    assert CONTACT_VIEW.header == tuple(contact_record(contact))
    assert SEGMENT_VIEW.header == tuple(segment_record(segment))


def test_the_default_failed_file_name_is_safe() -> None:
    assert default_failed_path("sg/../x y") == Path("failed-sg_.._x_y.txt")


def test_an_interrupted_demo_is_compared_with_the_ideal_time_of_the_items_done() -> None:
    report = BulkReport(
        total=102,
        succeeded=99,
        failed=1,
        skipped=2,
        failures=(),
        cancelled_ids=("ct_101", "ct_102"),
        retries=0,
        rate_limited=0,
        elapsed=1.25,
        cancelled=True,
    )

    lines = demo_summary(report, None, contacts=3000, rate=6000.0)

    assert lines[1] == (
        "time       1.25s (at exactly the limit: 1.00s for the 100 of 3,000 items done)"
    )


@needs_sigint
def test_a_ctrl_c_after_the_job_has_ended_is_raised_not_swallowed() -> None:
    async def attach_a_finished_job(signals: StopSignals) -> None:
        task = asyncio.create_task(asyncio.sleep(0))
        await task
        signals.attach(task)

    def job_then_a_signal(signals: StopSignals) -> None:
        with signals.hold():
            asyncio.run(attach_a_finished_job(signals))
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # e.g. while saving
            time.sleep(0)  # the handler runs here, between two bytecodes

    with StopSignals() as signals:
        with pytest.raises(KeyboardInterrupt):
            job_then_a_signal(signals)
        stopped_the_job = signals.first

    assert stopped_the_job is None  # it did not count as the signal that stopped the job


def test_the_failed_ids_file_gets_the_usual_mode_or_keeps_its_own(tmp_path: Path) -> None:
    fresh, existing = tmp_path / "fresh.txt", tmp_path / "existing.txt"
    existing.write_text("old\n")
    existing.chmod(0o640)
    umask = os.umask(0o022)
    try:
        jobs.write_ids(fresh, ("ct_1",))
        jobs.write_ids(existing, ("ct_2",))
    finally:
        os.umask(umask)

    assert (fresh.stat().st_mode & 0o777, fresh.read_text()) == (0o644, "ct_1\n")
    assert (existing.stat().st_mode & 0o777, existing.read_text()) == (0o640, "ct_2\n")


# --------------------------------------------------------------------------- global options


@pytest.mark.parametrize(
    "args",
    [
        ["--sandbox", "contacts", "tag", "sg_1", "--ids", "ids.txt"],
        ["contacts", "--sandbox", "tag", "sg_1", "--ids", "ids.txt"],
        ["contacts", "tag", "--sandbox", "sg_1", "--ids", "ids.txt"],
        ["contacts", "tag", "sg_1", "--ids", "ids.txt", "--sandbox"],
        ["contacts", "tag", "sg_1", "--sandbox", "--ids", "ids.txt", "--org", "c"],
        ["contacts", "tag", "sg_1", "--ids", "ids.txt", "--org=c", "--sandbox", "-vv"],
    ],
    ids=["before", "after the group", "after the command", "at the end", "between", "mixed"],
)
def test_a_global_option_means_the_same_wherever_it_stands(args: list[str], tmp_path: Path) -> None:
    write_ids(tmp_path / "ids.txt", "ct_1", "ct_2")

    result = invent(None, *args, key=None)

    assert result.exit_code == 0, result.output
    assert "tag sg_1: 2 succeeded, 0 failed, 0 skipped of 2 ids" in result.stdout


def test_a_global_option_after_the_command_reaches_the_api(fake: FakeInvent) -> None:
    fake.add_segment("VIP")
    env = {"INVENT_API_KEY": API_KEY, "COLUMNS": "120"}

    result = cli_runner().invoke(
        cli, ["segments", "list", "--base-url", fake.url, "--org", "c"], env=env
    )

    assert result.exit_code == 0, result.output
    assert "VIP" in result.stdout
    assert [r.path for r in fake.requests] == ["/orgs/c/segments"]


def test_the_missing_key_advice_works_where_the_user_adds_it(tmp_path: Path) -> None:
    write_ids(tmp_path / "ids.txt", "ct_1")
    args = ["contacts", "tag", "sg_1", "--ids", "ids.txt"]

    refused = invent(None, *args, key=None)
    followed = invent(None, *args, "--sandbox", key=None)

    assert refused.exit_code == 2
    assert "add --sandbox" in refused.stderr
    assert followed.exit_code == 0, followed.output


def test_a_value_that_looks_like_a_global_option_stays_with_its_option(tmp_path: Path) -> None:
    (tmp_path / "--sandbox").write_text("ct_1\n", encoding="utf-8")  # a file of that name

    result = invent(None, "--sandbox", "contacts", "tag", "sg_1", "--ids", "--sandbox", key=None)

    assert result.exit_code == 0, result.output
    assert "of 1 id" in result.stdout


def test_after_a_double_dash_nothing_is_taken_for_a_global_option() -> None:
    result = invent(None, "--sandbox", "segments", "create", "--", "--org", key=None)

    assert result.exit_code == 0, result.output
    assert "created segment '--org'" in result.stderr  # the name, not an option
