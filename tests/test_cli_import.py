"""``invent contacts import``, through click's ``CliRunner`` against a FakeInvent served from a
background thread (``--base-url`` plus ``INVENT_API_KEY``), as in ``test_cli.py``; Ctrl-C in a
real process of the installed script. The file reading (formats, line numbers) is tested
directly too.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import signal
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from _harness import API_KEY, ThreadedFake, needs_sigint
from _harness import invent as run_invent
from click.testing import Result

from invent_async.cli._import_input import LineMap, Unparsed, format_of, row_batches
from invent_async.cli._runtime import InputError
from invent_async.testing import FakeInvent

SUBPROCESS_TIMEOUT: Final = 30.0
INVENT: Final = Path(sysconfig.get_path("scripts")) / "invent"
IMPORT: Final = "/orgs/c/contacts/bulk"
DRY: Final = "/orgs/c/contacts/bulk/dry"


@pytest.fixture
def fake() -> Iterator[FakeInvent]:
    """Segment sg_1, and contact ct_1 (ann@example.com, in no segment)."""
    with ThreadedFake(api_key=API_KEY) as server:
        server.add_segment("VIP customers")
        server.add_contact(name="Ann", email="ann@example.com", channel_type="email")
        yield server


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own directory: the default row files land there."""
    monkeypatch.chdir(tmp_path)


invent = functools.partial(run_invent, columns=160)
"""``invent`` of the harness, 160 columns wide (the problem table fits)."""


def imported(fake: FakeInvent, path: str = IMPORT) -> list[dict[str, Any]]:
    """The rows of every request to ``path`` the fake answered, in arrival order."""
    return [
        row
        for r in fake.requests
        if r.path == path and r.fault is None
        for row in r.json["channels"]
    ]


def members_by_email(fake: FakeInvent) -> dict[str, str | None]:
    """The emails of sg_1's members, with their names."""
    found = {}
    for contact_id in fake.segment_members("sg_1"):
        contact = fake.contact(contact_id)
        for channel in contact.channels:
            if channel.email:
                found[channel.email] = contact.name
    return found


def clean(result: Result) -> None:
    """Neither output stream shows a traceback or the API key."""
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text
        assert API_KEY not in text


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- formats


def test_a_csv_file_is_imported_with_its_columns_matched_by_name(
    fake: FakeInvent, tmp_path: Path
) -> None:
    (tmp_path / "people.csv").write_text(
        "\ufeffE-mail,Full Name,Notes\n"
        "ann@example.com,Ann Again,vip\n"
        "bo@example.com,Bo,\n"
        "cy@example.com,,met at a fair\n",
        encoding="utf-8",
    )

    result = invent(fake, "contacts", "import", "people.csv", "--segment", "sg_1")

    assert result.exit_code == 0, result.output
    assert "import into sg_1: 2 created, 1 updated, 0 invalid, 0 failed" in result.stdout
    assert members_by_email(fake) == {
        "ann@example.com": "Ann",  # updated: put into the segment (the fake keeps its name)
        "bo@example.com": "Bo",
        "cy@example.com": None,
    }
    assert imported(fake)[0] == {"type": "email", "email": "ann@example.com", "name": "Ann Again"}
    assert not list(tmp_path.glob("*-import-*"))  # nothing failed, nothing invalid
    clean(result)


