"""The shared secret and the mutual HMAC handshake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from mcastkit.relay.auth import (
    HELLO,
    AuthError,
    Role,
    SecretError,
    handshake,
    load_secret,
    proof,
)
from mcastkit.relay.frame import HEADER_SIZE, Decoder, FrameType, encode

GOOD = b"correct horse battery staple"
#: What `openssl rand -hex 32` prints: 256 bits.
STRONG = "3b1f9a7c5e2d4b6a8c0e1f3a5b7d9c2e4f6a8b0c1d3e5f7a9b2c4d6e8f0a1b3c"


def test_secret_file_is_read_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(f"  {STRONG} \n")
    path.chmod(0o600)
    assert load_secret(path=str(path)) == STRONG.encode()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_secret_file_others_can_read_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret"
    path.write_text(STRONG)
    path.chmod(mode)
    with pytest.raises(
        SecretError, match=f"--secret-file {path} is readable by group or others; chmod 600 {path}"
    ):
        load_secret(path=str(path))


@pytest.mark.parametrize(
    ("secret", "bits"),
    [
        (STRONG[:63], 252),  # hex: 4 bits a character
        ("correct horse battery staple", 224),  # any byte: 8 bits, 28 characters
        ("Z" * 43, 255),  # letters and digits: 5.95 bits
    ],
)
def test_a_weak_secret_is_refused_with_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str, bits: int
) -> None:
    path = tmp_path / "secret"
    path.write_text(secret)
    path.chmod(0o600)
    with pytest.raises(
        SecretError, match=rf"carries at most {bits} bits, under 256; make one with `openssl rand -hex 32`"
    ):
        load_secret(path=str(path))
    monkeypatch.setenv("RELAY_SECRET", secret)
    with pytest.raises(
        SecretError, match=f"--secret-env RELAY_SECRET: the secret carries at most {bits} bits"
    ):
        load_secret(env="RELAY_SECRET")


def test_what_mcastkit_generates_is_strong_enough() -> None:
    """The lab's `secrets.token_hex(32)` and the stacks' 48 letters and digits pass."""
    from mcastkit.relay.auth import MIN_SECRET_BITS, secret_bits

    assert secret_bits(STRONG.encode()) == 256 >= MIN_SECRET_BITS
    assert secret_bits(b"aZ3" * 16) >= MIN_SECRET_BITS


@pytest.mark.parametrize("content", ["", "\n", "   \t\n"])
def test_empty_secret_file_is_refused_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "relay.secret"
    path.write_text(content)
    with pytest.raises(SecretError, match=f"--secret-file {path} is empty"):
        load_secret(path=str(path))


def test_missing_secret_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.secret"
    with pytest.raises(SecretError, match=f"--secret-file {path}: no such file"):
        load_secret(path=str(path))
    with pytest.raises(SecretError, match="is a directory"):
        load_secret(path=str(tmp_path))


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_SECRET", STRONG)
    assert load_secret(env="RELAY_SECRET") == STRONG.encode()
    monkeypatch.setenv("RELAY_SECRET", " ")
    with pytest.raises(SecretError, match="--secret-env RELAY_SECRET is empty"):
        load_secret(env="RELAY_SECRET")
    monkeypatch.delenv("RELAY_SECRET")
    with pytest.raises(SecretError, match="RELAY_SECRET: the environment variable is not set"):
        load_secret(env="RELAY_SECRET")


def test_proof_binds_secret_role_and_both_hellos_with_their_sessions() -> None:
    a, b = HELLO.pack(Role.EGRESS, b"a" * 32, 1), HELLO.pack(Role.INGRESS, b"b" * 32, 2)
    base = proof(GOOD, Role.INGRESS, a, b)
    assert base != proof(b"other", Role.INGRESS, a, b)
    assert base != proof(GOOD, Role.EGRESS, a, b)
    assert base != proof(GOOD, Role.INGRESS, b, a)
    assert base != proof(GOOD, Role.INGRESS, a, HELLO.pack(Role.INGRESS, b"b" * 32, 3))  # another session
    assert base == proof(GOOD, Role.INGRESS, a, b)


def test_a_session_id_rewritten_on_the_path_fails_the_handshake() -> None:
    """The session id steers the egress's duplicate filter and resume: it cannot be forged."""

    def forge_session(hello: bytearray) -> None:
        hello[-8:] = (666).to_bytes(8, "big")  # the session id: the HELLO's last 8 bytes

    listener, dialer = asyncio.run(_pair(GOOD, GOOD, rewrite_hello=forge_session))
    assert isinstance(listener, AuthError) and "does not know the shared secret" in str(listener)
    # The dialer (the egress) says what the silent close means, not only that it happened.
    assert isinstance(dialer, AuthError)
    assert "the two ends have different secrets" in str(dialer)


