"""Packaging facts a user sees: one version everywhere, README links that work on an index."""

from __future__ import annotations

import re
from importlib.metadata import metadata, version
from pathlib import Path

import invent_async
from invent_async import _transport

ROOT = Path(__file__).parent.parent


def test_the_version_is_the_metadata_version_everywhere() -> None:
    installed = version("invent-async")

    assert invent_async.__version__ == installed
    assert _transport.USER_AGENT.startswith(f"invent-async/{installed} ")


def test_the_metadata_names_the_license_and_the_project_urls() -> None:
    meta = metadata("invent-async")

    assert meta["License-Expression"] == "MIT"
    urls = {url.split(",")[0] for url in meta.get_all("Project-URL") or []}
    assert {"Homepage", "Documentation", "Repository", "Changelog"} <= urls


def test_readme_links_are_absolute() -> None:
    """A package index shows README.md without the repository: a relative link is dead there."""
    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text(encoding="utf-8"))

    assert links
    assert [link for link in links if not link.startswith(("https://", "#"))] == []
