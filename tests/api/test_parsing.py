"""Request bodies parsed with a depth cap and storable strings (ashbox.api.parsing)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ashbox.api.parsing import MAX_JSON_DEPTH, parse_json, refuse_nul
from ashbox.errors import InvalidInput

# Strings full of what the depth count must look through: brackets, quotes, backslashes.
_TRICKY = st.text(st.sampled_from('[]{}"\\ aé\u20ac\U0001f600'), max_size=8)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TRICKY
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY, inner, max_size=3),
    max_leaves=12,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@given(_VALUES, st.integers(0, MAX_JSON_DEPTH + 3), st.booleans())
def test_a_body_parses_exactly_when_it_nests_no_deeper_than_the_cap(
    value: object, wrappings: int, ascii_only: bool
) -> None:
    for i in range(wrappings):
        value = [value] if i % 2 else {'"[{\\': value}
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    if _depth(value) > MAX_JSON_DEPTH:
        with pytest.raises(InvalidInput, match="nested more than 64 levels"):
            parse_json(raw)
    else:
        assert parse_json(raw) == value


_UNSTORABLE = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"])


@given(st.text(st.characters() | _UNSTORABLE, max_size=8), st.booleans())
def test_a_string_is_refused_exactly_when_it_holds_a_lone_surrogate_or_nul(
    text: str, as_key: bool
) -> None:
    raw = json.dumps({text: 1} if as_key else [text]).encode()  # \ud800 escapes
    (arrived,) = json.loads(raw)  # a high and a low surrogate side by side are one character
    if any("\ud800" <= c <= "\udfff" for c in arrived):
        with pytest.raises(InvalidInput, match="lone surrogate is not allowed"):
            parse_json(raw)
    elif "\x00" in arrived:
        with pytest.raises(InvalidInput, match="NUL character is not allowed"):
            refuse_nul(parse_json(raw))
    else:
        refuse_nul(parse_json(raw))


def test_a_refusal_names_the_field_and_shows_the_string_escaped() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_json(b'{"volume": {"name": "a\\udc00"}}')
    assert refused.value.message == (
        "Invalid input for field/attribute name. Value: 'a\\udc00'. "
        "A lone surrogate is not allowed."
    )
    with pytest.raises(InvalidInput) as refused:
        refuse_nul(parse_json(b'{"volume": {"metadata": {"k\\u0000": "v"}}}'))
    assert refused.value.message == (
        "Invalid input for field/attribute metadata. Value: 'k\\x00'. "
        "A NUL character is not allowed."
    )


def test_a_surrogate_pair_is_one_character_and_accepted() -> None:
    assert parse_json(b'["\\ud83d\\ude00"]') == ["\U0001f600"]
    with pytest.raises(InvalidInput, match="lone surrogate is not allowed"):
        parse_json(b'["\\ude00\\ud83d"]')


@pytest.mark.parametrize(
    "raw", [b"[" * 100_000, b"[" * 5000 + b"]" * 5000, b'{"a":' * 70 + b"1" + b"}" * 70]
)
def test_deep_nesting_is_refused_before_parsing(raw: bytes) -> None:
    with pytest.raises(InvalidInput, match="nested more than 64 levels"):
        parse_json(raw)


@pytest.mark.parametrize(
    "raw",
    [b"{", b"\xff", b"\xed\xa0\x80", '"é"'.encode("utf-16"), b"NaN", b"[Infinity]", b'"\\x"'],
)
def test_anything_but_utf8_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(InvalidInput, match="Malformed request body"):
        parse_json(raw)


def test_an_empty_body_is_an_empty_object() -> None:
    assert parse_json(b"") == {}
    assert parse_json(b" \r\n") == {}
