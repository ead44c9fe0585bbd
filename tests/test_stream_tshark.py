"""Wireshark's own MoldUDP64 and SoupBinTCP dissectors read what mcastkit writes the way it means it.

An independent check of the wire formats: the packets are built by mcastkit's encoders, put
in a capture file, and decoded by ``tshark`` (Debian's ``tshark``; installed by ``make test``
as root, else this module skips).
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from mcastkit.stream import mold, soup

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark (Debian: tshark)")

SESSION = mold.session_field("FEED1")
UDP_PORT, TCP_PORT = 30500, 17001


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total & 0xFFFF) + (total >> 16)
    return ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF


def _ip(protocol: int, source: str, destination: str, body: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(body),
        1,
        0,
        8,
        protocol,
        0,
        socket.inet_aton(source),
        socket.inet_aton(destination),
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return b"\x01\x00\x5e\x0a\x01\x01" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + header + body


def _udp(payload: bytes) -> bytes:
    body = struct.pack("!HHHH", 40000, UDP_PORT, 8 + len(payload), 0) + payload
    return _ip(17, "10.20.0.5", "239.10.1.9", body)


def _tcp(payload: bytes, seq: int, *, from_server: bool) -> bytes:
    ports = (TCP_PORT, 50000) if from_server else (50000, TCP_PORT)
    body = struct.pack("!HHIIBBHHH", *ports, seq, 0, 5 << 4, 0x18, 65535, 0, 0) + payload
    hosts = ("10.20.0.5", "10.99.0.7") if from_server else ("10.99.0.7", "10.20.0.5")
    return _ip(6, *hosts, body)


def _capture(tmp_path: Path, frames: list[bytes]) -> Path:
    capture = tmp_path / "capture.pcap"
    with capture.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for number, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000, number, len(frame), len(frame)) + frame)
    return capture


def _verbose(tmp_path: Path, frames: list[bytes], decode_as: str, protocol: str) -> str:
    command = ["tshark", "-r", str(_capture(tmp_path, frames)), "-d", decode_as, "-V", "-O", protocol]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def _decode(tmp_path: Path, frames: list[bytes], decode_as: str, fields: list[str]) -> list[list[str]]:
    capture = _capture(tmp_path, frames)
    command = ["tshark", "-r", str(capture), "-d", decode_as, "-T", "fields", "-E", "occurrence=a",
               "-E", "aggregator=|"] + [arg for field in fields for arg in ("-e", field)]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_tshark_reads_moldudp64_packets_heartbeats_and_requests(tmp_path: Path) -> None:
    messages = [b"A" * 5, bytes(range(64)), b""]
    frames = [
        _udp(mold.encode(SESSION, 1_000_000_000_007, messages)),
        _udp(mold.heartbeat(SESSION, 1_000_000_000_010)),
        _udp(mold.encode_request(SESSION, 1_000_000_000_008, 2)),
    ]
    rows = _decode(
        tmp_path,
        frames,
        f"udp.port=={UDP_PORT},moldudp64",
        [
            "moldudp64.session",
            "moldudp64.sequence",
            "moldudp64.count",
            "moldudp64.msglen",
            "moldudp64.msgseq",
            "moldudp64.msgdata",
        ],
    )
    session, sequence, count, lengths, sequences, data = rows[0]
    assert (session.strip(), sequence, count) == ("FEED1", "1000000000007", "3")
    assert lengths.split("|") == ["5", "64", "0"]
    assert sequences.split("|")[:2] == ["1000000000007", "1000000000008"]
    assert data.split("|")[:2] == [messages[0].hex(), messages[1].hex()]
    assert rows[1][1:3] == ["1000000000010", "0"]
    assert rows[2][1:3] == ["1000000000008", "2"]


def test_tshark_reads_a_soupbintcp_login_and_replay(tmp_path: Path) -> None:
    login = soup.Login("user", "secret", "FEED1", 42).encode()
    answer = soup.login_accepted(SESSION, 42) + soup.sequenced(b"first") + soup.sequenced(b"second")
    answer += soup.packet(soup.SERVER_HEARTBEAT)
    frames = [_tcp(login, 1, from_server=False), _tcp(answer, 1, from_server=True)]
    text = _verbose(tmp_path, frames, f"tcp.port=={TCP_PORT},soupbintcp", "soupbintcp")
    lines = [line.strip() for line in text.splitlines()]
    kinds = [line.split("(")[-1].strip("')") for line in lines if line.startswith("Packet Type:")]
    assert kinds == ["L", "A", "S", "S", "H"]
    assert "User Name: user" in lines and "Requested sequence number: 42" in lines
    assert lines.count("Session: FEED1") == 2 and "Next sequence number: 42" in lines
    # tshark numbers the sequenced packets itself from the login's answer: as mcastkit means them.
    assert [line for line in lines if line.startswith("Sequence number:")] == [
        "Sequence number: 42 (Calculated)", "Sequence number: 43 (Calculated)",
    ]  # fmt: skip
    assert [line for line in lines if line.startswith("Message:")] == [
        f"Message: {b'first'.hex()}", f"Message: {b'second'.hex()}",
    ]  # fmt: skip
