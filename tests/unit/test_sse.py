"""The server-sent-events parser against the examples of the HTML standard ("9.2 Server-sent events").

Each stream is fed whole, then again one byte at a time: the events must not depend on
where the network splits the body.
"""

from __future__ import annotations

import pytest

from pepperpy._sse import EventTooLarge, ServerSentEvent, SSEDecoder


def parse(stream: bytes, max_event_bytes: int | None = None) -> list[ServerSentEvent]:
    whole = SSEDecoder(max_event_bytes).feed(stream)
    decoder = SSEDecoder(max_event_bytes)
    split = [event for i in range(len(stream)) for event in decoder.feed(stream[i : i + 1])]
    assert split == whole, "the events changed with the chunk boundaries"
    return whole


def data(stream: bytes) -> list[str]:
    return [event.data for event in parse(stream)]


def test_multi_line_data_joins_with_a_newline():
    """The stock-ticker example: three data lines, one event."""
    assert data(b"data: YHOO\ndata: +2\ndata: 10\n\n") == ["YHOO\n+2\n10"]


def test_comments_ids_and_one_leading_space():
    """The example with a comment, ids, an id field without a value, and two leading spaces."""
    stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n"
    events = parse(stream)
    assert [(e.data, e.id) for e in events] == [("first event", "1"), ("second event", ""), (" third event", "")]


def test_empty_data_fields_and_a_final_event_without_a_blank_line():
    """The first block fires an empty event, the middle one a single newline, the last is dropped."""
    assert data(b"data\n\ndata\ndata\n\ndata:") == ["", "\n"]


def test_a_space_after_the_colon_is_optional():
    assert data(b"data:test\n\ndata: test\n\n") == ["test", "test"]


@pytest.mark.parametrize("end", [b"\r\n", b"\r", b"\n"], ids=["CRLF", "CR", "LF"])
def test_every_line_end_works(end):
    stream = end.join([b"event: add", b"data: 73857293", b"", b"event: remove", b"data: 2153", b"", b""])
    assert [(e.event, e.data) for e in parse(stream)] == [("add", "73857293"), ("remove", "2153")]


def test_mixed_line_ends_in_one_stream():
    assert data(b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r") == ["a\nb\nc", "d"]


def test_event_type_is_empty_when_not_given_and_does_not_leak_into_the_next_event():
    events = parse(b"event: ping\ndata: {}\n\ndata: plain\n\n")
    assert [(e.event, e.data) for e in events] == [("ping", "{}"), ("", "plain")]


def test_an_event_without_data_is_not_dispatched():
    """Anthropic-style "event:" lines alone, or only an id, dispatch nothing."""
    events = parse(b"event: ping\n\nid: 7\n\ndata: x\n\n")
    assert [(e.event, e.data, e.id) for e in events] == [("", "x", "7")]


def test_retry_takes_ascii_digits_only_and_unknown_fields_are_ignored():
    decoder = SSEDecoder()
    events = decoder.feed(b"retry: 1500\ndata: a\n\nretry: 12x\nretry: \xd9\xa3\nfoo: bar\nDATA: shouted\ndata: b\n\n")
    assert [(e.data, e.retry) for e in events] == [("a", 1500), ("b", 1500)]


def test_an_id_with_a_nul_is_ignored():
    events = parse(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [e.id for e in events] == ["1", "1"]


def test_a_field_name_is_everything_before_the_first_colon():
    events = parse(b'data: {"url": "http://x:1/"}\n\ndata\n\n')
    assert [e.data for e in events] == ['{"url": "http://x:1/"}', ""]


def test_a_leading_bom_is_dropped_and_invalid_utf8_is_replaced():
    assert data(b"\xef\xbb\xbfdata: caf\xc3\xa9\ndata: \xff\n\n") == ["caf\u00e9\n\ufffd"]


def test_a_crlf_split_across_chunks_ends_one_line():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the LF of the CRLF, not a blank line
    assert [e.data for e in decoder.feed(b"\r\n")] == ["a"]
    assert decoder.feed(b"data: b\r") == [] and decoder.feed(b"\n") == []
    assert [e.data for e in decoder.feed(b"\n")] == ["b"]  # a blank line, not the end of a CRLF


def test_an_event_larger_than_the_cap_is_refused_even_without_a_line_end():
    with pytest.raises(EventTooLarge):
        SSEDecoder(max_event_bytes=100).feed(b"data: " + b"x" * 200)  # a line that never ends
    for stream in (b"data: " + b"x" * 60 + b"\ndata: " + b"y" * 60 + b"\n\n", b"data: " + b"x" * 200 + b"\n\n"):
        with pytest.raises(EventTooLarge):
            SSEDecoder(max_event_bytes=100).feed(stream)  # whole events in one chunk
        with pytest.raises(EventTooLarge):
            parse(stream, max_event_bytes=100)
    events = parse((b"data: " + b"x" * 80 + b"\n\n") * 3, max_event_bytes=100)  # each one fits
    assert len(events) == 3


def test_chunks_with_and_without_cr_mix_in_one_stream():
    """A chunk of LF-only lines and one with CRs take different paths; a line split between them stays whole."""
    decoder = SSEDecoder()
    events = [*decoder.feed(b"data: a\n\ndata: b"), *decoder.feed(b"c\r\n\r\ndata:  d\n"), *decoder.feed(b"\n")]
    assert [e.data for e in events] == ["a", "bc", " d"]
