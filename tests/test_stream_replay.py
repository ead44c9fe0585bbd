"""SoupBinTCP replay from the journal, and MoldUDP64 retransmission: served right, storms cut."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcastkit.net.addresses import Endpoint
from mcastkit.stream import mold, soup
from mcastkit.stream.journal import Fsync, Journal
from mcastkit.stream.replay import ReplayError, ReplayServer, replay
from mcastkit.stream.retransmit import REPEAT_WINDOW, Retransmitter

SESSION = mold.session_field("FEED1")


def message(n: int) -> bytes:
    return n.to_bytes(8, "big") * (1 + n % 5)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal(tmp_path, "FEED1", roll_bytes=1 << 16, fsync=Fsync.NONE)
    for start in range(1, 5001, 50):
        journal.append([message(n) for n in range(start, start + 50)])
    yield journal
    journal.close()


@pytest.fixture
def server(journal: Journal) -> Iterator[ReplayServer]:
    server = ReplayServer(journal, SESSION, Endpoint("127.0.0.1", 0))
    server.start()
    yield server
    server.stop()


def collect(server: ReplayServer, start: int, count: int, session: str = "FEED1") -> tuple[int, list[int]]:
    got: list[int] = []

    def deliver(first: int, messages: list[bytes]) -> bool:
        assert messages == [message(n) for n in range(first, first + len(messages))]
        got.extend(range(first, first + len(messages)))
        return len(got) < count

    end = replay(Endpoint("127.0.0.1", server.port), session, start, deliver, timeout=5)
    return end, got


@pytest.mark.parametrize("start", [1, 2, 777, 4999])
def test_replay_from_any_number(server: ReplayServer, start: int) -> None:
    count = min(1500, 5001 - start)
    end, got = collect(server, start, count)
    assert got[:count] == list(range(start, start + count))
    assert end == start + len(got)


def test_replay_follows_the_journal_live(server: ReplayServer, journal: Journal) -> None:
    def later() -> None:
        time.sleep(0.3)
        journal.append([message(n) for n in range(5001, 5011)])

    threading.Thread(target=later).start()
    _, got = collect(server, 4995, 16)
    assert got[:16] == list(range(4995, 5011))


def test_zero_means_only_what_comes_next(server: ReplayServer, journal: Journal) -> None:
    threading.Timer(0.3, lambda: journal.append([message(5001)])).start()
    _, got = collect(server, 0, 1)
    assert got == [5001]


def test_a_start_past_the_end_begins_at_the_end(server: ReplayServer, journal: Journal) -> None:
    threading.Timer(0.3, lambda: journal.append([message(5001)])).start()
    _, got = collect(server, 9_999_999, 1)
    assert got == [5001]


def test_another_session_is_rejected(server: ReplayServer) -> None:
    with pytest.raises(ReplayError, match=r"login rejected \(S\)"):
        collect(server, 1, 1, session="OTHER")
    assert server.counts.rejected == 1


def test_a_connect_and_close_is_harmless(server: ReplayServer) -> None:
    for _ in range(3):  # what a load balancer's TCP health check does
        socket.create_connection(("127.0.0.1", server.port)).close()
    _, got = collect(server, 10, 5)
    assert got[:5] == list(range(10, 15))


def test_an_idle_session_gets_heartbeats(server: ReplayServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(soup.Login("", "", "", 5001).encode())
        reader, kinds = soup.Reader(), []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline and soup.SERVER_HEARTBEAT not in kinds:
            kinds += [kind for kind, _ in reader.feed(conn.recv(4096))]
    assert kinds[0] == soup.LOGIN_ACCEPTED
    assert soup.SERVER_HEARTBEAT in kinds


# -- retransmission ---------------------------------------------------------------------------


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, peer: tuple[str, int]) -> None:
        self.sent.append((data, peer))


def retransmitter(
    journal: Journal, clock: list[float], rate: int = 10**9
) -> tuple[Retransmitter, FakeSocket]:
    sock = FakeSocket()
    r = Retransmitter(
        sock, journal, SESSION, packet_bytes=1400, bytes_per_second=rate, clock=lambda: clock[0]
    )  # type: ignore[arg-type]
    return r, sock


A, B = ("10.0.0.1", 4000), ("10.0.0.2", 4000)


def test_a_request_is_answered_with_the_messages(journal: Journal) -> None:
    r, sock = retransmitter(journal, [0.0])
    r.handle(mold.encode_request(SESSION, 100, 30), A)
    packets = [mold.decode(data) for data, peer in sock.sent if peer == A]
    assert [m for p in packets for m in p.messages] == [message(n) for n in range(100, 130)]
    assert all(len(data) <= 1400 for data, _ in sock.sent)
    assert (r.counts.answered, r.counts.messages) == (1, 30)


def test_repeats_are_suppressed_per_requester(journal: Journal) -> None:
    clock = [0.0]
    r, sock = retransmitter(journal, clock)
    request = mold.encode_request(SESSION, 100, 5)
    for _ in range(10):  # a receiver asking again and again: answered once
        r.handle(request, A)
    r.handle(request, B)  # another receiver that missed the same packet: answered
    clock[0] = REPEAT_WINDOW + 0.001
    r.handle(request, A)  # after the window: a genuine retry
    assert (r.counts.requests, r.counts.answered, r.counts.suppressed) == (12, 3, 9)
    assert {peer for _, peer in sock.sent} == {A, B}


def test_the_byte_budget_throttles_and_refills(journal: Journal) -> None:
    clock = [0.0]
    r, _ = retransmitter(journal, clock, rate=2000)
    r.handle(mold.encode_request(SESSION, 1, 200), A)  # spends the second's budget
    r.handle(mold.encode_request(SESSION, 300, 5), B)
    assert r.counts.throttled == 1
    clock[0] = 5.0
    r.handle(mold.encode_request(SESSION, 300, 5), B)
    assert r.counts.answered == 2


@pytest.mark.parametrize(
    "request_bytes",
    [
        mold.encode_request(mold.session_field("OTHER"), 1, 1),
        mold.encode_request(SESSION, 0, 1),
        mold.encode_request(SESSION, 5001, 1),
        mold.encode_request(SESSION, 10, 0),
        b"not a request",
    ],
)
def test_bad_requests_are_refused(journal: Journal, request_bytes: bytes) -> None:
    r, sock = retransmitter(journal, [0.0])
    r.handle(request_bytes, A)
    assert (r.counts.refused, sock.sent) == (1, [])
