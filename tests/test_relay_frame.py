"""Relay framing: round trip over any chunking, and a decoder that only ever raises FrameError."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit.relay.frame import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    VERSION,
    Decoder,
    FrameError,
    FrameType,
    encode,
    group_to_int,
    int_to_group,
)

frames = st.lists(
    st.tuples(
        st.sampled_from(list(FrameType)),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**16 - 1),
        st.integers(5, 2**16 - 1),  # segment: a RUN of up to 300 bytes stays within 64 datagrams
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**64 - 1),
        st.binary(max_size=300),
    ).filter(lambda frame: frame[0] != FrameType.RUN or frame[-1]),  # a RUN holds a datagram at least
    max_size=20,
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def _decode_all(decoder: Decoder, chunks: list[bytes]) -> list[tuple[int, int, int, int, int, int, bytes]]:
    out = []
    for chunk in chunks:
        for frame_type, group, port, segment, sequence, time_ns, payload in decoder.feed(chunk):
            out.append((frame_type, group, port, segment, sequence, time_ns, bytes(payload)))
    return out


def _encode_all(items: list) -> bytes:
    return b"".join(
        encode(t, payload, group=g, port=p, segment=seg, sequence=s, time_ns=ns)
        for t, g, p, seg, s, ns, payload in items
    )


@settings(deadline=None)  # a shared CI machine must not turn a slow example into a failure
@given(frames, st.lists(st.integers(0, 10_000), max_size=10))
def test_round_trip_survives_any_chunking(items: list, cuts: list[int]) -> None:
    stream = _encode_all(items)
    decoder = Decoder()
    decoded = _decode_all(decoder, _split(stream, cuts))
    assert decoded == [(int(t), *rest) for t, *rest in items]
    assert decoder.pending == 0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=8))
def test_decoder_on_garbage_raises_only_frame_error_and_never_over_reads(
    data: bytes, cuts: list[int]
) -> None:
    decoder = Decoder()
    consumed = 0
    try:
        for chunk in _split(data, cuts):
            for frame_type, *_, payload in decoder.feed(chunk):
                assert frame_type in {int(t) for t in FrameType}
                # The frame decoded must be exactly the bytes at this point of the stream.
                header = HEADER.unpack_from(data, consumed)
                assert header[3] == len(payload) <= MAX_PAYLOAD
                assert bytes(payload) == data[consumed + HEADER_SIZE : consumed + HEADER_SIZE + len(payload)]
                consumed += HEADER_SIZE + len(payload)
    except FrameError:
        return
    assert consumed + decoder.pending == len(data)


@settings(deadline=None)
@given(frames.filter(bool), st.binary(min_size=1, max_size=200))
def test_valid_frames_then_garbage_yields_the_valid_ones_first(items: list, junk: bytes) -> None:
    stream = _encode_all(items)
    decoder = Decoder()
    got = []
    with pytest.raises(FrameError):
        for frame in decoder.feed(stream + b"\x00" * HEADER_SIZE + junk):
            got.append(frame)
    assert len(got) == len(items)


def _header(**overrides: int) -> bytes:
    fields = {"magic": MAGIC, "version": VERSION, "type": 1, "length": 0, "segment": 0}
    fields.update(overrides)
    return HEADER.pack(
        fields["magic"], fields["version"], fields["type"], fields["length"], 0, 0, fields["segment"], 0, 0
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_header(magic=0x4745), "bad magic 0x4745"),
        (b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n", "bad magic"),
        (b"\x16\x03\x01", "bad magic"),  # a TLS client hello, shorter than a header
        (_header(version=2), "frame version 2"),
        (_header(type=9), "unknown frame type 9"),
        (_header(type=0), "unknown frame type 0"),
        (_header(length=MAX_PAYLOAD + 1), f"length {MAX_PAYLOAD + 1} exceeds"),
        (_header(length=0xFFFFFFFF), "length 4294967295 exceeds"),
        (_header(type=6, length=64, segment=0), "RUN frame of 64 bytes in 0-byte datagrams"),
        (_header(type=6, length=0, segment=64), "RUN frame of 0 bytes"),
        (_header(type=6, length=65, segment=1), "in 1-byte datagrams \\(at most 64\\)"),
    ],
)
def test_hostile_headers_are_rejected_with_a_reason(data: bytes, message: str) -> None:
    decoder = Decoder()
    with pytest.raises(FrameError, match=message):
        list(decoder.feed(data))
    with pytest.raises(FrameError):
        list(decoder.feed(encode(FrameType.HEARTBEAT)))  # a failed stream stays failed


def test_truncated_frame_is_held_back_not_yielded() -> None:
    frame = encode(FrameType.DATA, b"x" * 100, group=group_to_int("239.1.1.1"), port=5000, sequence=1)
    decoder = Decoder()
    assert list(decoder.feed(frame[:-1])) == []
    assert decoder.pending == len(frame) - 1
    (got,) = list(decoder.feed(frame[-1:]))
    assert bytes(got[6]) == b"x" * 100
    assert decoder.pending == 0


def test_header_layout_is_the_documented_one() -> None:
    frame = encode(FrameType.DATA, b"abc", group=group_to_int("239.1.2.3"), port=5001, sequence=7, time_ns=9)
    assert HEADER_SIZE == 32
    assert frame[:2] == b"MK"
    assert frame[2:4] == bytes([3, 1])  # version 3, DATA
    assert struct.unpack("!I", frame[4:8]) == (3,)
    assert frame[8:12] == bytes([239, 1, 2, 3])
    assert struct.unpack("!HHQQ", frame[12:32]) == (5001, 0, 7, 9)
    assert frame[32:] == b"abc"
    assert int_to_group(group_to_int("239.1.2.3")) == "239.1.2.3"


def test_encode_refuses_oversized_payload() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        encode(FrameType.DATA, b"x" * (MAX_PAYLOAD + 1))
