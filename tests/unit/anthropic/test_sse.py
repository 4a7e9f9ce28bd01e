"""The SSE decoder follows the WHATWG rules on frames split anywhere."""

from __future__ import annotations

import pytest

from app.anthropic.sse import ServerSentEvent, SSEDecoder, comment, encode


def feed_all(chunks: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def test_encode_names_the_event_after_its_type() -> None:
    assert encode({"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert comment() == b": keepalive\n\n"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_dispatches(newline: bytes) -> None:
    raw = b"event: a" + newline + b"data: 1" + newline + newline + b"data: 2" + newline + newline
    assert feed_all([raw]) == [ServerSentEvent("a", "1"), ServerSentEvent("message", "2")]


def test_frames_split_at_every_byte_give_the_same_events() -> None:
    raw = 'event: x\r\ndata: {"t":"é€😀"}\r\n\r\n: c\r\ndata: a\r\ndata: b\r\n\r\n'.encode()
    whole = feed_all([raw])
    assert whole == [ServerSentEvent("x", '{"t":"é€😀"}'), ServerSentEvent("message", "a\nb")]
    for cut in range(1, len(raw)):
        assert feed_all([raw[:cut], raw[cut:]]) == whole
    assert feed_all([bytes([b]) for b in raw]) == whole


def test_crlf_split_across_reads_is_one_line_break() -> None:
    assert feed_all([b"data: 1\r", b"\n\r", b"\n"]) == [ServerSentEvent("message", "1")]


def test_unicode_line_separators_inside_json_are_data() -> None:
    raw = 'data: {"text":"a\u2028b\u2029c\u0085d"}\n\n'.encode()
    [event] = feed_all([raw])
    assert event.json() == {"text": "a\u2028b\u2029c\u0085d"}


def test_bom_comments_ids_and_field_without_value() -> None:
    raw = b"\xef\xbb\xbfid: 7\nretry: 100\ndata\n\n: ignored\nevent: e\ndata:x\n\n"
    assert feed_all([raw]) == [
        ServerSentEvent("message", "", "7", 100),
        ServerSentEvent("e", "x", "7", 100),
    ]


def test_event_without_data_is_not_dispatched_and_eof_discards_partial() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: lonely\n\n") == []
    assert decoder.feed(b"data: partial") == []
