"""Redacting a secret from what a server sent: every JSON spelling, whole or cut short."""

from __future__ import annotations

import json
import pickle
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invent_async._secret import Secret

KEY = 'sk_live_AB<C>&/\\"x9'


def spell(text: str, rng: random.Random) -> str:
    """``text`` as a JSON string body, each character plain or escaped at random."""
    out = []
    for char in text:
        choice = rng.randrange(3)
        if char in '"\\':
            out.append("\\" + char if choice else f"\\u{ord(char):04x}")
        elif choice == 0:
            out.append(char)
        elif choice == 1:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\u{ord(char):04X}")
    return "".join(out)


PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)


@given(seed=st.integers(0, 2**32), before=PRINTABLE, after=PRINTABLE)
def test_every_json_spelling_of_the_key_is_redacted(seed: int, before: str, after: str) -> None:
    body = f'{{"echo": "{spell(before + KEY + after, random.Random(seed))}"}}'.encode()

    redacted = Secret(KEY).redact(body)

    assert json.loads(redacted)["echo"] == before + "<redacted>" + after


@given(seed=st.integers(0, 2**32), size=st.integers(1, 200))
def test_a_body_cut_inside_the_key_keeps_nothing_of_it(seed: int, size: int) -> None:
    spelled = spell(KEY, random.Random(seed)).encode()
    cut = (b"prefix: " + spelled)[: 8 + min(size, len(spelled) - 1)]

    kept = Secret(KEY).strip_cut(cut)

    assert kept == b"prefix: "


def test_text_and_headers_are_redacted_and_the_rest_kept() -> None:
    secret = Secret(KEY)

    assert secret.redact_text(f"Bearer {KEY}, again {KEY}") == "Bearer <redacted>, again <redacted>"
    assert secret.redact(b"nothing to see") == b"nothing to see"
    assert secret.strip_cut(b"a cut body") == b"a cut body"


def test_a_secret_neither_shows_nor_pickles() -> None:
    secret = Secret(KEY)
    secret.redact(b"compiles its patterns")

    assert KEY not in repr(secret)
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(secret)


@pytest.mark.parametrize(
    "key",
    ["k" * 1000, "a1" * 600, "\\" * 40, 'x"/\\' * 30],
    ids=["k*1000", "a1*600", "\\*40", "mixed"],
)
def test_keys_of_any_length_and_content_are_redacted_whole_and_cut(key: str) -> None:
    secret = Secret(key)
    spelled = spell(key, random.Random(7))
    body = f'{{"echo": "{spelled}", "filler": "{"y" * 60000}"}}'.encode()

    redacted = secret.redact(body)
    cut = secret.strip_cut(b"head " + spelled.encode()[: len(spelled) // 2])

    assert json.loads(redacted)["echo"] == "<redacted>"
    assert cut == b"head "


@pytest.mark.parametrize("text", ["bookkeeping", "kk", "k8s", "the skunk works", "lookup"])
def test_a_short_key_inside_a_word_leaves_the_word_whole(text: str) -> None:
    secret = Secret("k")

    assert secret.redact_text(text) == text
    assert secret.redact(text.encode()) == text.encode()


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("Authorization: Bearer k", "Authorization: Bearer <redacted>"),
        ('{"key": "k"}', '{"key": "<redacted>"}'),
        ("?api_key=k&x=1", "?api_key=<redacted>&x=1"),
        ('{"a": "Bearer\\u0020\\u006b"}', '{"a": "Bearer\\u0020<redacted>"}'),
    ],
    ids=["header", "json", "query", "escaped"],
)
def test_a_short_key_as_a_whole_token_is_redacted(text: str, redacted: str) -> None:
    assert Secret("k").redact_text(text) == redacted


def test_a_long_key_is_redacted_even_inside_a_word() -> None:
    key = "sk_live_0123456789abcdef"

    assert Secret(key).redact_text(f"x{key}y") == "x<redacted>y"


def test_a_cut_body_ending_in_a_word_keeps_the_word_for_a_short_key() -> None:
    assert Secret("kq").strip_cut(b"the book") == b"the book"
    assert Secret("kq").strip_cut(b"Bearer k") == b"Bearer "
