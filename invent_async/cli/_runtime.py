"""What every ``invent`` command shares: exit codes, one-line errors, settings, the client.

The exit statuses are the ``EXIT_*`` constants, each documented where it is defined; the
table in ``docs/cli.md`` lists exactly these (``tests/test_cli.py`` checks it).

The API key comes from the ``INVENT_API_KEY`` environment variable only, never from an option,
so it stays out of shell history and ``ps``; nothing here prints it. ``--sandbox`` swaps the
real API for a :class:`~invent_async.testing.FakeInvent` started inside the command's own event
loop, seeded and rate limited like a scaled-down copy of the real service.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
import click

from .._client import AsyncInventClient
from .._exceptions import (
    AuthenticationError,
    BudgetServerConfigError,
    BudgetSettingsError,
    InventError,
    PermissionDeniedError,
    RateLimitError,
)
from .._limits import RateLimit
from .._models import Segment, SegmentColor
from .._secret import has_password
from .._settings import API_KEY_ENV, DEFAULT_RATE_LIMIT, REDIS_URL_ENV

if TYPE_CHECKING:
    from ..testing import FakeInvent

__all__ = [
    "EXIT_AUTH",
    "EXIT_FAILURES",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RATE_LIMITED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "SANDBOX_API_KEY",
    "SANDBOX_BROADCASTS",
    "SANDBOX_CONTACTS",
    "SANDBOX_RATE_PER_MINUTE",
    "SANDBOX_SEGMENT_NAME",
    "CliError",
    "InputError",
    "Settings",
    "Terminated",
    "describe_api_error",
    "make_client",
    "open_client",
    "read_api_key",
    "sandbox_fake",
    "seed_sandbox",
]

EXIT_OK: Final = 0
"""Every item succeeded (or was skipped)."""
EXIT_FAILURES: Final = 1
"""Some items failed, or an API call failed."""
EXIT_USAGE: Final = 2
"""Bad usage or input: unknown option, unreadable file, missing CSV column, no API key."""
EXIT_AUTH: Final = 3
"""The API refused the key (401) or the permission (403)."""
EXIT_RATE_LIMITED: Final = 4
"""Stopped by the API's rate limit: a 429 asked to wait longer than the client waits for
(``RateLimit.max_retry_after``, 5 minutes; the commands have no option to change it). Run the
command again later; a job run with ``--journal`` resumes where it stopped."""
EXIT_INTERRUPTED: Final = 130
"""Stopped by Ctrl-C (128 + SIGINT, the shell convention)."""
EXIT_TERMINATED: Final = 143
"""Stopped by SIGTERM (128 + SIGTERM)."""

SANDBOX_API_KEY: Final = "sandbox-key"
SANDBOX_CONTACTS: Final = 300
SANDBOX_SEGMENT_NAME: Final = "VIP customers"
SANDBOX_BROADCASTS: Final = ("Spring sale", "Order shipped")
"""The sandbox's broadcasts: ``bc_1``, a marketing draft to ``sg_1``; ``bc_2``, transactional."""
SANDBOX_RATE_PER_MINUTE: Final = 6000.0
"""The sandbox's rate limit: the real 500/minute scaled up 12x, so commands finish quickly."""
REAL_LIMIT: Final = 500
REAL_WINDOW: Final = 60.0


class CliError(Exception):
    """An error reported as one line, ``error: <message>``, with its exit status.

    The root command group catches it (see ``commands.InventGroup``): no usage text, no
    traceback.
    """

    def __init__(self, message: str, exit_code: int = EXIT_FAILURES) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def show(self) -> None:
        """Print ``error: <message>`` to stderr."""
        click.echo(f"error: {self.message}", err=True)


