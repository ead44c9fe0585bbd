"""The shared secret and the mutual HMAC challenge-response handshake (see :mod:`mcastkit.relay`)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Protocol

from mcastkit.errors import BadInput
from mcastkit.relay.frame import HEADER_SIZE, FrameError, FrameType, encode, parse_header
from mcastkit.relay.seal import SealKeys, derive_keys

log = logging.getLogger("mcastkit.relay")

LABEL = b"mcastkit-relay-v1"
NONCE_SIZE = 32
HELLO = struct.Struct("!B32sQ")
PROOF_SIZE = hashlib.sha256().digest_size
HANDSHAKE_TIMEOUT = 5.0
#: A secret must carry at least this much entropy, estimated from its length and the characters
#: it uses: an attacker who records one handshake can test guesses offline.
MIN_SECRET_BITS = 256
_GENERATE = "openssl rand -hex 32"


class Role(IntEnum):
    INGRESS = 1
    EGRESS = 2

    @property
    def peer(self) -> Role:
        return Role.EGRESS if self is Role.INGRESS else Role.INGRESS


class SecretError(BadInput):
    """The secret cannot be read or is empty: the operator's ``--secret-file``/``--secret-env`` (exit 2)."""


class AuthError(Exception):
    """The peer did not prove it knows the secret (or spoke something else)."""


def load_secret(*, path: str | None = None, env: str | None = None) -> bytes:
    """The secret from a file or an environment variable, without surrounding whitespace."""
    if path is not None:
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            raise SecretError(f"--secret-file {path}: no such file") from None
        except IsADirectoryError:
            raise SecretError(f"--secret-file {path}: is a directory") from None
        except OSError as err:
            raise SecretError(f"--secret-file {path}: cannot read: {err.strerror}") from None
        secret = raw.strip()
        if not secret:
            raise SecretError(f"--secret-file {path} is empty; refusing to run an open relay")
        if Path(path).stat().st_mode & 0o077:
            raise SecretError(f"--secret-file {path} is readable by group or others; chmod 600 {path}")
        return _strong(secret, f"--secret-file {path}")
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise SecretError(f"--secret-env {env}: the environment variable is not set")
        secret = value.strip().encode()
        if not secret:
            raise SecretError(f"--secret-env {env} is empty; refusing to run an open relay")
        return _strong(secret, f"--secret-env {env}")
    raise SecretError("a secret is required: pass --secret-file FILE or --secret-env NAME")


def secret_bits(secret: bytes) -> int:
    """Entropy the secret can carry at most: its length times the bits of its alphabet (hex 4,
    letters and digits 5.95, base64 6, any byte 8). A lower bound on guessing work, not a measure."""
    text = secret.decode("latin-1")
    if all(c in "0123456789abcdefABCDEF" for c in text):
        per_char = 4.0
    elif text.isalnum() and text.isascii():
        per_char = 5.95
    elif all(c.isalnum() or c in "+/=-_" for c in text) and text.isascii():
        per_char = 6.0
    else:
        per_char = 8.0
    return int(len(secret) * per_char)


def _strong(secret: bytes, where: str) -> bytes:
    bits = secret_bits(secret)
    if bits < MIN_SECRET_BITS:
        raise SecretError(
            f"{where}: the secret carries at most {bits} bits, under {MIN_SECRET_BITS}; "
            f"make one with `{_GENERATE}`"
        )
    return secret


def proof(secret: bytes, prover: Role, verifier_hello: bytes, prover_hello: bytes) -> bytes:
    """HMAC-SHA256 of both HELLO payloads (role, nonce, session each), the verifier's first: a
    session id or nonce changed on the path makes the proof fail."""
    return hmac.new(secret, LABEL + bytes([prover]) + verifier_hello + prover_hello, hashlib.sha256).digest()


class FrameSource(Protocol):
    """What the handshake reads from (an asyncio StreamReader, or the relay's Connection)."""

    async def readexactly(self, n: int, /) -> bytes: ...


class FrameSink(Protocol):
    """What the handshake writes to (an asyncio StreamWriter, or the relay's Connection)."""

    def write(self, data: bytes, /) -> None: ...

    async def drain(self) -> None: ...


@dataclass(frozen=True)
class PeerHello:
    role: Role
    nonce: bytes
    session: int
    #: the link's keys for sealing what follows the handshake (:mod:`mcastkit.relay.seal`)
    keys: SealKeys = field(repr=False)


async def _read_frame(reader: FrameSource, expected: FrameType) -> bytes:
    header = await reader.readexactly(HEADER_SIZE)
    frame_type, length, *_ = parse_header(header)
    if frame_type != expected:
        raise AuthError(f"expected {expected.name} during the handshake, got {FrameType(frame_type).name}")
    return await reader.readexactly(length)


async def _exchange(
    reader: FrameSource,
    writer: FrameSink,
    *,
    secret: bytes,
    role: Role,
    session: int,
    dialer: bool,
) -> PeerHello:
    nonce = secrets.token_bytes(NONCE_SIZE)
    hello = HELLO.pack(role, nonce, session)
    writer.write(encode(FrameType.HELLO, hello))
    payload = await _read_frame(reader, FrameType.HELLO)
    if len(payload) != HELLO.size:
        raise AuthError(f"HELLO of {len(payload)} bytes (expected {HELLO.size})")
    peer_role, peer_nonce, peer_session = HELLO.unpack(payload)
    if peer_role not in (Role.INGRESS, Role.EGRESS):
        raise AuthError(f"unknown peer role {peer_role}")
    if peer_role != role.peer:
        raise AuthError(f"the peer is an {role.name.lower()} too: connect an ingress to an egress")
    if peer_nonce == nonce:
        raise AuthError("peer reflected our nonce")
    mine = proof(secret, role, payload, hello)
    expected = proof(secret, role.peer, hello, payload)
    if dialer:
        writer.write(encode(FrameType.PROOF, mine))
    try:
        theirs = await _read_frame(reader, FrameType.PROOF)
    except asyncio.IncompleteReadError:
        if not dialer:
            raise
        # The listener checks the dialer's proof first and closes on a wrong one without a word
        # (it reveals no proof of its own to an impostor): this is how a wrong secret looks here.
        raise AuthError(
            "the peer closed the connection after checking our proof: the two ends have different "
            "secrets (check --secret-file or --secret-env on both)"
        ) from None
    if not hmac.compare_digest(theirs, expected):
        raise AuthError("wrong proof: the peer does not know the shared secret")
    if not dialer:
        writer.write(encode(FrameType.PROOF, mine))
    await writer.drain()
    keys = derive_keys(secret, role, hello, payload)
    return PeerHello(Role(peer_role), peer_nonce, peer_session, keys)


async def handshake(
    reader: FrameSource,
    writer: FrameSink,
    *,
    secret: bytes,
    role: Role,
    session: int,
    dialer: bool,
    timeout: float = HANDSHAKE_TIMEOUT,
) -> PeerHello:
    """Prove and verify the secret; raise :class:`AuthError` unless both succeed."""
    try:
        return await asyncio.wait_for(
            _exchange(reader, writer, secret=secret, role=role, session=session, dialer=dialer), timeout
        )
    except TimeoutError:
        raise AuthError(f"no complete handshake within {timeout:g} s") from None
    except asyncio.IncompleteReadError:
        raise AuthError("connection closed during the handshake") from None
    except FrameError as err:
        raise AuthError(f"invalid handshake frame: {err}") from None
    except (ConnectionError, OSError) as err:
        raise AuthError(f"connection failed during the handshake: {err}") from None
