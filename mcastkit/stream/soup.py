"""SoupBinTCP (Nasdaq, version 4.0): the packets of a TCP login-and-replay session.

Every packet is a 2-byte big-endian length (of what follows it), a 1-byte type and a
payload. The client logs in with a username, a password, a session (blank: the current
one) and the next sequence number it wants (0: only new messages); the server accepts
(session and the sequence number it will send next) or rejects, then sends sequenced data
packets, one message each, in order, and a heartbeat after each second it sends nothing.
Alphanumeric fields are left-justified and padded with spaces; numeric ones are ASCII
digits right-justified and padded with spaces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LENGTH = struct.Struct("!H")
DEBUG = ord("+")
LOGIN_ACCEPTED = ord("A")
LOGIN_REJECTED = ord("J")
SEQUENCED = ord("S")
SERVER_HEARTBEAT = ord("H")
END_OF_SESSION = ord("Z")
UNSEQUENCED = ord("U")
LOGIN_REQUEST = ord("L")
CLIENT_HEARTBEAT = ord("R")
LOGOUT_REQUEST = ord("O")
#: Login Rejected reasons.
NOT_AUTHORIZED = b"A"
SESSION_NOT_AVAILABLE = b"S"
#: Username 6, password 10, session 10, sequence number 20 (some servers append a 5-byte
#: heartbeat timeout, which is accepted and ignored).
LOGIN_PAYLOAD = 46
#: A message's length and type are two bytes and one: the largest message is 65,534 bytes.
MAX_MESSAGE = 0xFFFF - 1


class SoupError(ValueError):
    """Bytes that are not a well-formed SoupBinTCP packet."""


def packet(kind: int, payload: bytes = b"") -> bytes:
    return LENGTH.pack(len(payload) + 1) + bytes((kind,)) + payload


def sequenced(message: bytes) -> bytes:
    """A sequenced data packet: also the journal's record of ``message``."""
    return LENGTH.pack(len(message) + 1) + b"S" + message


def _alpha(value: str, width: int, what: str) -> bytes:
    data = value.encode("ascii")
    if len(data) > width:
        raise SoupError(f"{what} {value!r}: longer than {width} characters")
    return data.ljust(width)


def _numeric(value: int, width: int) -> bytes:
    return str(value).rjust(width).encode("ascii")


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    #: Blank: the session that is current.
    session: str
    #: The next sequence number wanted; 0 for only what is published from now on.
    sequence: int

    def encode(self) -> bytes:
        return packet(
            LOGIN_REQUEST,
            _alpha(self.username, 6, "username")
            + _alpha(self.password, 10, "password")
            + _alpha(self.session, 10, "session")
            + _numeric(self.sequence, 20),
        )

    @classmethod
    def decode(cls, payload: bytes) -> Login:
        if len(payload) not in (LOGIN_PAYLOAD, LOGIN_PAYLOAD + 5):
            raise SoupError(f"login request of {len(payload)} bytes (expected {LOGIN_PAYLOAD})")
        text = payload.decode("ascii", "replace")
        number = text[26:46].strip()
        if not number.isdigit():
            raise SoupError(f"login request: sequence number {number!r} is not a number")
        return cls(text[0:6].strip(), text[6:16].strip(), text[16:26].strip(), int(number))


def login_accepted(session: bytes, sequence: int) -> bytes:
    return packet(LOGIN_ACCEPTED, session + _numeric(sequence, 20))


def decode_accepted(payload: bytes) -> tuple[str, int]:
    """(session, next sequence number) of a Login Accepted payload."""
    if len(payload) != 30:
        raise SoupError(f"login accepted of {len(payload)} bytes (expected 30)")
    number = payload[10:].strip()
    if not number.isdigit():
        raise SoupError(f"login accepted: sequence number {number!r} is not a number")
    return payload[:10].decode("ascii", "replace").strip(), int(number)


class Reader:
    """Cuts a byte stream into packets: :meth:`feed` returns every whole packet received so far."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self._pending + data if self._pending else data
        packets, used = split(buffer)
        self._pending = buffer[used:]
        return packets


def split(buffer: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The whole packets at the start of ``buffer`` as (type, payload), and the bytes they take."""
    out: list[tuple[int, bytes]] = []
    position, end = 0, len(buffer)
    while position + 3 <= end:
        length = (buffer[position] << 8) | buffer[position + 1]
        if length == 0:
            raise SoupError(f"a packet of length 0 at byte {position}")
        stop = position + 2 + length
        if stop > end:
            break
        out.append((buffer[position + 2], buffer[position + 3 : stop]))
        position = stop
    return out, position
