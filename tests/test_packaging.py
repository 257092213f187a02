"""Packaging facts a user sees: one version everywhere, README links that work on an index."""

from __future__ import annotations

import re
from importlib.metadata import metadata, version
from pathlib import Path

import pytest

import invent_async
from invent_async import _transport

ROOT = Path(__file__).parent.parent


def test_the_version_is_the_metadata_version_everywhere() -> None:
    installed = version("invent-async")

    assert invent_async.__version__ == installed
    assert _transport.USER_AGENT.startswith(f"invent-async/{installed} ")


def test_the_metadata_names_the_license_and_no_address_nobody_can_reach() -> None:
    """Nothing is published yet (no repository, docs site or index page a user can open):
    the metadata names no project URL rather than addresses that answer 404."""
    meta = metadata("invent-async")

    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("Project-URL") is None


def test_readme_links_reach_files_of_the_clone_or_the_api_site() -> None:
    """README.md is read in a clone (no release is published): a relative link names a file
    that exists; an absolute one only the API's own site."""
    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text(encoding="utf-8"))
    relative = [link.partition("#")[0] for link in links if "://" not in link]

    assert relative
    assert [link for link in relative if link and not (ROOT / link).exists()] == []
    assert [link for link in links if "://" in link and "useinvent.com" not in link] == []


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_no_page_installs_from_an_index_that_has_no_release(page: Path) -> None:
    """How to install is said once (README's Install, included by getting-started)."""
    text = page.read_text(encoding="utf-8")

    assert "pip install invent-async" not in text
    assert 'pip install "invent-async' not in text
    assert "readthedocs.io/en" not in text