async def _pair(
    listener_secret: bytes,
    dialer_secret: bytes,
    *,
    listener_role: Role = Role.EGRESS,
    rewrite_hello: Callable[[bytearray], None] | None = None,
) -> tuple[object, object]:
    """Run the handshake between a listener and a dialer; return each side's result or error.

    ``rewrite_hello``: the dialer goes through a hop that lets it change the dialer's HELLO frame.
    """
    results: dict[str, object] = {}
    done = asyncio.Event()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            results["listener"] = await handshake(
                reader, writer, secret=listener_secret, role=listener_role, session=1, dialer=False, timeout=2
            )
        except AuthError as err:
            results["listener"] = err
        writer.close()
        done.set()

    async def hop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert rewrite_hello is not None
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        hello = bytearray(await reader.readexactly(HEADER_SIZE + HELLO.size))
        rewrite_hello(hello)
        up_writer.write(bytes(hello))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(4096):
                dst.write(data)
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    servers = [server]
    if rewrite_hello is not None:
        servers.append(await asyncio.start_server(hop, "127.0.0.1", 0))
    reader, writer = await asyncio.open_connection("127.0.0.1", servers[-1].sockets[0].getsockname()[1])
    try:
        results["dialer"] = await handshake(
            reader, writer, secret=dialer_secret, role=Role.INGRESS, session=2, dialer=True, timeout=2
        )
    except AuthError as err:
        results["dialer"] = err
    await asyncio.wait_for(done.wait(), 5)
    writer.close()
    for each in servers:
        each.close()
    return results["listener"], results["dialer"]


def test_handshake_succeeds_both_ways_with_the_same_secret() -> None:
    listener, dialer = asyncio.run(_pair(GOOD, GOOD))
    assert getattr(listener, "role", None) is Role.INGRESS and getattr(listener, "session", None) == 2
    assert getattr(dialer, "role", None) is Role.EGRESS and getattr(dialer, "session", None) == 1


def test_wrong_secret_fails_on_both_sides() -> None:
    listener, dialer = asyncio.run(_pair(GOOD, b"guessed"))
    assert isinstance(listener, AuthError) and "does not know the shared secret" in str(listener)
    # The dialer (the egress) says what the silent close means, not only that it happened.
    assert isinstance(dialer, AuthError)
    assert "the two ends have different secrets" in str(dialer)


def test_same_role_peer_is_refused() -> None:
    listener, _ = asyncio.run(_pair(GOOD, GOOD, listener_role=Role.INGRESS))
    assert isinstance(listener, AuthError) and "the peer is an ingress too" in str(listener)


def test_listener_reveals_no_proof_to_a_dialer_with_the_wrong_secret() -> None:
    """All an impostor gets from a listener is a HELLO (a random nonce), then the connection closes."""

    async def scenario() -> list[int]:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(AuthError):
                await handshake(reader, writer, secret=GOOD, role=Role.EGRESS, session=1, dialer=False)
            writer.close()

        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(encode(FrameType.HELLO, HELLO.pack(Role.INGRESS, b"n" * 32, 3)))
        writer.write(encode(FrameType.PROOF, b"\0" * 32))
        received = await asyncio.wait_for(reader.read(), 5)  # until the listener closes
        writer.close()
        server.close()
        return [frame[0] for frame in Decoder().feed(received)]

    assert asyncio.run(scenario()) == [FrameType.HELLO]


def test_silent_peer_times_out() -> None:
    async def scenario() -> AuthError | None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await handshake(
                reader, writer, secret=GOOD, role=Role.INGRESS, session=1, dialer=True, timeout=0.2
            )
        except AuthError as err:
            return err
        finally:
            writer.close()
            server.close()
        return None

    err = asyncio.run(scenario())
    assert err is not None and "no complete handshake within 0.2 s" in str(err)
