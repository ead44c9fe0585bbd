"""The ingress's replay window: what it keeps, what it lets go, and how a batch is cut for a resume."""

from __future__ import annotations

import pytest

from mcastkit.relay.frame import Decoder, FrameError, FrameType, decode_resume, encode, encode_resume
from mcastkit.relay.window import ENTRY_OVERHEAD, ReplayWindow, frames_from

SECOND = 1_000_000_000


def _frames(chunk: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, segment, sequence, payload) of each frame."""
    return [(t, seg, seq, bytes(p)) for t, _g, _p, seg, seq, _ns, p in Decoder().feed(chunk)]


def test_entries_keep_their_absolute_index_as_the_oldest_leave_by_bytes() -> None:
    entry = 100 + ENTRY_OVERHEAD  # each batch's frames and its bookkeeping
    window = ReplayWindow(max_bytes=3 * entry, max_seconds=60)
    for index in range(10):
        window.keep(1, index * 2 + 1, 2, index, b"x" * 100)
    assert (window.start, window.end, window.bytes) == (7, 10, 3 * entry)
    assert [window[i].first for i in range(window.start, window.end)] == [15, 17, 19]


def test_entries_older_than_the_age_bound_leave_whatever_the_bytes() -> None:
    window = ReplayWindow(max_bytes=1 << 30, max_seconds=2)
    for second in range(6):
        window.keep(1, second + 1, 1, second * SECOND, b"y")
    assert [window[i].received_ns // SECOND for i in range(window.start, window.end)] == [3, 4, 5]


def test_a_long_window_compacts_its_list_and_indexes_stay_right() -> None:
    window = ReplayWindow(max_bytes=100 * (10 + ENTRY_OVERHEAD), max_seconds=60)
    for index in range(20_000):
        window.keep(index % 3, index + 1, 1, 0, b"z" * 10)
    assert (window.start, window.end) == (19_900, 20_000)
    assert window[19_950].first == 19_951 and window[19_950].key == 19_950 % 3
    assert len(window._chunks) < 10_000  # the evicted slots were released


def test_a_disabled_window_keeps_nothing() -> None:
    window = ReplayWindow(max_bytes=0)
    window.keep(1, 1, 1, 0, b"a")
    assert window.start == window.end == 0


def test_frames_from_leaves_out_whole_frames_before_the_sequence() -> None:
    chunk = b"".join(encode(FrameType.DATA, bytes([s]), group=9, port=9, sequence=s) for s in (5, 6, 7))
    assert [seq for _t, _s, seq, _p in _frames(frames_from(chunk, 6))] == [6, 7]
    assert frames_from(chunk, 5) == chunk
    assert frames_from(chunk, 8) == b""


def test_frames_from_cuts_a_run_that_starts_before_the_sequence() -> None:
    run = encode(FrameType.RUN, b"aaaabbbbccccdd", group=9, port=9, segment=4, sequence=10)  # 10, 11, 12, 13
    after = encode(FrameType.DATA, b"e", group=9, port=9, sequence=14)
    assert _frames(frames_from(run + after, 12)) == [
        (FrameType.RUN, 4, 12, b"ccccdd"),
        (FrameType.DATA, 0, 14, b"e"),
    ]
    assert _frames(frames_from(run + after, 13)) == [
        (FrameType.RUN, 4, 13, b"dd"),
        (FrameType.DATA, 0, 14, b"e"),
    ]


def test_resume_frames_round_trip_and_refuse_what_no_egress_sends() -> None:
    wanted = {(0xEF010101 << 16) | 5000: 7, (0xEF010102 << 16) | 5001: 2**40}
    ((frame_type, *_rest, known, _ns, payload),) = list(Decoder().feed(encode_resume(wanted, known=True)))
    assert frame_type == FrameType.RESUME and decode_resume(known, payload) == (True, wanted)
    ((*_rest, known, _ns, payload),) = list(Decoder().feed(encode_resume({}, known=False)))
    assert decode_resume(known, payload) == (False, {})
    with pytest.raises(FrameError, match="multiple of 14"):
        decode_resume(1, b"x" * 15)
    with pytest.raises(FrameError, match="start at 1"):
        decode_resume(1, encode_resume({1: 0}, known=True)[32:])
    with pytest.raises(FrameError, match=r"0 \(a fresh start\) or 1"):
        decode_resume(2, b"")