class InputError(CliError):
    """The ids input cannot be used: unreadable file, missing CSV column, bad encoding."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class Terminated(CliError):
    """A job was stopped by SIGTERM (``kill``, ``docker stop``): exit status 143."""

    def __init__(self) -> None:
        super().__init__("terminated (SIGTERM)", EXIT_TERMINATED)


@attrs.frozen(kw_only=True)
class Settings:
    """The global options: where the commands send their requests.

    Attributes:
        org_id: The organisation to act on (``c``: the API key's own).
        base_url: The API root, or None for the SDK's default.
        sandbox: Use an embedded FakeInvent instead of the real API.
        redis_url: The Redis server of a rate budget shared with other processes (None:
            ``INVENT_REDIS_URL``, else a budget of this process).
        per_minute: The rate limit asked for (None: on a Redis budget, the one stored with
            it; else the API's 500 a minute).
        fallback_share: The share of the rate this process takes while Redis is down (None:
            ``INVENT_FALLBACK_SHARE``, else 1 / the budget's live members).
    """

    org_id: str = "c"
    base_url: str | None = None
    sandbox: bool = False
    redis_url: str | None = None
    per_minute: float | None = None
    fallback_share: float | None = None


def read_api_key(environ: Mapping[str, str] | None = None) -> str:
    """The API key from ``INVENT_API_KEY``.

    Raises:
        CliError: (exit 2) the variable is not set or blank.
    """
    key = (os.environ if environ is None else environ).get(API_KEY_ENV, "").strip()
    if not key:
        raise CliError(
            f"no API key: set the {API_KEY_ENV} environment variable "
            "(or add --sandbox to try the command without an account)",
            EXIT_USAGE,
        )
    return key


def describe_api_error(exc: InventError) -> tuple[str, int]:
    """The one-line message and exit status for an SDK error that ended a command.

    A 429 whose ``Retry-After`` is longer than the client waits (the default
    ``RateLimit.max_retry_after``: no command sets another) is :data:`EXIT_RATE_LIMITED`,
    whether it ended a single call or stopped a job (then it is the ``__cause__`` of the
    :class:`~invent_async.BulkAbortedError`).
    """
    if isinstance(exc, AuthenticationError):
        return f"authentication failed: {exc} (check {API_KEY_ENV})", EXIT_AUTH
    if isinstance(exc, BudgetSettingsError | BudgetServerConfigError):
        return str(exc), EXIT_USAGE  # the budget's configuration: the command line's to fix
    if isinstance(exc, PermissionDeniedError):
        return f"permission denied: {exc} (the API key may not do this)", EXIT_AUTH
    limit = DEFAULT_RATE_LIMIT.max_retry_after
    if isinstance(exc, RateLimitError) and exc.retry_after is not None and exc.retry_after > limit:
        return (
            f"rate limited: {exc} (the API asked to wait {exc.retry_after:,.0f} s, longer "
            f"than the {limit:,.0f} s this command waits: run it again later)",
            EXIT_RATE_LIMITED,
        )
    return str(exc), EXIT_FAILURES


def make_client(
    api_key: str,
    *,
    org_id: str,
    base_url: str | None = None,
    rate_per_minute: float | None = None,
    redis_url: str | None = None,
    sandbox: bool = False,
    fallback_share: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncInventClient:
    """An AsyncInventClient; a bad ``--org``, ``--base-url`` or ``--redis-url`` (or
    ``INVENT_REDIS_URL``), or a Redis budget without redis-py, is a usage error (exit 2).

    ``rate_per_minute`` sets the client's rate governor (None: the SDK default, the real
    API's 500 requests per minute); ``redis_url`` shares it on that server (None: the SDK
    reads ``INVENT_REDIS_URL``, except for the ``sandbox``, which keeps a budget of its own
    and touches no server unless ``redis_url`` names one). On a Redis budget (not the
    sandbox's), no ``rate_per_minute`` joins the settings stored with the budget: a job
    beside an app runs at the app's limit (and fails at its first call, exit 2, when no
    process has stored any). ``fallback_share`` is this process's share of the rate while
    Redis is down (None: ``INVENT_FALLBACK_SHARE``, else 1 / the budget's live members).
    """
    options: dict[str, Any] = {"org_id": org_id}
    if base_url is not None:
        options["base_url"] = base_url
    if redis_url is not None and has_password(redis_url):
        raise CliError(
            "--redis-url must not hold a password (it would stay in the shell's history): "
            f"put the URL in the {REDIS_URL_ENV} environment variable instead",
            EXIT_USAGE,
        )
    env = os.environ if environ is None else environ
    from_env = env.get(REDIS_URL_ENV, "").strip() or None
    try:
        if sandbox:
            rate = SANDBOX_RATE_PER_MINUTE if rate_per_minute is None else rate_per_minute
            if redis_url is None:
                options["rate_limit"] = RateLimit(per_minute=rate, shared=False)
            else:
                options["rate_limit"] = RateLimit(
                    per_minute=rate, redis_url=redis_url, fallback_share=fallback_share
                )
        elif redis_url is not None or from_env is not None:
            try:  # no rate asked for: join the one stored with the budget
                options["rate_limit"] = RateLimit(
                    per_minute=rate_per_minute,
                    redis_url=redis_url or from_env,
                    fallback_share=fallback_share,
                )
            except ValueError as exc:
                raise ValueError(f"{REDIS_URL_ENV}: {exc}" if redis_url is None else exc) from None
        elif rate_per_minute is not None:
            options["rate_limit"] = RateLimit(per_minute=rate_per_minute)
        return AsyncInventClient(api_key, **options)
    except (ValueError, ImportError) as exc:
        raise CliError(f"{exc}", EXIT_USAGE) from None


def fake_window(rate_per_minute: float) -> float:
    """The fake's rate-limit window: the real API's (500 requests a minute), sped up to ``rate``.

    At ``rate=500`` this is the real 60-second window; at 6,000 a minute, 5 seconds holding
    the same 500 requests. A client that bursts past the limit sees 429s just as it would
    against the real API, only sooner.
    """
    return REAL_WINDOW * REAL_LIMIT / rate_per_minute


def sandbox_fake(rate_per_minute: float) -> FakeInvent:
    """A FakeInvent limited to ``rate_per_minute``, with fractional ``Retry-After`` values.

    (The fake, aiohttp's server, is imported here: a command against the real API never
    loads it.)
    """
    from ..testing import FakeInvent

    return FakeInvent(
        api_key=SANDBOX_API_KEY,
        rate_limit_per_minute=rate_per_minute,
        rate_limit_window=fake_window(rate_per_minute),
        retry_after_precision=2,
        record=False,
    )


def seed_sandbox(
    fake: FakeInvent, org_id: str, *, contacts: int = SANDBOX_CONTACTS
) -> tuple[Segment, list[str]]:
    """Seed segment ``sg_1`` (VIP customers), contacts ``ct_1 .. ct_N`` and two broadcasts
    into ``org_id``: ``bc_1``, a marketing draft to ``sg_1``, and ``bc_2``, a transactional
    one with two templates.

    Returns:
        The segment and the contact ids.
    """
    if org_id != "c":
        fake.add_org(org_id)
    segment = fake.add_segment(SANDBOX_SEGMENT_NAME, SegmentColor.VIOLET, org=org_id)
    ids = fake.add_contacts(contacts, org=org_id)
    fake.add_broadcast(SANDBOX_BROADCASTS[0], segment_ids=[segment.id], org=org_id)
    fake.add_broadcast(
        SANDBOX_BROADCASTS[1], transactional=True, templates=("gmail", "twilio"), org=org_id
    )
    return segment, ids


@contextlib.asynccontextmanager
async def open_client(settings: Settings) -> AsyncIterator[AsyncInventClient]:
    """The client a command uses: the real API (key from the environment) or the sandbox."""
    if not settings.sandbox:
        key = read_api_key()
        client = make_client(
            key,
            org_id=settings.org_id,
            base_url=settings.base_url,
            rate_per_minute=settings.per_minute,
            redis_url=settings.redis_url,
            fallback_share=settings.fallback_share,
        )
        async with client:
            yield client
        return
    fake = sandbox_fake(SANDBOX_RATE_PER_MINUTE)
    seed_sandbox(fake, settings.org_id)
    async with fake:
        client = make_client(
            SANDBOX_API_KEY,
            org_id=settings.org_id,
            base_url=fake.url,
            rate_per_minute=settings.per_minute,
            redis_url=settings.redis_url,
            sandbox=True,
            fallback_share=settings.fallback_share,
        )
        async with client:
            yield client
