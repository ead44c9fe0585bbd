"""Integrity after the handshake: every write on a link is sealed, and nothing is acted on unsealed.

Each side derives a key per direction from the shared secret and both HELLOs; after
each write (a batch of frames, a heartbeat, a RESUME) the writer adds a SEAL frame whose payload
is a tag (HMAC-SHA256, 16 bytes) over a per-direction write counter and the bytes of that write. The reader
holds frames back until the SEAL after them verifies, so a frame injected, altered, dropped,
repeated or reordered on the path closes the link (``reason="protocol_error"``) and is never
emitted. Keys are fresh for every link (new nonces), so nothing recorded on one link verifies
on another.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

from mcastkit.relay.frame import (
    HEADER_SIZE,
    Decoder,
    FrameError,
    FrameType,
    SpanFrame,
    encode,
)

LABEL = b"mcastkit-relay-v3 seal"
TAG_SIZE = 16
KEY_SIZE = 32
SEAL_SIZE = HEADER_SIZE + TAG_SIZE
#: Bytes of frames a reader holds waiting for their SEAL: the largest write is one batch of
#: the ingress (64 messages of up to 64 KiB each, with their headers).
MAX_UNSEALED = 8 * 1024 * 1024

_SEAL = int(FrameType.SEAL)


@dataclass(frozen=True)
class SealKeys:
    """The key this side seals its writes with and the key it checks the peer's with."""

    send: bytes
    receive: bytes


def derive_keys(secret: bytes, role: int, hello: bytes, peer_hello: bytes) -> SealKeys:
    """Both sides compute the same two keys: each direction's from its writer's role and both
    HELLO payloads (roles, nonces and session ids), the writer's first."""

    def key(writer_role: int, writer_hello: bytes, reader_hello: bytes) -> bytes:
        material = LABEL + bytes([writer_role]) + writer_hello + reader_hello
        return hmac.new(secret, material, hashlib.sha256).digest()

    peer_role = 3 - role  # ingress 1 <-> egress 2
    return SealKeys(send=key(role, hello, peer_hello), receive=key(peer_role, peer_hello, hello))


class _Tagger:
    """HMAC-SHA256 over (write counter, bytes), cut to 16 bytes (measured faster here than keyed
    BLAKE2b for writes of a few datagrams and more: ``bench/seal_bench.py``)."""

    __slots__ = ("_base", "counter")

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self.counter = 0

    def tag(self, data: bytes | memoryview) -> bytes:
        mac = self._base.copy()
        mac.update(self.counter.to_bytes(8, "big"))
        mac.update(data)
        self.counter += 1
        return mac.digest()[:TAG_SIZE]


class Sealer:
    """The SEAL frame to send after each write."""

    __slots__ = ("_tagger",)

    def __init__(self, key: bytes) -> None:
        self._tagger = _Tagger(key)

    def seal(self, data: bytes | memoryview) -> bytes:
        return encode(FrameType.SEAL, self._tagger.tag(data))


class SealedDecoder(Decoder):
    """A :class:`Decoder` that yields the frames of a write only once the SEAL after it verifies;
    raises :class:`FrameError` on a wrong tag, a SEAL of the wrong size, or too much unsealed."""

    __slots__ = ("_tagger",)

    def __init__(self, key: bytes) -> None:
        super().__init__()
        self._tagger = _Tagger(key)

    @property
    def verified(self) -> int:
        """Writes whose seal has verified so far."""
        return self._tagger.counter

    def _spans(self, data: bytes) -> Iterator[SpanFrame]:
        view = memoryview(data)
        sealed = 0  # where the write being read began
        held: list[SpanFrame] = []
        for frame in self._frames(data):
            if frame[0] != _SEAL:
                held.append(frame)
                continue
            start, stop = frame[6], frame[7]
            if stop - start != TAG_SIZE:
                self._failed = True
                raise FrameError(f"SEAL of {stop - start} bytes (expected {TAG_SIZE})")
            if not hmac.compare_digest(
                self._tagger.tag(view[sealed : start - HEADER_SIZE]), view[start:stop]
            ):
                self._failed = True
                raise FrameError("integrity check failed: frames were altered, injected or lost on the path")
            yield from held
            held.clear()
            sealed = stop
        if len(data) - sealed > MAX_UNSEALED:
            self._failed = True
            raise FrameError(f"{len(data) - sealed} bytes without a SEAL (at most {MAX_UNSEALED})")
        self._pending = data[sealed:]
