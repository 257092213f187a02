"""The process-wide registry of shared rate governors: one per API host and budget name.

A client's :class:`~invent_async._pipeline.Core` (and an ``InventClient``, from its creation)
takes a :class:`Lease` on the governor of its ``(host, budget)``: the first lease creates it
(with :func:`new_governor`),
later ones must ask for equal settings (else ``ValueError``), and the last one given back
(the client closed, abandoned or garbage-collected) drops it. So the registry holds a
governor only while a client uses it, and no settings outlive every client. A forked child
starts with an empty registry: the parent's governors and leases mean nothing there.

The host is the host and port of ``base_url`` (the API's limit is per client IP and per API).
``RateLimit(shared=False)`` leases a governor of its own, outside the registry.

:func:`new_governor` is the one place that picks a :class:`~invent_async._governor.Governor`
implementation for a ``RateLimit``: a :class:`~invent_async._fleet.FleetGovernor` when it
names a ``redis_url`` (its budget on the server is named after the same host and budget, so
every process naming the same server shares it); else, for a shared, paced, non-adaptive
limit, a :class:`~invent_async._host.HostGovernor` (the budget of every process of this host,
in a store named after the same host and budget; ``INVENT_BUDGET_DIR=off`` turns it off);
else a :class:`~invent_async._ratelimit.RateGovernor`. Nothing else in the package names an
implementation, and imports it there: a process loads the modules of the kind of budget it
uses (Redis's client for a fleet, sqlite for the host's store), when its first client is made,
never at ``import invent_async``. No I/O here (the host's store is opened by the first request).
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urlsplit

import attrs

from ._governor import Governor
from ._limits import RateLimit
from ._secret import redact_url

__all__ = ["Lease", "api_host", "lease", "leases", "new_governor"]


def new_governor(config: RateLimit, *, name: str) -> Governor:
    """The governor ``config`` asks for: the one place that picks an implementation.

    Args:
        config: The limits.
        name: The budget's name beyond this process (``budget@host:port``), for a
            governor whose budget is shared with other processes.
    """
    if config.redis_url is not None:
        from ._fleet import FleetGovernor

        return FleetGovernor(config, name=name)
    from ._host import HostGovernor

    if HostGovernor.serves(config):
        return HostGovernor(config, name=name)
    from ._ratelimit import RateGovernor

    return RateGovernor(config)


class _Entry:
    """One shared governor and the number of leases out on it."""

    __slots__ = ("governor", "key", "users")

    def __init__(self, key: tuple[str, str], governor: Governor) -> None:
        self.key = key
        self.governor = governor
        self.users = 0


class _Registry:
    """The governors in use, by ``(host, budget)``; replaced whole in a forked child."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[tuple[str, str], _Entry] = {}


_registry = _Registry()


class Lease:
    """A client's use of a governor; :meth:`release` it once (more calls do nothing).

    Attributes:
        governor: The governor to send through (shared, or the client's own).
    """

    __slots__ = ("_entry", "_registry", "_released", "governor")

    def __init__(
        self, governor: Governor, entry: _Entry | None, registry: _Registry | None
    ) -> None:
        self.governor = governor
        self._entry = entry
        self._registry = registry
        self._released = False

    def release(self) -> bool:
        """Give the lease back; the last lease on a shared governor drops it from the registry.

        Thread-safe. A lease taken before ``os.fork()`` releases nothing in the child.

        Returns:
            True when this was the last lease on the governor (nobody else uses it).
        """
        registry, entry = self._registry, self._entry
        if registry is None or entry is None or registry is not _registry:
            last = not self._released
            self._released = True
            return last
        with registry.lock:
            if self._released:
                return False
            self._released = True
            entry.users -= 1
            if entry.users <= 0 and registry.entries.get(entry.key) is entry:
                del registry.entries[entry.key]
                return True
            return False

    def __repr__(self) -> str:
        state = " released" if self._released else ""
        return f"<Lease {self.governor!r}{state}>"


def api_host(base_url: str) -> str:
    """The host and port of ``base_url``, lower case, the default port written out."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def lease(base_url: str, config: RateLimit) -> Lease:
    """A lease on the governor ``config`` asks for, for a client of ``base_url``.

    Raises:
        ValueError: another client of this process uses the same host and budget with other
            settings.
    """
    key = (api_host(base_url), config.budget)
    if not config.shared:
        return Lease(new_governor(config, name=f"{config.budget}@{key[0]}"), None, None)
    registry = _registry
    with registry.lock:
        entry = registry.entries.get(key)
        if entry is None:
            governor = new_governor(config, name=f"{config.budget}@{key[0]}")
            entry = registry.entries[key] = _Entry(key, governor)
        elif entry.governor.config != config:
            raise ValueError(
                f"the rate-limit budget {config.budget!r} of {key[0]} is in use in this process "
                f"with other settings ({_differences(entry.governor.config, config)}); clients "
                "sharing a budget must pass equal RateLimit settings. Pass the same RateLimit, "
                "name another budget for this client (RateLimit(budget='...')), or give it a "
                "governor of its own (RateLimit(shared=False))"
            )
        entry.users += 1
        return Lease(entry.governor, entry, registry)


def _differences(used: RateLimit, asked: RateLimit) -> str:
    def show(limit: RateLimit, name: str) -> str:
        value = getattr(limit, name)
        return repr(redact_url(value) if name == "redis_url" else value)

    return "; ".join(
        f"{field.name} {show(used, field.name)}, this client asks for {show(asked, field.name)}"
        for field in attrs.fields(RateLimit)
        if getattr(used, field.name) != getattr(asked, field.name)
    )


def leases() -> dict[tuple[str, str], int]:
    """The shared governors in use now: ``(host, budget)`` -> how many leases are out."""
    with _registry.lock:
        return {key: entry.users for key, entry in _registry.entries.items()}


def _forget_all_in_child() -> None:
    global _registry
    _registry = _Registry()  # the parent's lock may have been held by a thread at fork time


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_all_in_child)
