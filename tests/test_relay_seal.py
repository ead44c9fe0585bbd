"""Integrity after the handshake: what a sealed link's reader acts on, and what it refuses."""

from __future__ import annotations

import itertools
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastkit.relay.frame import FrameError, FrameType, encode
from mcastkit.relay.seal import MAX_UNSEALED, SEAL_SIZE, SealedDecoder, Sealer, derive_keys

SECRET = b"k" * 64
INGRESS, EGRESS = 1, 2


def _pair() -> tuple[Sealer, SealedDecoder]:
    """The ingress's sealer and the egress's decoder of one link, keyed as the handshake keys them."""
    ingress_hello, egress_hello = secrets.token_bytes(41), secrets.token_bytes(41)
    ingress = derive_keys(SECRET, INGRESS, ingress_hello, egress_hello)
    egress = derive_keys(SECRET, EGRESS, egress_hello, ingress_hello)
    assert ingress.send == egress.receive and ingress.receive == egress.send
    assert ingress.send != ingress.receive
    return Sealer(ingress.send), SealedDecoder(egress.receive)


def _data(sequence: int, payload: bytes = b"payload") -> bytes:
    return encode(FrameType.DATA, payload, group=0xEF010101, port=5000, sequence=sequence)


def _sealed(sealer: Sealer, data: bytes) -> bytes:
    return data + sealer.seal(data)


def _sequences(decoder: SealedDecoder, data: bytes) -> list[int]:
    return [frame[4] for frame in decoder.feed(data)]


def test_every_link_has_its_own_keys() -> None:
    nonces = [secrets.token_bytes(41) for _ in range(4)]  # HELLO payloads
    first = derive_keys(SECRET, INGRESS, nonces[0], nonces[1])
    second = derive_keys(SECRET, INGRESS, nonces[2], nonces[3])
    assert {first.send, first.receive}.isdisjoint({second.send, second.receive})
    assert derive_keys(b"other" * 13, INGRESS, nonces[0], nonces[1]).send != first.send


def test_frames_are_released_only_with_the_seal_after_them() -> None:
    sealer, decoder = _pair()
    write = _sealed(sealer, _data(1) + _data(2))
    assert _sequences(decoder, write[:-SEAL_SIZE]) == []  # held back: not yet proven
    assert decoder.pending == len(write) - SEAL_SIZE
    assert _sequences(decoder, write[-SEAL_SIZE:]) == [1, 2]
    assert decoder.pending == 0


@settings(deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=6), st.lists(st.integers(0, 2000), max_size=8))
def test_any_chunking_of_sealed_writes_gives_the_same_frames(sizes: list[int], cuts: list[int]) -> None:
    sealer, decoder = _pair()
    stream, expected, sequence = b"", [], 0
    for size in sizes:
        write = b"".join(_data(sequence + i) for i in range(size))
        expected += list(range(sequence, sequence + size))
        sequence += size
        stream += _sealed(sealer, write)
    points = [0, *sorted({min(c, len(stream)) for c in cuts}), len(stream)]
    got = []
    for start, stop in itertools.pairwise(points):
        got += _sequences(decoder, stream[start:stop])
    assert got == expected


@pytest.mark.parametrize("attack", ["altered", "injected", "dropped", "replayed", "reordered", "wrong_key"])
def test_what_the_path_does_to_sealed_writes_is_a_protocol_error(attack: str) -> None:
    sealer, decoder = _pair()
    writes = [_sealed(sealer, _data(n)) for n in (1, 2, 3)]
    if attack == "altered":
        tampered = bytearray(writes[1])
        tampered[35] ^= 1  # one bit of the datagram (its header is 32 bytes)
        stream = writes[0] + bytes(tampered)
    elif attack == "injected":
        stream = writes[0] + _data(99) + writes[1]  # an unsealed frame slipped in before a real write
    elif attack == "dropped":
        stream = writes[0] + writes[2]
    elif attack == "replayed":
        stream = writes[0] + writes[0]
    elif attack == "reordered":
        stream = writes[1] + writes[0]
    else:
        stream = _sealed(Sealer(b"x" * 32), _data(1))
    delivered: list[int] = []
    with pytest.raises(FrameError, match="integrity check failed"):
        for frame in decoder.feed(stream):
            delivered.append(frame[4])
    assert 99 not in delivered and len(delivered) <= 1  # at most the first, genuine write


def test_a_seal_of_the_wrong_size_and_too_much_unsealed_are_refused() -> None:
    _sealer, decoder = _pair()
    with pytest.raises(FrameError, match="SEAL of 3 bytes"):
        list(decoder.feed(_data(1) + encode(FrameType.SEAL, b"abc")))
    _sealer, decoder = _pair()
    big = encode(FrameType.DATA, b"x" * 60_000, group=1, port=1, sequence=1)
    with pytest.raises(FrameError, match="without a SEAL"):
        for _ in range(MAX_UNSEALED // len(big) + 2):
            list(decoder.feed(big))
