"""``parse_event_data`` reads a stream event's data exactly as ``json.loads`` does (it only takes a faster path
for the usual event), and turns what ``json.loads`` refuses into a ProviderError naming the provider."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pepperpy.errors import LLMError, ProviderError
from pepperpy.http import parse_event_data

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


def loads_or_error(data: str) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return ValueError


def parsed_or_error(data: str) -> object:
    try:
        return parse_event_data(data, "llm/x")
    except ProviderError:
        return ValueError


@pytest.mark.parametrize("data", [
    '{"a": 1}', ' {"a": 1}', '{"a": 1} ', '\t{"a": 1}\n', '{"a": 1} {"b": 2}', '{"a": 1}x', '', ' ', '[1, 2]', '"s"',
    'NaN', '{"a": 1', 'null', '{"a": "\\u00e9"}',
])
def test_the_same_as_json_loads(data):
    assert repr(parsed_or_error(data)) == repr(loads_or_error(data))  # repr: NaN equals itself


@given(json_values, st.sampled_from(["", " ", "\n", " x", "}", "{}"]), st.sampled_from(["", " ", "\t"]))
def test_the_same_as_json_loads_for_any_document_and_what_surrounds_it(value, after, before):
    data = before + json.dumps(value) + after
    assert repr(parsed_or_error(data)) == repr(loads_or_error(data))  # repr: NaN equals itself


def test_malformed_data_names_the_provider_and_its_category():
    with pytest.raises(LLMError, match=r"llm/x: malformed event in the stream: '\{\"a\": 1\} trailing'"):
        parse_event_data('{"a": 1} trailing', "llm/x")
