"""What ingress and egress share: authenticated TCP links, dialing with backoff, heartbeats, drain.

A link is an :class:`asyncio.Protocol` rather than a stream pair: after the handshake every
chunk TCP delivers goes straight to the relay's handler, with no stream buffer, future or task
switch in between (at tens of thousands of chunks a second those cost more than the work).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from mcastkit.net.sockets import set_tcp_options
from mcastkit.relay.auth import HANDSHAKE_TIMEOUT, AuthError, Role, handshake
from mcastkit.relay.frame import FrameError, FrameType, encode
from mcastkit.relay.metrics import RelayStats
from mcastkit.relay.seal import SEAL_SIZE, SealedDecoder, Sealer, SealKeys
from mcastkit.relay.throttle import Throttle
from mcastkit.relay.tls import TlsContexts

log = logging.getLogger("mcastkit.relay")

#: A link on which nothing arrived for this many heartbeat intervals is dead.
DEAD_AFTER_HEARTBEATS = 3
BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 5.0
DRAIN_SECONDS = 2.0
CONNECT_TIMEOUT = 5.0
#: Accepted connections allowed in the handshake at once; past it each new one closes another
#: (:meth:`RelayNode._victim`).
MAX_HANDSHAKES = 128
#: A handshake whose peer has said nothing this long goes first when one must give way.
SPEAK_WITHIN = 0.25
#: Connections the kernel queues for accept (strangers arriving in a burst must not crowd a
#: real peer's SYN out; the kernel caps it at net.core.somaxconn).
LISTEN_BACKLOG = 1024
#: Bytes an unauthenticated peer may send before the handshake is judged (it needs < 200).
HANDSHAKE_BUFFER_LIMIT = 64 * 1024


class Connection(asyncio.Protocol):
    """One TCP connection: buffered reads during the handshake, then every chunk to a handler."""

    def __init__(self, on_connect: Callable[[Connection], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_connect = on_connect
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        #: bytes received during the handshake, and when the connection was made
        self.received = 0
        self.accepted_at = self._loop.time()
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._handler: Callable[[bytes], None] | None = None
        #: why the connection was lost, when it was an error (the transport's queue is then gone)
        self.error: Exception | None = None
        self.last_rx = self._loop.time()
        self.lost: asyncio.Future[None] = self._loop.create_future()

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        set_tcp_options(transport.get_extra_info("socket"))
        if self._on_connect is not None:
            self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        if self._handler is not None:
            self._handler(data)  # it sets ``last_rx`` once what arrived proves to be the peer's
            return
        self.last_rx = self._loop.time()
        self.received += len(data)
        self._buffer += data
        if len(self._buffer) > HANDSHAKE_BUFFER_LIMIT:
            self.abort()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = exc
        self._eof = True
        self._wake()
        if not self.lost.done():
            self.lost.set_result(None)

    # -- what the handshake needs (the shape of StreamReader/StreamWriter) ------------------
    async def readexactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            if self._eof:
                raise asyncio.IncompleteReadError(bytes(self._buffer), count)
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drain(self) -> None:
        """Handshake frames are a few dozen bytes: there is never a backlog to wait for."""

    # -- after the handshake --------------------------------------------------------------
    def start(self, handler: Callable[[bytes], None]) -> None:
        """From now on hand every chunk to ``handler``, starting with what is already buffered."""
        self._handler = handler
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            handler(data)

    @property
    def name(self) -> str:
        address = self.transport.get_extra_info("peername") if self.transport else None
        if isinstance(address, tuple) and len(address) >= 2:
            return f"{address[0]}:{address[1]}"
        return str(address)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


@dataclass(eq=False)
class Link:
    """One authenticated peer connection; everything written on it is sealed, and what it reads
    is handled only once its seal verifies (:mod:`mcastkit.relay.seal`)."""

    connection: Connection
    transport: asyncio.Transport
    name: str
    session: int
    keys: SealKeys = field(repr=False)
    decoder: SealedDecoder = field(init=False)
    sealer: Sealer = field(init=False, repr=False)
    #: whatever the relay keeps per link (the egress: its sequence state)
    context: Any = None
    reason: str | None = None
    heartbeats_sent: int = 0
    heartbeat_sent_at: float = 0.0
    #: every byte handed to the transport since the handshake, seals included (what it still
    #: holds is not yet sent)
    bytes_given: int = 0
    #: called just before :meth:`abort` discards the queue (the ingress counts what it held)
    on_abort: Callable[[Link], None] | None = None

    def __post_init__(self) -> None:
        self.decoder = SealedDecoder(self.keys.receive)
        self.sealer = Sealer(self.keys.send)

    @property
    def last_rx(self) -> float:
        return self.connection.last_rx

    def write(self, data: bytes) -> None:
        """Queue bytes to the peer, sealed; every write after the handshake goes through here.

        Nothing is written once the transport is closing (the peer went away: its
        ``connection_lost`` ends the link).
        """
        if self.transport.is_closing():
            return
        self.transport.writelines((data, self.sealer.seal(data)))
        self.bytes_given += len(data) + SEAL_SIZE

    def abort(self, reason: str) -> None:
        """Close at once, discarding anything still queued (frees the queue's memory).

        The socket's sending side is shut first: uvloop closes the handle only on a later loop
        turn and would go on writing the queue until then, past what the counters were told.
        """
        if self.reason is None:
            self.reason = reason
        if self.on_abort is not None:
            self.on_abort(self)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError), socket.socket(fileno=os.dup(sock.fileno())) as own:
                own.shutdown(socket.SHUT_WR)
        self.transport.abort()


class RelayNode(ABC):
    """Runs links (listening or dialing), authenticates them and keeps them alive."""

    role: Role
    #: the log line once listening (the address and port follow)
    listening_log = "listening on %s:%d"

    def __init__(
        self, *, secret: bytes, stats: RelayStats, heartbeat: float, max_peers: int, tls: TlsContexts | None
    ) -> None:
        self.secret = secret
        #: the link in TLS (:mod:`mcastkit.relay.tls`), or plain TCP
        self.tls = tls
        self.stats = stats
        self._throttle = Throttle(log)
        self.heartbeat = heartbeat
        self.max_peers = max_peers
        self.session = secrets.randbits(64)
        self.links: tuple[Link, ...] = ()
        self._connections = 0
        #: Accepted connections still in the handshake, oldest first (dict keeps insertion order).
        self._handshaking: dict[Connection, None] = {}
        #: Of those, the ones that had sent nothing when last looked at, oldest first.
        self._silent: dict[Connection, None] = {}
        self._seen_sessions: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        #: Set once listening (the bound address is then in ``listening``) and dialing.
        self.ready = asyncio.Event()
        self.listening: tuple[str, int] | None = None

    # -- what a relay adds --------------------------------------------------------------------
    @abstractmethod
    def receive(self, link: Link, data: bytes) -> str | None:
        """Handle bytes from the peer; return a reason to end the link, if it should end.

        Raise :class:`FrameError` on garbage: the link is then closed as a protocol error.
        """

    def link_up(self, link: Link) -> None:  # noqa: B027 (optional hook)
        """Called once the link is authenticated, before any data is handled."""

    def link_down(self, link: Link) -> None:  # noqa: B027 (optional hook)
        """Called once the link has ended (or is being cancelled), before its transport is aborted."""

    async def before_drain(self) -> None:  # noqa: B027 (optional hook)
        """Stop taking new input before the links are drained."""

    # -- running --------------------------------------------------------------------------
    async def run(self, *, listen: tuple[str, int] | None, connect: list[tuple[str, int]]) -> None:
        """Serve until :meth:`stop`; then drain the links and return."""
        loop = asyncio.get_running_loop()
        ticker = asyncio.create_task(self._tick())
        server: asyncio.Server | None = None
        dialers = [asyncio.create_task(self._dial_forever(host, port)) for host, port in connect]
        try:
            if listen is not None:
                server = await loop.create_server(
                    lambda: Connection(self._accepted),
                    listen[0],
                    listen[1],
                    backlog=LISTEN_BACKLOG,
                    ssl=self.tls.server if self.tls else None,
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT if self.tls else None,
                )
                self.listening = server.sockets[0].getsockname()[:2]
                log.info(self.listening_log, *self.listening)
            self.ready.set()
            await self._stopping.wait()
        finally:
            if server is not None:
                server.close()
            await self.before_drain()
            await self._drain()
            # Links were closed gracefully above; what is left is dialing or in backoff.
            tasks = [*dialers, *self._tasks]
            if tasks:
                _done, pending = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
                for task in pending:
                    task.cancel()
            ticker.cancel()
            await asyncio.gather(ticker, *dialers, *self._tasks, return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()

    async def _drain(self) -> None:
        links = self.links
        bye = encode(FrameType.BYE)
        for link in links:
            if not link.transport.is_closing():
                link.write(bye)
        deadline = time.monotonic() + DRAIN_SECONDS
        while any(
            link.transport.get_write_buffer_size() for link in links if not link.transport.is_closing()
        ):
            if time.monotonic() > deadline:
                log.warning("drain: peers did not take the rest of the stream within %s s", DRAIN_SECONDS)
                break
            await asyncio.sleep(0.01)
        for link in links:
            link.transport.close()

    async def _tick(self) -> None:
        while True:
            self.stats.last_tick = time.monotonic()
            await asyncio.sleep(1.0)

    def _accepted(self, connection: Connection) -> None:
        if self._stopping.is_set():
            connection.abort()
            return
        if len(self._handshaking) >= MAX_HANDSHAKES:
            # Unauthenticated connections must not lock a real peer out: one gives way.
            victim = self._victim()
            del self._handshaking[victim]
            self._silent.pop(victim, None)  # its task forgets it a few loop turns later
            self._throttle.warning(
                "handshake_evicted",
                "closing %s: unauthenticated, %d handshakes waiting",
                victim.name,
                MAX_HANDSHAKES,
            )
            self.stats.disconnects["handshake_evicted"] += 1
            victim.abort()
        self._handshaking[connection] = None
        self._silent[connection] = None
        task = asyncio.create_task(self._run_link(connection, dialer=False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    def _victim(self) -> Connection:
        """The handshake to give way: the oldest that has sent nothing for ``SPEAK_WITHIN``, else
        the oldest found (by this scan, oldest first) to have sent something (it had its chance:
        a real peer completes at once), else the oldest. A real peer's HELLO follows its connect
        at once, but is read a loop turn after the accept: a connection that has just arrived is
        kept while others can go. (Choosing among all that have sent something was tried: a
        real peer that has sent its HELLO is then evicted as often as a stranger that stopped
        after one; ``bench/relay_flood.py --hold 0`` fell to 16 of 20.)"""
        silent, now = self._silent, self._loop_time()
        while silent:
            oldest = next(iter(silent))
            if oldest.received:
                del silent[oldest]
                continue
            if now - oldest.accepted_at >= SPEAK_WITHIN:
                del silent[oldest]
                return oldest
            break  # the oldest silent one is still new, and so are the others
        return next((c for c in self._handshaking if c not in silent), next(iter(self._handshaking)))

    async def _dial_forever(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_INITIAL
        connected_before = False
        while not self._stopping.is_set():
            try:
                _transport, connection = await asyncio.wait_for(
                    loop.create_connection(
                        Connection,
                        host,
                        port,
                        ssl=self.tls.client if self.tls else None,
                        ssl_handshake_timeout=HANDSHAKE_TIMEOUT if self.tls else None,
                    ),
                    timeout=CONNECT_TIMEOUT,
                )
            except (OSError, TimeoutError) as err:
                reason = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
                log.warning("cannot reach %s:%d (%s); retrying in %.1f s", host, port, reason, delay)
            else:
                started = time.monotonic()
                if await self._run_link(connection, dialer=True, reconnect=connected_before):
                    connected_before = True
                    if time.monotonic() - started > BACKOFF_MAX:  # a link that flaps keeps backing off
                        delay = BACKOFF_INITIAL
                if self._stopping.is_set():
                    return
                log.info("reconnecting to %s:%d in %.1f s", host, port, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _run_link(self, connection: Connection, *, dialer: bool, reconnect: bool = False) -> bool:
        """Authenticate and serve one connection; True if it was authenticated."""
        name = connection.name
        session = self.session
        try:
            hello = await handshake(
                connection,
                connection,
                secret=self.secret,
                role=self.role,
                session=session,
                dialer=dialer,
            )
        except AuthError as err:
            self.stats.auth_failures += 1
            self._throttle.warning("auth", "auth failed: %s: %s; closing", name, err)
            connection.abort()
            return False
        except (OSError, RuntimeError, EOFError, asyncio.IncompleteReadError) as err:
            # The connection went away mid-handshake (evicted, reset, closed by the peer): a
            # stranger's problem, never a traceback.
            self.stats.disconnects["handshake_aborted"] += 1
            self._throttle.warning(
                "handshake_aborted", "handshake with %s ended: %s", name, err or type(err).__name__
            )
            connection.abort()
            return False
        finally:
            self._handshaking.pop(connection, None)
            self._silent.pop(connection, None)
        # --max-peers counts authenticated peers only, so strangers cannot use up the places.
        if not dialer and self._connections >= self.max_peers:
            log.warning("refused %s: already %d peers (--max-peers)", name, self.max_peers)
            self.stats.disconnects["max_peers"] += 1
            connection.abort()
            return True
        self._connections += 1
        try:
            assert connection.transport is not None
            if self._stopping.is_set():
                connection.transport.close()
                return True
            if session != self.session:
                # This relay began a new session during the handshake (a relaying egress whose
                # ingress restarted): the peer would take it for the old one. It comes back.
                self.stats.disconnects["session_changed"] += 1
                connection.abort()
                return True
            if any(other.session == hello.session for other in self.links):
                # A second live link in one session would interleave (or, with a forged sequence,
                # silence) the first one's stream: refused until the first is gone (a dead link
                # is found by the heartbeat watchdog, so a real reconnect waits for that at most).
                self.stats.disconnects["session_in_use"] += 1
                self._throttle.warning(
                    "session_in_use", "refused %s: session %016x is already linked", name, hello.session
                )
                connection.abort()
                return True
            link = Link(connection, connection.transport, name, hello.session, hello.keys)
            if reconnect or hello.session in self._seen_sessions:
                self.stats.reconnects += 1
            self._seen_sessions.add(hello.session)
            await self._serve_link(link)
            return True
        finally:
            self._connections -= 1

    async def _serve_link(self, link: Link) -> None:
        self.link_up(link)
        self.links = (*self.links, link)
        self.stats.peers = len(self.links)
        peer_role = self.role.peer.name.lower()
        log.info("peer %s authenticated (%s, session %016x)", link.name, peer_role, link.session)
        watchdog = asyncio.create_task(self._watch(link))
        try:
            link.connection.start(self._handler(link))
            await link.connection.lost
        finally:
            watchdog.cancel()
            self.links = tuple(other for other in self.links if other is not link)
            self.stats.peers = len(self.links)
            if link.reason is None:
                link.reason = "truncated_frame" if link.decoder.pending else "closed"
            self.stats.disconnects[link.reason] += 1
            self.link_down(link)
            link.transport.abort()
            if not self._stopping.is_set():
                log.warning("peer %s gone (%s)", link.name, link.reason)

    def _handler(self, link: Link) -> Callable[[bytes], None]:
        """What handles each chunk after the handshake. The link counts as alive (``last_rx``) when
        a seal verifies: bytes injected on the path, which never do, cannot keep a dead link up."""
        receive = self.receive
        connection = link.connection
        decoder = link.decoder
        interval = self.heartbeat
        clock = asyncio.get_running_loop().time

        def on_data(data: bytes) -> None:
            sealed = decoder.verified
            try:
                reason = receive(link, data)
            except FrameError as err:
                log.warning("protocol error from %s: %s; closing", link.name, err)
                link.abort("protocol_error")
                return
            except Exception:  # a bug must cost one link, not the relay
                log.exception("internal error on the link to %s; closing it", link.name)
                link.abort("internal_error")
                return
            if decoder.verified != sealed:
                connection.last_rx = clock()
            if reason is not None:
                link.abort(reason)
            elif connection.last_rx - link.heartbeat_sent_at >= interval:
                # A busy loop runs timers late; beating here keeps a busy relay from looking dead.
                self._beat(link, connection.last_rx)

        return on_data

    @staticmethod
    def _beat(link: Link, now: float) -> None:
        link.heartbeat_sent_at = now
        link.heartbeats_sent += 1
        beat = encode(FrameType.HEARTBEAT, sequence=link.heartbeats_sent, time_ns=time.time_ns())
        link.write(beat)

    async def _watch(self, link: Link) -> None:
        """Send heartbeats; drop the link when the peer has been silent too long."""
        loop = asyncio.get_running_loop()
        dead_after = DEAD_AFTER_HEARTBEATS * self.heartbeat
        while not link.transport.is_closing():
            await asyncio.sleep(self.heartbeat / 2)
            now = loop.time()
            silent = now - link.last_rx
            if silent > dead_after:
                log.warning("peer %s silent for %.1f s: link dead, closing", link.name, silent)
                link.abort("heartbeat_timeout")
                return
            if now - link.heartbeat_sent_at >= self.heartbeat:
                self._beat(link, now)