def test_column_names_the_email_column_and_name_column_the_name(
    fake: FakeInvent, tmp_path: Path
) -> None:
    (tmp_path / "export.csv").write_text(
        "Home email;Work mail;Who\nann@home.example;ann@example.com;Ann W\n", encoding="utf-8"
    )

    result = invent(
        fake, "contacts", "import", "export.csv", "--segment", "sg_1",
        "--column", "work MAIL", "--name-column", "who",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert imported(fake) == [{"type": "email", "email": "ann@example.com", "name": "Ann W"}]


def test_json_lines_are_imported_with_their_fields(fake: FakeInvent, tmp_path: Path) -> None:
    (tmp_path / "rows.ndjson").write_text(
        '{"email": "bo@example.com", "name": "Bo", "plan": "pro"}\n'
        "\n"
        '{"type": "custom", "user_id": "crm-7", "name": "Cy"}\n'
        '"dee@example.com"\n',
        encoding="utf-8",
    )

    result = invent(fake, "contacts", "import", "rows.ndjson", "--segment", "sg_1")

    assert result.exit_code == 0, result.output
    assert imported(fake) == [
        {"type": "email", "email": "bo@example.com", "name": "Bo"},  # "plan" ignored
        {"type": "custom", "user_id": "crm-7", "name": "Cy"},
        {"type": "email", "email": "dee@example.com"},
    ]
    assert len(fake.segment_members("sg_1")) == 3


def test_emails_from_stdin_one_per_line(fake: FakeInvent) -> None:
    result = invent(
        fake, "contacts", "import", "-", "--segment", "sg_1",
        input="bo@example.com\n\n  cy@example.com  \n",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert sorted(members_by_email(fake)) == ["bo@example.com", "cy@example.com"]
    assert "2 created, 0 updated" in result.stdout


def test_format_overrides_the_extension(fake: FakeInvent, tmp_path: Path) -> None:
    (tmp_path / "export.dat").write_text("email,name\nbo@example.com,Bo\n", encoding="utf-8")

    result = invent(
        fake, "contacts", "import", "export.dat", "--segment", "sg_1", "--format", "csv"
    )

    assert result.exit_code == 0, result.output
    assert members_by_email(fake) == {"bo@example.com": "Bo"}


def test_root_options_work_after_the_command_and_the_sandbox_needs_no_key() -> None:
    result = invent(
        None, "contacts", "import", "-", "--segment", "sg_1", "--sandbox", "--org", "c",
        input="bo@example.com\ncy@example.com\n", key=None,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "import into sg_1: 2 created" in result.stdout


# --------------------------------------------------------------------------- dry run, journal


def test_a_dry_run_prints_the_plan_and_sends_only_dry_runs(
    fake: FakeInvent, tmp_path: Path
) -> None:
    (tmp_path / "rows.txt").write_text(
        "ann@example.com\nbo@example.com\ncy@example.com\n", encoding="utf-8"
    )

    result = invent(fake, "contacts", "import", "rows.txt", "--segment", "sg_1", "--dry-run")

    assert result.exit_code == 0, result.output
    assert {r.path for r in fake.requests} == {DRY}
    assert fake.segment_members("sg_1") == []
    assert fake.contact_ids() == ["ct_1"]
    lines = result.stdout.splitlines()
    assert lines[0] == "dry run of rows.txt into sg_1: 3 rows"
    assert lines[1:4] == ["  would create  2", "  would update  1", "  invalid       0"]
    assert re.fullmatch(r"  requests      1 to import: [\d.]+ s at 4\d\d/min", lines[4])
    assert lines[-1] == "dry run: nothing was changed (1 request sent)"


def test_a_journal_lets_a_rerun_skip_the_rows_already_imported(
    fake: FakeInvent, tmp_path: Path
) -> None:
    (tmp_path / "first.txt").write_text("bo@example.com\ncy@example.com\n", encoding="utf-8")
    (tmp_path / "all.txt").write_text(
        "bo@example.com\ncy@example.com\ndee@example.com\n", encoding="utf-8"
    )
    args = ("contacts", "import", "--segment", "sg_1", "--journal", "journal.txt")

    assert invent(fake, *args, "first.txt").exit_code == 0
    fake.clear_requests()
    result = invent(fake, *args, "all.txt")

    assert result.exit_code == 0, result.output
    assert imported(fake) == [{"type": "email", "email": "dee@example.com"}]
    assert "1 created, 0 updated, 0 invalid, 0 failed, 2 skipped of 3 rows" in result.stdout
    assert "skipped: 2 already imported (journal)" in result.stdout
    assert fake.contact_ids() == ["ct_1", "ct_2", "ct_3", "ct_4"]  # none created twice


# --------------------------------------------------------------------------- failed and invalid


@pytest.mark.parametrize(
    ("name", "content", "failed_name", "failed_content"),
    [
        (
            "rows.csv",
            "email,name\nbo@example.com,Bo\ncy@example.com,\n",
            "failed-import-sg_1.csv",
            "email,name,user_id,contact_id,type\nbo@example.com,Bo,,,email\n"
            "cy@example.com,,,,email\n",
        ),
        (
            "rows.jsonl",
            '{"email": "bo@example.com", "name": "Bo"}\n"cy@example.com"\n',
            "failed-import-sg_1.jsonl",
            '{"email": "bo@example.com", "name": "Bo", "type": "email"}\n'
            '{"type": "email", "email": "cy@example.com"}\n',
        ),
        (
            "rows.txt",
            "bo@example.com\ncy@example.com\n",
            "failed-import-sg_1.txt",
            "bo@example.com\ncy@example.com\n",
        ),
    ],
    ids=["csv", "jsonl", "txt"],
)
def test_failed_rows_are_written_in_the_input_format_and_a_rerun_imports_them(
    fake: FakeInvent,
    tmp_path: Path,
    name: str,
    content: str,
    failed_name: str,
    failed_content: str,
) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    fake.fail_next(1, status=503, match=rf"^POST {IMPORT}$")

    first = invent(fake, "contacts", "import", name, "--segment", "sg_1")

    assert first.exit_code == 1, first.output
    assert "0 created, 0 updated, 0 invalid, 2 failed" in first.stdout
    failed = tmp_path / failed_name
    assert failed.read_text(encoding="utf-8") == failed_content
    assert f"2 failed rows written to {failed_name}" in first.stdout
    assert f"invent contacts import {failed_name} --segment sg_1" in first.stdout
    assert "503 InternalServerError: Injected failure (503)" in first.stdout  # the table
    assert fake.segment_members("sg_1") == []
    clean(first)

    second = invent(fake, "contacts", "import", failed_name, "--segment", "sg_1")

    assert second.exit_code == 0, second.output
    assert sorted(members_by_email(fake)) == ["bo@example.com", "cy@example.com"]


def test_invalid_rows_are_reported_with_their_lines_in_a_file_of_their_own(
    fake: FakeInvent, tmp_path: Path
) -> None:
    (tmp_path / "rows.csv").write_text(
        "email,name,contact_id\n"  # line 1
        "bo@example.com,Bo,\n"  # 2
        "\n"  # 3: blank
        'di@example.com,"Two\n'  # 4-5: one record over two lines (a name may not)
        'lines",\n'
        "not-an-email,,\n"  # 6
        ",,ct_404\n"  # 7: listed invalid by the API (no such contact)
        ",Nobody,\n"  # 8: no email, user id or contact id
        "cy@example.com,Cy,\n",  # 9
        encoding="utf-8",
    )

    result = invent(fake, "contacts", "import", "rows.csv", "--segment", "sg_1")

    assert result.exit_code == 1, result.output
    assert "2 created, 0 updated, 4 invalid, 0 failed" in result.stdout
    assert sorted(members_by_email(fake)) == ["bo@example.com", "cy@example.com"]
    invalid = read_csv(tmp_path / "invalid-import-sg_1.csv")
    assert [(r["line"], r["email"], r["contact_id"]) for r in invalid] == [
        ("4", "di@example.com", ""),
        ("6", "not-an-email", ""),
        ("8", "", ""),
        ("7", "", "ct_404"),  # found by the API's answer, after the client's own checks
    ]
    assert [r["reason"] for r in invalid] == [
        "name holds a control character or text UTF-8 cannot carry",
        "email 'not-an-email' is not an email address",
        "no email, user_id or contact_id",
        "listed invalid by the API",
    ]
    assert invalid[0]["name"] == "Two\nlines"
    assert "4 invalid rows written to invalid-import-sg_1.csv" in result.stdout
    assert not (tmp_path / "failed-import-sg_1.csv").exists()
    table = [line.split("│") for line in result.stdout.splitlines() if "│" in line]
    assert [cells[0].strip() for cells in table if cells[0].strip()] == ["4", "6", "8", "7"]


def test_a_line_that_is_not_json_is_an_invalid_row(fake: FakeInvent, tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text(
        '"bo@example.com"\n{"email": oops}\n[1, 2]\n', encoding="utf-8"
    )

    result = invent(fake, "contacts", "import", "rows.jsonl", "--segment", "sg_1")

    assert result.exit_code == 1, result.output
    invalid = read_csv(tmp_path / "invalid-import-sg_1.csv")
    assert [(r["line"], r["reason"].split(":")[0]) for r in invalid] == [
        ("2", "not JSON (Expecting value)"),
        ("3", "not a JSON object but list"),
    ]
    assert members_by_email(fake) == {"bo@example.com": None}


def test_explicit_row_files_are_written_even_when_empty(fake: FakeInvent, tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("email\nbo@example.com\n", encoding="utf-8")

    result = invent(
        fake, "contacts", "import", "rows.csv", "--segment", "sg_1",
        "--failed-out", "out/failed.csv", "--invalid-out", "out/invalid.csv",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert (tmp_path / "out/failed.csv").read_text() == "email,name,user_id,contact_id,type\n"
    assert (tmp_path / "out/invalid.csv").read_text().startswith("line,reason,email,")


# --------------------------------------------------------------------------- exit statuses


USAGE_ERRORS: Final = {
    "no email column": ("rows.csv", b"first,last\nAnn,Lee\n", (), "no email, user_id or"),
    "a row for a header": ("rows.csv", b"ann@example.com,Ann\n", (), "needs a header row"),
    "missing --column": ("rows.csv", b"email\na@b.co\n", ("--column", "mail"), "no column 'mail'"),
    "--column without csv": ("rows.txt", b"a@b.co\n", ("--column", "mail"), "names a CSV column"),
    "a header in a text file": ("rows.txt", b"email\na@b.co\n", (), "looks like a CSV header"),
    "not json lines": ("rows.jsonl", b"email,name\n", (), "not a row of JSON lines"),
    "not utf-8 at line 3": ("rows.txt", b"a@b.co\nc@d.co\n\xff\n", (), "line 3 is not valid UTF-8"),
    "bad csv": ("rows.csv", b'email\na@b.co\n"c@d.co"x\n', (), "bad CSV at line 3"),
    "unreadable": ("missing.csv", None, (), "cannot read missing.csv"),
    "unwritable journal": ("rows.txt", b"a@b.co\n", ("--journal", "rows.txt/j"), "cannot write"),
}  # fmt: skip


@pytest.mark.parametrize("case", USAGE_ERRORS)
def test_a_usage_error_exits_2_before_any_request(
    fake: FakeInvent, tmp_path: Path, case: str
) -> None:
    name, content, extra, message = USAGE_ERRORS[case]
    if content is not None:
        (tmp_path / name).write_bytes(content)

    result = invent(fake, "contacts", "import", name, "--segment", "sg_1", *extra)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert fake.requests == []
    clean(result)


def test_a_missing_key_exits_2_before_the_file_is_read(fake: FakeInvent) -> None:
    result = invent(fake, "contacts", "import", "missing.csv", "--segment", "sg_1", key=None)

    assert result.exit_code == 2
    assert "INVENT_API_KEY" in result.stderr
    assert fake.requests == []


def test_bad_text_after_the_first_rows_of_stdin_ends_the_import_with_exit_2(
    fake: FakeInvent,
) -> None:
    data = b"bo@example.com\ncy@example.com\n\xff\n"

    result = invent(fake, "contacts", "import", "-", "--segment", "sg_1", input=data)

    assert result.exit_code == 2, result.output
    assert "error: <stdin>: line 3 is not valid UTF-8 text" in result.stderr
    assert sorted(members_by_email(fake)) == ["bo@example.com", "cy@example.com"]
    assert "2 created" in result.stdout
    assert "(stopped early)" in result.stdout


def test_a_wrong_key_exits_3(fake: FakeInvent, tmp_path: Path) -> None:
    (tmp_path / "rows.txt").write_text("bo@example.com\n", encoding="utf-8")

    result = invent(fake, "contacts", "import", "rows.txt", "--segment", "sg_1", key="wrong-1")

    assert result.exit_code == 3, result.output
    assert "error: authentication failed: 401 Unauthorized" in result.stderr
    assert "(stopped early)" in result.stdout
    assert not list(tmp_path.glob("*-import-*"))  # an aborted import writes no row files
    clean(result)


def test_a_rate_limit_asking_for_an_hour_exits_4(fake: FakeInvent, tmp_path: Path) -> None:
    (tmp_path / "rows.txt").write_text("bo@example.com\n", encoding="utf-8")
    fake.fail_next(100, status=429, retry_after="3600")

    result = invent(fake, "contacts", "import", "rows.txt", "--segment", "sg_1")

    assert result.exit_code == 4, result.output
    assert "error: rate limited: 429 Too Many Requests" in result.stderr
    assert "the API asked to wait 3,600 s, longer than the 300 s" in result.stderr
    assert len(fake.requests) == 1
    clean(result)


def test_an_unknown_segment_stops_the_import_with_one_error_line(
    fake: FakeInvent, tmp_path: Path
) -> None:
    (tmp_path / "rows.txt").write_text("bo@example.com\n", encoding="utf-8")

    result = invent(fake, "contacts", "import", "rows.txt", "--segment", "sg_404")

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: 404 Not Found for POST {IMPORT}")
    assert fake.contact_ids() == ["ct_1"]


def test_a_file_without_rows_sends_nothing(fake: FakeInvent, tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("email,name\n\n", encoding="utf-8")

    result = invent(fake, "contacts", "import", "rows.csv", "--segment", "sg_1")

    assert result.exit_code == 0
    assert "no rows in rows.csv: nothing to do" in result.stderr
    assert fake.requests == []


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize(
    ("signum", "status"),
    [pytest.param(signal.SIGINT, 130, marks=needs_sigint), (signal.SIGTERM, 143)],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_stops_the_import_writes_the_rows_in_flight_and_suggests_a_journal(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    rows = tmp_path / "rows.txt"
    rows.write_text("".join(f"person{n}@example.com\n" for n in range(40_000)), encoding="ascii")
    with ThreadedFake(api_key=API_KEY, latency=1.0) as server:
        server.add_segment("VIP customers")
        env = {**os.environ, "INVENT_API_KEY": API_KEY}
        args = [str(INVENT), "--base-url", server.url, "contacts", "import", str(rows)]
        args += ["--segment", "sg_1"]
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
        ) as proc:
            deadline = time.monotonic() + SUBPROCESS_TIMEOUT
            while not server.requests and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signum)
            stdout, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
        members = members_by_email(server)

    assert proc.returncode == status, stderr
    said = "interrupted" if signum == signal.SIGINT else "terminated"
    assert f"({said})" in stdout
    failed = (tmp_path / "failed-import-sg_1.txt").read_text().split()
    # the rows taken and not answered (in flight: maybe imported, safe to import again; or
    # waiting for their request), from the first row not answered on, in input order
    numbers = [int(email.removeprefix("person").partition("@")[0]) for email in failed]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert numbers[0] % 10_000 == 0  # a request's first row: the requests before were answered
    assert {f"person{n}@example.com" for n in range(numbers[0])} <= members.keys()
    assert "cancelled while in flight" in stdout
    label = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert f"{label}: re-run the same command to finish" in stderr
    assert "with --journal FILE an import keeps its place" in stderr
    assert "Traceback" not in stderr


# --------------------------------------------------------------------------- reading


def rows_of(data: bytes, fmt: str, **options: Any) -> list[tuple[int, object]]:
    """Each row of ``data`` with its line."""
    lines = LineMap()
    batches = row_batches(io.BytesIO(data), fmt, name="f", lines=lines, **options)  # type: ignore[arg-type]
    rows = [row for batch in batches for row in batch]
    return [(lines.line_of(n), row) for n, row in enumerate(rows, 1)]


def test_each_row_keeps_its_line_past_headers_blank_lines_and_multiline_fields() -> None:
    data = b'\n name ,email\n\nA,a@x.io\n"B\n\nB",b@x.io\n,,\nC,c@x.io'

    assert rows_of(data, "csv") == [
        (4, {"name": "A", "email": "a@x.io"}),
        (5, {"name": "B\n\nB", "email": "b@x.io"}),
        (9, {"name": "C", "email": "c@x.io"}),
    ]


def test_the_line_map_holds_only_where_lines_shift() -> None:
    lines = LineMap()
    data = b"email\n" + b"".join(b"p%d@x.io\n" % n for n in range(100_000)) + b"\nlast@x.io\n"

    rows = [r for b in row_batches(io.BytesIO(data), "csv", name="f", lines=lines) for r in b]

    assert len(rows) == 100_001
    assert len(lines) == 2  # the header, the blank line
    assert lines.line_of(1) == 2
    assert lines.line_of(100_000) == 100_001
    assert lines.line_of(100_001) == 100_003


def test_json_lines_that_are_not_rows_are_unparsed() -> None:
    rows = rows_of(b'{"email": "a@x.io"}\nnull\n', "jsonl")

    assert rows == [(1, {"email": "a@x.io"}), (2, Unparsed("null", "not a JSON object but null"))]


def test_a_csv_delimiter_is_the_headers_own() -> None:
    assert rows_of(b"Email\tName\na@x.io\tA, Jr\n", "csv") == [
        (2, {"email": "a@x.io", "name": "A, Jr"})
    ]


def test_a_bad_csv_record_raises_after_the_rows_before_it() -> None:
    batches = row_batches(io.BytesIO(b'email\na@x.io\n"b@x.io"x\n'), "csv", name="f", lines=None)

    assert next(batches) == ["a@x.io"]
    with pytest.raises(InputError, match="bad CSV at line 3"):
        next(batches)


@pytest.mark.parametrize(
    ("path", "chosen", "fmt"),
    [
        ("a.CSV", None, "csv"),
        ("a.jsonl", None, "jsonl"),
        ("a.ndjson", None, "jsonl"),
        ("a.txt", None, "txt"),
        ("emails", None, "txt"),
        ("-", None, "txt"),
        ("-", "csv", "csv"),
    ],
)
def test_the_format_comes_from_the_extension_unless_given(
    path: str, chosen: str | None, fmt: str
) -> None:
    assert format_of(path, chosen) == fmt


def test_failed_jsonl_rows_read_back_as_the_same_rows(tmp_path: Path) -> None:
    line = json.dumps({"type": "email", "email": "a@x.io", "name": "Ann"})

    assert rows_of(line.encode() + b"\n", "jsonl") == [
        (1, {"type": "email", "email": "a@x.io", "name": "Ann"})
    ]
