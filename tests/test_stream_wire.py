"""MoldUDP64 and SoupBinTCP: what is encoded decodes to the same thing, and bad bytes are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit.errors import BadInput
from mcastkit.stream import mold, soup

SESSION = mold.session_field("FEED1")
messages = st.lists(st.binary(max_size=300), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1 - 100), messages)
def test_a_mold_packet_round_trips(sequence: int, batch: list[bytes]) -> None:
    packet = mold.decode(mold.encode(SESSION, sequence, batch))
    assert (packet.session, packet.sequence, packet.messages, packet.end_of_session) == (
        SESSION,
        sequence,
        batch,
        False,
    )
    assert packet.next_sequence == sequence + len(batch)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=2**40), messages, st.integers(min_value=330, max_value=9000))
def test_packing_keeps_order_and_the_size_limit(sequence: int, batch: list[bytes], limit: int) -> None:
    packets = [mold.decode(p) for p in mold.packets(SESSION, sequence, batch, limit)]
    assert all(len(raw) <= limit for raw in mold.packets(SESSION, sequence, batch, limit))
    assert [m for p in packets for m in p.messages] == batch
    expected = sequence
    for packet in packets:
        assert packet.sequence == expected and packet.messages
        expected = packet.next_sequence


def test_a_message_too_big_for_a_packet_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        mold.packets(SESSION, 1, [bytes(mold.max_message(1000) + 1)], 1000)
    assert len(mold.packets(SESSION, 1, [bytes(mold.max_message(1000))], 1000)[0]) == 1000


def test_heartbeat_and_end_of_session() -> None:
    beat = mold.decode(mold.heartbeat(SESSION, 42))
    assert (beat.sequence, beat.messages, beat.end_of_session) == (42, [], False)
    end = mold.decode(mold.end_of_session(SESSION, 43))
    assert (end.sequence, end.end_of_session) == (43, True)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"short", "shorter than the 20-byte header"),
        (mold.encode(SESSION, 1, [b"abc"])[:-1], "cut short"),
        (mold.encode(SESSION, 1, [b"abc"]) + b"x", "after the 1 announced"),
        (mold.HEADER.pack(SESSION, 1, 2) + b"\x00\x01a", "2 messages announced, 1 present"),
    ],
)
def test_malformed_packets_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(mold.MoldError, match=why):
        mold.decode(data)


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=0xFFFF))
def test_a_request_round_trips(sequence: int, count: int) -> None:
    data = mold.encode_request(SESSION, sequence, count)
    assert len(data) == 20
    assert mold.decode_request(data) == (SESSION, sequence, count)


@pytest.mark.parametrize("name", ["", "ELEVENCHARS", "two words", "caf\u00e9"])
def test_a_bad_session_name_is_bad_input(name: str) -> None:
    with pytest.raises(BadInput, match="1-10 printable ASCII"):
        mold.session_field(name)


ascii_field = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=6)


@given(ascii_field, ascii_field, ascii_field, st.integers(min_value=0, max_value=10**20 - 1))
def test_a_soup_login_round_trips(user: str, password: str, session: str, sequence: int) -> None:
    encoded = soup.Login(user, password, session, sequence).encode()
    assert len(encoded) == 2 + 1 + soup.LOGIN_PAYLOAD
    [(kind, payload)] = soup.Reader().feed(encoded)
    assert kind == soup.LOGIN_REQUEST
    assert soup.Login.decode(payload) == soup.Login(user, password, session, sequence)


def test_login_accepted_round_trips() -> None:
    [(kind, payload)] = soup.Reader().feed(soup.login_accepted(SESSION, 123456))
    assert kind == soup.LOGIN_ACCEPTED
    assert soup.decode_accepted(payload) == ("FEED1", 123456)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.binary(max_size=200), max_size=30),
    st.lists(st.integers(min_value=1, max_value=50), max_size=40),
)
def test_a_soup_stream_splits_the_same_however_it_is_cut(batch: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(soup.sequenced(m) for m in batch) + soup.packet(soup.SERVER_HEARTBEAT)
    reader, got, position = soup.Reader(), [], 0
    for cut in [*cuts, len(stream)]:
        got += reader.feed(stream[position : position + cut])
        position += cut
    assert got == [(soup.SEQUENCED, m) for m in batch] + [(soup.SERVER_HEARTBEAT, b"")]


def test_a_bad_login_is_refused() -> None:
    with pytest.raises(soup.SoupError, match="login request of 3 bytes"):
        soup.Login.decode(b"abc")
    with pytest.raises(soup.SoupError, match="not a number"):
        soup.Login.decode(b"user  " + b"password  " + b"          " + b"x" * 20)
    with pytest.raises(soup.SoupError, match="length 0"):
        soup.split(b"\x00\x00S")


def test_the_bus_log_writes_text_as_text_and_anything_else_in_hex() -> None:
    from mcastkit.stream.logger import lines

    assert lines(41, [b"BUY 100 XBT @ 97000", b"\x00\x01\xff", b"tab\there", b""]) == (
        "41 19 BUY 100 XBT @ 97000\n42 3 0001ff\n43 8 7461620968657265\n44 0 \n"
    )
