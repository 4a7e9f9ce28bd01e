"""The SSE decoder follows the WHATWG rules on frames split anywhere."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from app.anthropic.sse import EventTooLargeError, ServerSentEvent, SSEDecoder, comment, encode


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


def test_a_bom_split_across_reads_is_still_dropped() -> None:
    assert feed_all([b"\xef", b"\xbb", b"\xbfdata: 1\n\n"]) == [ServerSentEvent("message", "1")]
    assert feed_all([b"\xef\xbb", b"x: 1\n"]) == []  # not a BOM: the bytes are kept as a line


def test_a_line_over_the_limit_raises_before_it_ends() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    decoder.feed(b"data: " + b"a" * 500)
    with pytest.raises(EventTooLargeError) as raised:
        decoder.feed(b"a" * 600)
    assert raised.value.limit == 1000


def test_a_whole_line_over_the_limit_in_one_read_raises() -> None:
    with pytest.raises(EventTooLargeError):
        SSEDecoder(max_event_bytes=100).feed(b"data: " + b"a" * 200 + b"\n\n")


def test_an_event_whose_data_lines_add_up_past_the_limit_raises() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    assert decoder.feed(b"data: " + b"a" * 60 + b"\n\n") == [ServerSentEvent("message", "a" * 60)]
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"data: " + b"a" * 60 + b"\ndata: " + b"b" * 60 + b"\n")


def test_lines_at_the_limit_pass() -> None:
    line = b"data: " + b"a" * 94
    assert SSEDecoder(max_event_bytes=100).feed(line + b"\n\n") == [ServerSentEvent("message", "a" * 94)]


def test_a_long_line_in_small_reads_is_decoded_in_linear_time() -> None:
    # 4 MB in 1 KB reads: rescanning the buffer on each read did 4096 passes over up to 4 MB
    # (seconds); reading each byte once takes milliseconds.
    raw = b'data: "' + b"a" * (4 * 1024**2) + b'"\n\n'
    decoder = SSEDecoder()
    started = time.perf_counter()
    events = [event for offset in range(0, len(raw), 1024) for event in decoder.feed(raw[offset:offset + 1024])]
    assert time.perf_counter() - started < 1.0
    assert [len(event.data) for event in events] == [4 * 1024**2 + 2]


def test_whole_events_read_together_keep_their_own_bytes() -> None:
    first = b'event: message_start\ndata: {"type":"message_start"}\n\n'
    deltas = (b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0}\n\n'
              b"event: ping\ndata: {}\n\n")
    decoder = SSEDecoder()
    decoder.feed(first)
    events = decoder.feed(deltas)
    assert events == [ServerSentEvent("content_block_delta", '{"type": "content_block_delta", "index": 0}'),
                      ServerSentEvent("ping", "{}")]
    assert [e.frame for e in events] == [
        b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0}\n\n',
        b"event: ping\ndata: {}\n\n"]


@pytest.mark.parametrize("read", [
    b"event: a\nid: 4\ndata: 1\n\n",  # a third line
    b"event: a\r\ndata: 1\r\n\r\n",  # CRLF
    b"event: a\ndata: 1\ndata: 2\n\n",  # two data lines
    b"event: a\ndata: 1\n\nevent: b\ndata:",  # ends mid-event
])
def test_any_other_shape_is_decoded_line_by_line_without_a_frame(read: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    decoder = SSEDecoder()
    decoder.feed(b"event: x\ndata: 0\n\n")
    lines: list[bytes] = []
    monkeypatch.setattr(decoder, "_feed", recording_feed(decoder, lines))
    events = decoder.feed(read)
    byte_by_byte = feed_all([b"event: x\ndata: 0\n\n", *(read[i:i + 1] for i in range(len(read)))])[1:]
    assert events == byte_by_byte
    assert all(e.frame is None for e in events)
    assert lines == [read]


def recording_feed(decoder: SSEDecoder, reads: list[bytes]) -> Any:
    """``decoder._feed`` (the line-by-line decoder), recording the reads it is given."""
    line_by_line = decoder._feed

    def feed(chunk: bytes, events: list[ServerSentEvent]) -> None:
        reads.append(chunk)
        line_by_line(chunk, events)
    return feed


@pytest.mark.parametrize(("read", "data"), [
    (b"data: 1\n\n", ["1"]),
    (b'data: {"a":1}\n\ndata: [DONE]\n\n', ['{"a":1}', "[DONE]"]),  # OpenAI's shape
    (b"data: \n\n", [""]),  # an empty data line is still an event
])
def test_data_only_events_are_decoded_at_once_without_a_frame(read: bytes, data: list[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: 0\n\n")
    lines: list[bytes] = []
    monkeypatch.setattr(decoder, "_feed", recording_feed(decoder, lines))
    events = decoder.feed(read)
    assert events == [ServerSentEvent("message", d) for d in data]
    assert all(e.frame is None for e in events)
    assert lines == []  # the whole-read path took it


def test_whole_events_keep_the_last_id_and_an_empty_name_means_message() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 7\nretry: 100\ndata: 0\n\n")
    assert decoder.feed(b"event: \ndata: 1\n\n") == [ServerSentEvent("message", "1", "7", 100)]


def test_whole_events_over_the_limit_still_raise() -> None:
    decoder = SSEDecoder(max_event_bytes=40)
    decoder.feed(b"event: x\ndata: 0\n\n")
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"event: a\ndata: " + b"x" * 50 + b"\n\n")


def test_whole_events_that_are_not_valid_utf8_get_no_frame() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"event: x\ndata: 0\n\n")
    [event] = decoder.feed(b'event: content_block_delta\ndata: {"text":"a\xffb"}\n\n')
    assert event == ServerSentEvent("content_block_delta", '{"text":"a\ufffdb"}')
    assert event.frame is None


EVENT_LINES = [b"event: content_block_delta", b"event: ", b"event:x", b"event: a b"]
DATA_LINES = [b"data: {\"a\":1}", b"data: ", b"data:", b"data: [DONE]", b"data:  two spaces", b"data: \xc3\xbc",
              b"data: \xff", b"data: \xe2\x80\xa8"]
OTHER_LINES = [b"id: 3", b"retry: 50", b": comment", b"data: a\rdata: b", b"field", b""]


def fuzzed_block(rng: random.Random) -> bytes:
    """Mostly the shapes the fast path takes (an event line or none, one data line), else any lines."""
    shape = rng.random()
    if shape < 0.4:
        return rng.choice(EVENT_LINES) + b"\n" + rng.choice(DATA_LINES) + b"\n\n"
    if shape < 0.7:
        return rng.choice(DATA_LINES) + b"\n\n"
    lines = rng.choices(EVENT_LINES + DATA_LINES + OTHER_LINES, k=rng.randint(1, 4))
    return b"".join(line + rng.choice([b"\n", b"\r\n", b"\r"]) for line in lines) + b"\n" * rng.randint(0, 2)


def test_whole_reads_decode_as_the_line_by_line_decoder_does() -> None:
    """A seeded fuzz: runs of blocks read whole give the events their bytes give one at a time,
    with and without a size limit."""
    rng = random.Random(18)
    framed = 0
    for _ in range(4000):
        blocks = [fuzzed_block(rng) for _ in range(rng.randint(1, 6))]
        reads = [b"event: x\ndata: 0\n\n"]
        while blocks:  # several blocks per read, as a burst arrives
            take = rng.randint(1, len(blocks))
            reads.append(b"".join(blocks[:take]))
            del blocks[:take]
        limit = rng.choice([None, None, 20, 40, 64])
        whole = decoded(reads, limit)
        assert whole == decoded([bytes([b]) for b in b"".join(reads)], limit), (reads, limit)
        for event in whole[0]:
            if event.frame is not None:
                framed += 1
                assert any(event.frame in read for read in reads)
                assert event.frame.startswith(b"event: ")
    assert framed > 1000  # the fast path was taken, not only the line-by-line one


def decoded(reads: list[bytes], limit: int | None) -> tuple[list[ServerSentEvent], bool]:
    """The events ``reads`` give, up to an over-limit event, and whether one came."""
    decoder, events = SSEDecoder(max_event_bytes=limit), []
    for read in reads:
        try:
            events += decoder.feed(read)
        except EventTooLargeError as exc:
            return events + exc.completed, True
    return events, False
