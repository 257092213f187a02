"""Seeding FakeInvent with chosen ids, and the base URL from INVENT_BASE_URL: what lets the
documentation's examples (``"ct_123"``, ``"sg_vip"``) run verbatim against the fake."""

from __future__ import annotations

import pytest

from invent_async import AsyncInventClient
from invent_async.testing import FakeInvent


async def test_seeding_with_chosen_ids() -> None:
    async with FakeInvent(api_key="k") as fake:
        segment = fake.add_segment("VIP", id="sg_vip")
        contact = fake.add_contact(id="ct_2", name="Ada", segment_ids=["sg_vip"])
        generated = fake.add_contacts(2)
        other = fake.add_segment("Other")
        async with AsyncInventClient("k", base_url=fake.url) as client:
            got = await client.contacts.get("ct_2")

        assert (segment.id, contact.id, got.name) == ("sg_vip", "ct_2", "Ada")
        assert "ct_2" not in generated
        assert len(set(generated)) == 2
        assert other.id != "sg_vip"
        with pytest.raises(ValueError, match="already exists"):
            fake.add_contact(id="ct_2")
        with pytest.raises(ValueError, match="already exists"):
            fake.add_segment("again", id="sg_vip")


async def test_the_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeInvent(api_key="k") as fake:
        fake.add_contact(id="ct_123", name="Ada")
        monkeypatch.setenv("INVENT_BASE_URL", fake.url)
        monkeypatch.setenv("INVENT_API_KEY", "k")
        async with AsyncInventClient() as client:
            assert client.base_url == fake.url
            assert (await client.contacts.get("ct_123")).name == "Ada"
