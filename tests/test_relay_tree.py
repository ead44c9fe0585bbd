"""A relay tree on loopback: ingress, a middle egress that serves (``--serve``), and a leaf egress.

The leaf must see the ingress's own sequence numbers (so its gaps are the ingress's), resume from
the middle's window, start fresh when the middle or the ingress is a new session, and a slow or
impostor leaf must cost the middle nothing. Helpers come from the link suite.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_relay_link import (
    HEARTBEAT,
    LOOPBACK,
    SECRET,
    Proxy,
    Receiver,
    SealedWriter,
    _egress,
    _endpoint,
    _groups,
    _ingress,
    _label,
    _message,
    _random_group,
    _raw_peer,
    _run,
    _sender,
    running,
    send,
    until,
)

from mcastkit.lab.pki import issue, make_ca
from mcastkit.net.mmsg import run_datagrams
from mcastkit.relay.auth import Role
from mcastkit.relay.downstream import Downstream
from mcastkit.relay.egress import Egress
from mcastkit.relay.frame import FrameType, encode, group_to_int
from mcastkit.relay.metrics import RelayStats, render
from mcastkit.relay.seal import SealedDecoder
from mcastkit.relay.tls import load_tls

pytestmark = pytest.mark.timeout(60)

QUEUE_DROPS = ("no_peer", "slow_peer_queue", "link_lost_queue")


def _middle(mapping: dict[tuple[str, int], tuple[str, int]], port: int = 0, **kwargs: Any) -> Egress:
    """An egress that also serves the egresses below it on loopback."""
    serving = {key: kwargs.pop(key) for key in ("queue_bytes", "replay_bytes") if key in kwargs}
    downstream = Downstream(
        address=(LOOPBACK, port),
        secret=SECRET,
        stats=RelayStats("downstream"),
        heartbeat=HEARTBEAT,
        tls=kwargs.get("tls"),  # the same options up and down, as the command line gives them
        **serving,
    )
    return _egress(mapping, downstream=downstream, **kwargs)


def _served(middle: Egress) -> tuple[str, int]:
    assert middle.downstream is not None and middle.downstream.listening is not None
    return middle.downstream.listening


def _live(middle: Egress) -> int:
    """Egresses below the middle that take the live stream (their RESUME handled)."""
    assert middle.downstream is not None
    return len(middle.downstream._live)


class Frames:
    """What a raw downstream egress reads from the middle: (type, first sequence, datagrams, payload)."""

    def __init__(self, reader: asyncio.StreamReader, writer: SealedWriter) -> None:
        self.reader = reader
        self.decoder = SealedDecoder(writer.keys.receive)
        self.seen: list[tuple[int, int, int, bytes]] = []

    def datagrams(self) -> int:
        return sum(count for _kind, _first, count, _payload in self.seen)

    def sequences(self) -> list[int]:
        return [first + i for _kind, first, count, _payload in self.seen for i in range(count)]

    async def read(self, datagrams: int) -> None:
        while self.datagrams() < datagrams:
            chunk = await asyncio.wait_for(self.reader.read(65536), 5)
            assert chunk, "the middle closed the link"
            for kind, _g, _p, segment, sequence, _t, payload in self.decoder.feed(chunk):
                if kind == FrameType.DATA:
                    self.seen.append((kind, sequence, 1, bytes(payload)))
                elif kind == FrameType.RUN:
                    self.seen.append((kind, sequence, run_datagrams(len(payload), segment), bytes(payload)))


def test_a_burst_crosses_the_tree_whole_with_the_ingress_numbers() -> None:
    """The ingress numbers 40 datagrams before the middle links; what follows reaches the leaf
    numbered 41 on, as the ingress numbered it, and the middle re-emits it too."""

    async def scenario() -> None:
        source, london = _groups()
        _, tokyo = _groups()
        receivers = {london: Receiver(london), tokyo: Receiver(tokyo)}
        sender = _sender()
        messages = [_message(i) for i in range(300)]
        async with running(_ingress([source]), listen=True) as ingress:
            await send(sender, source, [_message(i) for i in range(40)])
            await until(lambda: ingress.stats.drops["no_peer"] == 40, "the numbers nobody takes")
            async with (
                running(_middle({source: london}), connect=[_endpoint(ingress)]) as middle,
                running(_egress({source: tokyo}), connect=[_served(middle)]) as leaf,
            ):
                assert middle.downstream is not None
                reader, writer = await _raw_peer(_served(middle), role=Role.EGRESS)
                raw = Frames(reader, writer)
                await until(lambda: ingress.stats.peers == 1 and _live(middle) == 2, "the tree")
                await send(sender, source, messages)
                await until(lambda: all(len(r.received) == 300 for r in receivers.values()), "both regions")
                await raw.read(300)
                assert raw.sequences() == list(range(41, 341))
                emitted = leaf.stats.groups[_label(tokyo)]
                assert (emitted.datagrams_out, emitted.gaps, emitted.duplicates) == (300, 0, 0)
                served = middle.downstream.stats
                relayed = served.groups[_label(source)]  # the ingress's group, not the middle's --map
                assert relayed.datagrams_in == 300
                await until(lambda: served.queued == 0, "the middle's queues on the sockets")
                dropped = sum(served.drops[reason] for reason in QUEUE_DROPS)
                assert relayed.datagrams_due == relayed.datagrams_out + dropped == 600  # two egresses below
                text = render(middle.stats).decode()
                assert (
                    f'mcastkit_relay_downstream_datagrams_out_total{{group="{_label(source)}"}} 600.0' in text
                )
                assert "mcastkit_relay_downstream_peers 2.0" in text
                writer.close()
        for receiver in receivers.values():
            receiver.close()
            assert receiver.received == messages

    _run(scenario)


def test_runs_gaps_and_repeats_from_upstream_are_relayed_once_with_their_numbers() -> None:
    """What the middle takes is relayed frame for frame: a RUN stays a RUN, a gap stays a gap for
    the leaf to count, a repeat is relayed once; and a group the middle does not emit itself
    (not --allow'ed there) still goes down to a leaf that emits it."""

    async def scenario() -> None:
        source, tokyo = _groups()
        group = group_to_int(source[0])

        def run(first: int, count: int) -> bytes:
            payload = b"".join(_message(first + i) for i in range(count))
            return encode(FrameType.RUN, payload, group=group, port=source[1], segment=64, sequence=first)

        def data(sequence: int) -> bytes:
            return encode(FrameType.DATA, _message(sequence), group=group, port=source[1], sequence=sequence)

        receiver = Receiver(tokyo)
        middle = _middle({}, allow=[_random_group()])  # emits none of it itself
        async with (
            running(middle, listen=True),
            running(_egress({source: tokyo}), connect=[_served(middle)]) as leaf,
        ):
            reader, writer = await _raw_peer(_served(middle), role=Role.EGRESS)
            raw = Frames(reader, writer)
            await until(lambda: _live(middle) == 2, "both egresses below")
            _up_reader, upstream = await _raw_peer(_endpoint(middle), role=Role.INGRESS)
            upstream.write(run(1000, 3) + data(1003) + run(1002, 4) + data(1010) + data(1010))
            await raw.read(7)
            await until(lambda: len(receiver.received) == 7, "the leaf's datagrams")
            assert [(kind, first, count) for kind, first, count, _p in raw.seen] == [
                (FrameType.RUN, 1000, 3),
                (FrameType.DATA, 1003, 1),
                (FrameType.RUN, 1004, 2),  # 1002-1005 less what was relayed already
                (FrameType.DATA, 1010, 1),
            ]
            assert raw.seen[2][3] == _message(1004) + _message(1005)
            emitted = leaf.stats.groups[_label(tokyo)]
            assert (emitted.gaps, emitted.duplicates, emitted.datagrams_in_runs) == (4, 0, 5)
            assert middle.stats.drops["not_allowed"] == 10  # not emitted at the middle...
            assert middle.downstream is not None
            relayed = middle.downstream.stats.groups[_label(source)]
            assert (relayed.datagrams_in, relayed.duplicates) == (7, 3)  # ...but relayed, once
            writer.close()
            upstream.close()
        receiver.close()
        assert receiver.indexes() == [1000, 1001, 1002, 1003, 1004, 1005, 1010]

    _run(scenario)


def test_a_cut_between_the_middle_and_the_leaf_loses_nothing() -> None:
    """The leaf resumes from the middle's window as an egress resumes from an ingress's."""

    async def scenario() -> None:
        source, tokyo = _groups()
        receiver = Receiver(tokyo)
        sender = _sender()
        async with (
            running(_ingress([source]), listen=True) as ingress,
            running(_middle({}, allow=[_random_group()]), connect=[_endpoint(ingress)]) as middle,
        ):
            assert middle.downstream is not None
            proxy = Proxy(_served(middle))
            async with running(_egress({source: tokyo}), connect=[await proxy.start()]) as leaf:
                await until(lambda: ingress.stats.peers == 1 and _live(middle) == 1, "the tree")
                await send(sender, source, [_message(i) for i in range(50)])
                await until(lambda: len(receiver.received) == 50, "the first messages")
                await proxy.cut()
                await until(lambda: middle.downstream.stats.peers == 0 and leaf.stats.peers == 0, "the cut")
                await send(sender, source, [_message(i) for i in range(50, 110)])
                await until(
                    lambda: middle.downstream.stats.drops["no_peer"] == 60, "the middle to take them alone"
                )
                await proxy.restore()
                await until(lambda: leaf.stats.resumes == 1 and _live(middle) == 1, "the resume")
                await send(sender, source, [_message(i) for i in range(110, 140)])
                await until(lambda: len(receiver.received) >= 140, "every datagram")
                await asyncio.sleep(0.1)  # a repeat would arrive now
                assert middle.downstream.stats.groups[_label(source)].replayed == 60
                assert middle.downstream.stats.resumes == 1
                emitted = leaf.stats.groups[_label(tokyo)]
                assert (emitted.gaps, emitted.duplicates) == (0, 0)
        receiver.close()
        assert receiver.indexes() == list(range(140))

    _run(scenario)


def test_a_stream_the_middle_first_relays_while_the_leaf_is_cut_off_reaches_it_from_its_start() -> None:
    """The leaf names only the streams it has seen; one the middle began relaying during the cut
    is replayed from its first datagram, not taken up at the live stream."""

    async def scenario() -> None:
        (busy, busy_target), (quiet, quiet_target) = _groups(), _groups()
        receivers = {busy: Receiver(busy_target), quiet: Receiver(quiet_target)}
        sender = _sender()
        async with (
            running(_ingress([busy, quiet]), listen=True) as ingress,
            running(_middle({}, allow=[_random_group()]), connect=[_endpoint(ingress)]) as middle,
        ):
            assert middle.downstream is not None
            proxy = Proxy(_served(middle))
            leaf = _egress({busy: busy_target, quiet: quiet_target})
            async with running(leaf, connect=[await proxy.start()]):
                await until(lambda: ingress.stats.peers == 1 and _live(middle) == 1, "the tree")
                await send(sender, busy, [_message(i) for i in range(20)])
                await until(lambda: len(receivers[busy].received) == 20, "the busy stream")
                await proxy.cut()
                await until(lambda: middle.downstream.stats.peers == 0 and leaf.stats.peers == 0, "the cut")
                await send(sender, quiet, [_message(i) for i in range(30)])  # its first datagrams
                await until(lambda: middle.downstream.stats.drops["no_peer"] == 30, "the middle to take them")
                await proxy.restore()
                await until(lambda: leaf.stats.resumes == 1 and _live(middle) == 1, "the resume")
                await send(sender, quiet, [_message(i) for i in range(30, 40)])
                await until(lambda: len(receivers[quiet].received) >= 40, "the quiet stream, whole")
                assert middle.downstream.stats.groups[_label(quiet)].replayed == 30
        for receiver in receivers.values():
            receiver.close()
        assert receivers[quiet].indexes() == list(range(40))

    _run(scenario)


def test_an_outage_above_the_middle_reaches_the_leaf_whole_without_touching_its_link() -> None:
    """The ingress replays to the middle what the outage held back; the middle relays it in order
    as new, and the leaf, whose link stayed up on heartbeats, sees no gap and no resume."""

    async def scenario() -> None:
        source, tokyo = _groups()
        receiver = Receiver(tokyo)
        sender = _sender()
        async with running(_ingress([source]), listen=True) as ingress:
            proxy = Proxy(_endpoint(ingress))
            async with (
                running(_middle({}, allow=[_random_group()]), connect=[await proxy.start()]) as middle,
                running(_egress({source: tokyo}), connect=[_served(middle)]) as leaf,
            ):
                assert middle.downstream is not None
                await until(lambda: ingress.stats.peers == 1 and _live(middle) == 1, "the tree")
                await send(sender, source, [_message(i) for i in range(50)])
                await until(lambda: len(receiver.received) == 50, "the first messages")
                await proxy.cut()
                await until(lambda: ingress.stats.peers == 0 and middle.stats.peers == 0, "the cut")
                await send(sender, source, [_message(i) for i in range(50, 110)])
                await proxy.restore()
                await until(lambda: middle.stats.resumes == 1 and ingress.stats.peers == 1, "the resume")
                await send(sender, source, [_message(i) for i in range(110, 140)])
                await until(lambda: len(receiver.received) >= 140, "every datagram")
                await asyncio.sleep(0.1)  # a repeat would arrive now
                assert ingress.stats.groups[_label(source)].replayed == 60
                assert (leaf.stats.resumes, leaf.stats.reconnects, sum(leaf.stats.disconnects.values())) == (
                    0,
                    0,
                    0,
                )
                assert leaf.stats.groups[_label(tokyo)].gaps == 0
        receiver.close()
        assert receiver.indexes() == list(range(140))

    _run(scenario)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
def test_the_tree_runs_in_tls_when_the_relays_are_given_it(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "relay-ca")
    made = {name: issue(tmp_path, name, ca) for name in ("ingress", "middle", "leaf")}
    tls = {name: load_tls(c.cert, c.key, c.ca) for name, c in made.items()}

    async def scenario() -> None:
        source, tokyo = _groups()
        receiver = Receiver(tokyo)
        async with (
            running(_ingress([source], tls=tls["ingress"]), listen=True) as ingress,
            running(
                _middle({}, allow=[_random_group()], tls=tls["middle"]), connect=[_endpoint(ingress)]
            ) as middle,
            running(_egress({source: tokyo}, tls=tls["leaf"]), connect=[_served(middle)]) as leaf,
        ):
            await until(lambda: ingress.stats.peers == 1 and _live(middle) == 1, "the tree")
            assert middle.downstream is not None
            (below,) = middle.downstream.links
            assert below.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
            await send(_sender(), source, [_message(i) for i in range(100)])
            await until(lambda: len(receiver.received) == 100, "the stream")
            assert leaf.stats.groups[_label(tokyo)].gaps == 0
        receiver.close()
        assert receiver.indexes() == list(range(100))

    _run(scenario)


def test_a_leaf_with_another_secret_is_refused_and_gets_nothing() -> None:
    async def scenario() -> None:
        source, tokyo = _groups()
        _, osaka = _groups()
        receivers = {tokyo: Receiver(tokyo), osaka: Receiver(osaka)}
        async with (
            running(_ingress([source]), listen=True) as ingress,
            running(_middle({}, allow=[_random_group()]), connect=[_endpoint(ingress)]) as middle,
            running(_egress({source: tokyo}), connect=[_served(middle)]),
            running(
                _egress({source: osaka}, secret=b"another secret, not the relay's"), connect=[_served(middle)]
            ) as impostor,
        ):
            assert middle.downstream is not None
            await until(lambda: middle.downstream.stats.auth_failures >= 1, "the impostor refused")
            await until(lambda: _live(middle) == 1, "the real leaf")
            await send(_sender(), source, [_message(i) for i in range(50)])
            await until(lambda: len(receivers[tokyo].received) == 50, "the real leaf's stream")
            await asyncio.sleep(0.1)  # what leaked to the impostor would arrive now
            assert impostor.stats.peers == 0 and impostor.stats.auth_failures >= 1
            assert middle.downstream.stats.peers == 1
        for receiver in receivers.values():
            receiver.close()
        assert receivers[osaka].received == []

    _run(scenario)


async def _start(
    node: Any, *, listen: tuple[str, int] | None = None, connect: tuple[tuple[str, int], ...] = ()
) -> asyncio.Task[None]:
    """Run a node that must outlive the ``running`` blocks around it; :func:`_stop` ends it."""
    task = asyncio.create_task(node.run(listen=listen, connect=list(connect)))
    await asyncio.wait_for(node.ready.wait(), 5)
    return task


async def _stop(node: Any, task: asyncio.Task[None]) -> None:
    node.stop()
    await asyncio.wait_for(task, 10)


def test_a_restarted_middle_is_a_new_session_and_the_leaf_starts_fresh_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        source, tokyo = _groups()
        receiver = Receiver(tokyo)
        sender = _sender()
        async with running(_ingress([source]), listen=True) as ingress:
            first = _middle({}, allow=[_random_group()])
            first_task = await _start(first, connect=[_endpoint(ingress)])
            assert first.downstream is not None
            address, old_session = _served(first), first.downstream.session
            leaf = _egress({source: tokyo})
            leaf_task = await _start(leaf, connect=[address])
            await until(lambda: _live(first) == 1, "the tree")
            await send(sender, source, [_message(i) for i in range(30)])
            await until(lambda: len(receiver.received) == 30, "the first messages")
            await _stop(first, first_task)
            await send(sender, source, [_message(i) for i in range(30, 40)])  # lost with the middle
            async with running(
                _middle({}, port=address[1], allow=[_random_group()]), connect=[_endpoint(ingress)]
            ) as second:
                assert second.downstream is not None and second.downstream.session != old_session
                await until(lambda: _live(second) == 1 and ingress.stats.peers == 1, "the leaf back")
                await send(sender, source, [_message(i) for i in range(40, 70)])
                await until(lambda: len(receiver.received) == 60, "the live stream")
                await asyncio.sleep(0.1)  # a repeat would arrive now
                assert leaf.stats.resumes == 0  # nothing to resume in a session it never saw
                emitted = leaf.stats.groups[_label(tokyo)]
                assert (emitted.gaps, emitted.duplicates) == (0, 0)  # a fresh start: nothing to compare with
            await _stop(leaf, leaf_task)
        receiver.close()
        assert receiver.indexes() == [*range(30), *range(40, 70)]

    with caplog.at_level(logging.INFO, logger="mcastkit.relay"):
        _run(scenario)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("serving downstream egresses as session" in line for line in lines) == 2
    assert (
        sum(
            "is new (the ingress, or the egress relaying it to this one, restarted)" in line for line in lines
        )
        == 1
    )


def test_an_ingress_restart_gives_the_tree_a_new_session_and_its_numbers_are_not_taken_for_repeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A restarted ingress numbers from 1 again. The middle follows it as a new session of its own
    and closes the links below; the leaf comes back to a session it does not know and starts
    fresh, so the new numbers are emitted, not dropped as old."""

    async def scenario() -> None:
        source, tokyo = _groups()
        receiver = Receiver(tokyo)
        sender = _sender()
        ingress = _ingress([source])
        ingress_task = await _start(ingress, listen=(LOOPBACK, 0))
        address = _endpoint(ingress)
        async with (
            running(_middle({}, allow=[_random_group()]), connect=[address]) as middle,
            running(_egress({source: tokyo}), connect=[_served(middle)]) as leaf,
        ):
            assert middle.downstream is not None
            session = middle.downstream.session
            await until(lambda: ingress.stats.peers == 1 and _live(middle) == 1, "the tree")
            await send(sender, source, [_message(i) for i in range(50)])
            await until(lambda: len(receiver.received) == 50, "the first ingress's stream")
            await _stop(ingress, ingress_task)
            restarted = _ingress([source])
            restarted_task = await _start(restarted, listen=address)
            # Wait for the middle to take the new session (the old leaf link may still count as
            # live for a moment): a middle that never changes its session fails here.
            await until(
                lambda: (
                    middle.downstream is not None
                    and middle.downstream.session != session
                    and restarted.stats.peers == 1
                    and _live(middle) == 1
                    # counted once the old link's close is handled, a loop turn or more later
                    and middle.downstream.stats.disconnects["upstream_session"] >= 1
                ),
                "the tree again, under a new session",
            )
            assert middle.downstream.stats.disconnects["upstream_session"] == 1
            await send(sender, source, [_message(i) for i in range(50, 80)])
            await until(lambda: len(receiver.received) == 80, "the restarted ingress's stream")
            assert leaf.stats.groups[_label(tokyo)].duplicates == 0
            await _stop(restarted, restarted_task)
        receiver.close()
        assert receiver.indexes() == list(range(80))

    with caplog.at_level(logging.INFO, logger="mcastkit.relay"):
        _run(scenario)
    assert any("replaces" in r.getMessage() and "start fresh" in r.getMessage() for r in caplog.records)


def test_a_slow_leaf_is_dropped_and_never_stalls_the_middle_or_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        source, london = _groups()
        _, tokyo = _groups()
        receivers = {london: Receiver(london), tokyo: Receiver(tokyo)}
        messages = [_message(i, 1000) for i in range(8000)]  # more than the kernel's buffers hold
        async with (
            running(_ingress([source]), listen=True) as ingress,
            running(_middle({source: london}, queue_bytes=64 * 1024), connect=[_endpoint(ingress)]) as middle,
            running(_egress({source: tokyo}), connect=[_served(middle)]),
        ):
            assert middle.downstream is not None
            _reader, stalled = await _raw_peer(_served(middle), role=Role.EGRESS, rcvbuf=4096)  # never reads
            await until(lambda: ingress.stats.peers == 1 and _live(middle) == 2, "the tree")
            await send(_sender(), source, messages, burst=20)
            await until(lambda: all(len(r.received) == 8000 for r in receivers.values()), "the others", 20)
            assert middle.downstream.stats.disconnects["slow_peer"] == 1
            assert middle.stats.groups[_label(london)].gaps == 0
            assert ingress.stats.disconnects["slow_peer"] == 0  # the middle kept up with its ingress
            stalled.close()
        for receiver in receivers.values():
            receiver.close()
            assert receiver.received == messages

    with caplog.at_level(logging.WARNING, logger="mcastkit.relay"):
        _run(scenario)
    assert any("bytes behind (--queue-bytes 65536): dropped" in r.getMessage() for r in caplog.records)
