"""SoupBinTCP login-and-replay from the journal: the server and a client.

The server gives each logged-in client a thread that sends the journal's bytes with
``sendfile`` (a segment's records are already SoupBinTCP sequenced packets) from the
sequence number the client asked for, then follows the journal live, with a heartbeat after
each idle second. Access is decided by the network (PrivateLink's allowed principals and
the security groups): the username and password are read and not checked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcastkit.net.addresses import Endpoint
from mcastkit.stream import soup
from mcastkit.stream.journal import Journal

log = logging.getLogger(__name__)

LOGIN_WITHIN = 5.0
HEARTBEAT_EVERY = 1.0
#: A client that sends nothing (no heartbeat) for this long is logged out.
CLIENT_SILENCE = 15.0
MAX_CLIENTS = 64
_RECEIVE = 1 << 22


@dataclass
class ReplayCounts:
    logins: int = 0
    rejected: int = 0
    sessions_open: int = 0


class ReplayServer:
    """Listens on ``endpoint`` and serves each client from ``journal`` in a thread of its own."""

    def __init__(self, journal: Journal, session: bytes, endpoint: Endpoint) -> None:
        self.journal = journal
        self.session = session
        self.counts = ReplayCounts()
        self._stop = threading.Event()
        self._listener = socket.create_server((endpoint.host, endpoint.port), backlog=128, reuse_port=False)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="replay-accept", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return
            with self._lock:
                full = self.counts.sessions_open >= MAX_CLIENTS
                if not full:
                    self.counts.sessions_open += 1
            if full:
                log.warning("replay: %s refused: %d sessions open", peer[0], MAX_CLIENTS)
                conn.close()
                continue
            threading.Thread(
                target=self._serve, args=(conn, peer), name=f"replay-{peer[0]}", daemon=True
            ).start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                login = _read_login(conn)
                if login is None:  # a health check's connect-and-close, or a client that said nothing
                    return
                self._session(conn, peer, login)
        except OSError as err:
            log.info("replay: %s:%d left: %s", peer[0], peer[1], err.strerror)
        finally:
            with self._lock:
                self.counts.sessions_open -= 1

    def _session(self, conn: socket.socket, peer: tuple[str, int], login: soup.Login) -> None:
        journal = self.journal
        if login.session and login.session.encode("ascii", "replace").ljust(10) != self.session:
            self.counts.rejected += 1
            conn.sendall(soup.packet(soup.LOGIN_REJECTED, soup.SESSION_NOT_AVAILABLE))
            log.info("replay: %s asked for session %r: rejected", peer[0], login.session)
            return
        live = journal.next_sequence
        wanted = login.sequence or live
        sequence = min(max(wanted, journal.first_sequence), live)
        conn.sendall(soup.login_accepted(self.session, sequence))
        self.counts.logins += 1
        log.info("replay: %s:%d logged in at %d (journal ends at %d)", peer[0], peer[1], sequence, live)
        conn.setblocking(True)
        reader = soup.Reader()
        heard = time.monotonic()
        while not self._stop.is_set():
            end = journal.next_sequence
            for path, offset, length, _count in journal.spans(sequence, end):
                _send_file(conn, path, offset, length)
            sequence = end
            now = time.monotonic()
            said = _incoming(conn, reader)
            if said is _LEFT:
                log.info("replay: %s:%d logged out at %d", peer[0], peer[1], sequence)
                return
            if said is _HEARD:
                heard = now
            elif now - heard > CLIENT_SILENCE:
                log.info("replay: %s:%d silent for %.0f s: logged out", peer[0], peer[1], CLIENT_SILENCE)
                return
            if journal.wait_beyond(sequence, HEARTBEAT_EVERY) <= sequence:
                conn.sendall(soup.packet(soup.SERVER_HEARTBEAT))


def _send_file(conn: socket.socket, path: Path, offset: int, length: int) -> None:
    with open(path, "rb") as data:
        fd = data.fileno()
        while length:
            sent = os.sendfile(conn.fileno(), fd, offset, length)
            if sent == 0:
                raise OSError(0, "journal file shorter than its index says")
            offset += sent
            length -= sent


def _read_login(conn: socket.socket) -> soup.Login | None:
    conn.settimeout(LOGIN_WITHIN)
    reader = soup.Reader()
    try:
        while True:
            data = conn.recv(256)
            if not data:
                return None
            for kind, payload in reader.feed(data):
                if kind == soup.LOGIN_REQUEST:
                    return soup.Login.decode(payload)
    except (TimeoutError, soup.SoupError):
        return None


_LEFT, _HEARD = object(), object()


def _incoming(conn: socket.socket, reader: soup.Reader) -> object | None:
    """:data:`_LEFT` when the client closed or logged out, :data:`_HEARD` when it sent
    anything else, None when it sent nothing since the last look."""
    said = None
    while select.select([conn], [], [], 0)[0]:
        try:
            data = conn.recv(4096)
        except ConnectionError:
            return _LEFT
        if not data:
            return _LEFT
        try:
            packets = reader.feed(data)
        except soup.SoupError:
            return _LEFT
        if any(kind == soup.LOGOUT_REQUEST for kind, _ in packets):
            return _LEFT
        said = _HEARD
    return said


# -- the client --------------------------------------------------------------------------------


class ReplayError(ConnectionError):
    """The replay service refused or ended the session."""


def replay(
    endpoint: Endpoint,
    session: str,
    start: int,
    deliver: Callable[[int, list[bytes]], bool],
    *,
    timeout: float = 5.0,
    stop: threading.Event | None = None,
) -> int:
    """Log in at ``start`` and hand each batch of messages to ``deliver(first, messages)`` until
    it returns False; returns the next sequence number not delivered."""
    with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE)
        conn.sendall(soup.Login("", "", session, start).encode())
        reader = soup.Reader()
        sequence = -1
        last_beat = time.monotonic()
        while stop is None or not stop.is_set():
            data = conn.recv(_RECEIVE)
            if not data:
                raise ReplayError(f"replay {endpoint}: the server closed the session at {sequence}")
            messages: list[bytes] = []
            try:
                packets = reader.feed(data)
            except soup.SoupError as err:
                raise ReplayError(f"replay {endpoint}: {err}") from None
            for kind, payload in packets:
                if kind == soup.SEQUENCED:
                    messages.append(payload)
                elif kind == soup.LOGIN_ACCEPTED:
                    _, sequence = soup.decode_accepted(payload)
                elif kind == soup.LOGIN_REJECTED:
                    raise ReplayError(
                        f"replay {endpoint}: login rejected ({payload.decode('ascii', 'replace')})"
                    )
                elif kind == soup.END_OF_SESSION:
                    raise ReplayError(f"replay {endpoint}: end of session at {sequence}")
            if messages:
                first = sequence
                sequence += len(messages)
                if not deliver(first, messages):
                    _logout(conn)
                    return sequence
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_EVERY:
                conn.sendall(soup.packet(soup.CLIENT_HEARTBEAT))
                last_beat = now
        _logout(conn)
        return sequence


def _logout(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(soup.packet(soup.LOGOUT_REQUEST))
