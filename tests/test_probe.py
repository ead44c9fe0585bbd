"""Probe: stream statistics, address checks, and real send -> recv / rtt -> echo runs on loopback."""

from __future__ import annotations

import json
import socket
import threading
from io import StringIO

import pytest
from probe_support import LOOPBACK, loopback_receiver, loopback_sender, needs_loopback_multicast, random_group

from mcastkit.cli import Console, main
from mcastkit.exit import ExitStatus
from mcastkit.net.addresses import AddressError, GroupPort, parse_group, resolve_interface
from mcastkit.net.mmsg import BatchSender, DatagramSlots
from mcastkit.net.sockets import open_sender, set_receive_timeout
from mcastkit.probe.receiver import parse_batch, receive_stream
from mcastkit.probe.roundtrip import echo, measure_rtt
from mcastkit.probe.sender import TICK_NS, send_stream
from mcastkit.probe.stats import StreamStats, latency_summary, percentile
from mcastkit.probe.wire import HEADER, MAGIC, SizeRange

# -- statistics ----------------------------------------------------------------------------------


def test_stats_count_loss_duplicates_and_reordering() -> None:
    stats = StreamStats(expected=10)
    for sequence in (0, 1, 3, 2, 2, 5, 4, 9, 12):
        stats.record(sequence, sent_ns=1_000, received_ns=1_000 + 1_000 * (sequence + 1))
    assert stats.unique == 7  # 0 1 2 3 4 5 9
    assert stats.lost == 3  # 6 7 8
    assert stats.duplicates == 1  # the second 2
    assert stats.reordered == 2  # 2 after 3, 4 after 5
    assert stats.unexpected == 1  # 12 is beyond the stream
    assert stats.received == 9
    assert stats.loss == pytest.approx(0.3)
    assert not stats.complete


def test_stats_complete_stream() -> None:
    stats = StreamStats(expected=3)
    for sequence in range(3):
        stats.record(sequence, 0, 10)
    assert stats.complete and stats.lost == 0 and stats.loss == 0.0


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7], 0.99) == 7
    assert percentile([], 0.5) is None


def test_latency_summary_in_microseconds() -> None:
    summary = latency_summary([3_000, 1_000, 2_000, 100_000])
    assert summary == {"p50": 2.0, "p99": 100.0, "max": 100.0}
    assert latency_summary([]) == {"p50": None, "p99": None, "max": None}


# -- addresses -----------------------------------------------------------------------------------


def test_parse_group_port() -> None:
    assert parse_group("239.1.1.1:5001", flag="") == GroupPort("239.1.1.1", 5001)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("239.1.1.1", "'239.1.1.1': expected GROUP:PORT"),
        ("10.1.1.1:5000", "10.1.1.1 is not a multicast group"),
        ("224.0.0.5:5000", "224.0.0.5 is in 224.0.0.0/24"),
        ("239.1.1.1:70000", "port '70000'"),
        ("239.1.1.x:5000", "'239.1.1.x' is not an IPv4 address"),
    ],
)
def test_bad_group_is_named(text: str, named: str) -> None:
    with pytest.raises(AddressError, match=named):
        parse_group(text, flag="")


def test_interface_must_be_on_this_host() -> None:
    assert resolve_interface(LOOPBACK) == LOOPBACK
    assert resolve_interface("lo") == LOOPBACK
    with pytest.raises(AddressError, match=r"203\.0\.113\.9"):
        resolve_interface("203.0.113.9")
    with pytest.raises(AddressError, match="nosuchif0"):
        resolve_interface("nosuchif0")


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (
            ["probe", "send", "--group", "10.0.0.1:5000", "--interface", LOOPBACK],
            "10.0.0.1 is not a multicast",
        ),
        (
            ["probe", "recv", "--group", "239.1.1.1", "--interface", LOOPBACK],
            "'239.1.1.1': expected GROUP:PORT",
        ),
        (["probe", "send", "--group", "239.1.1.1:5000", "--interface", LOOPBACK, "--size", "9000"], "9000"),
        (["probe", "send", "--group", "239.1.1.1:5000", "--interface", LOOPBACK, "--size", "8473"], "8472"),
        (
            ["probe", "send", "--group", "239.1.1.1:5000", "--interface", LOOPBACK, "--size", "64-9000"],
            "9000",
        ),
        (
            ["probe", "send", "--group", "239.1.1.1:5000", "--interface", LOOPBACK, "--size", "512-64"],
            "'512-64': write the smaller size first",
        ),
        (["lab", "run", "--size", "64-x"], "'x': not a whole number"),
        (["lab", "run", "--size", "64-"], "'64-': expected BYTES or MIN-MAX"),
        (["probe", "recv", "--group", "239.1.1.1:5000", "--interface", LOOPBACK, "--max-loss", "2"], "2"),
    ],
)
def test_cli_bad_arguments_exit_2_naming_the_value(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == ExitStatus.BAD_INPUT
    err = capsys.readouterr().err
    assert named in err
    assert "Traceback" not in err


def test_cli_interface_not_on_host_exits_2() -> None:
    console = Console(out=StringIO(), err=StringIO())
    status = main(["probe", "recv", "--group", "239.1.1.1:5000", "--interface", "203.0.113.9"], console)
    assert status == ExitStatus.BAD_INPUT
    assert "--interface 203.0.113.9: no interface on this host" in console.err.getvalue()


# -- real runs on loopback -----------------------------------------------------------------------


@needs_loopback_multicast
def test_send_then_receive_counts_every_datagram() -> None:
    group = random_group()
    with loopback_receiver(group) as listen:
        received: list[object] = []
        thread = threading.Thread(
            target=lambda: received.append(receive_stream(listen, count=2000, timeout=20, idle=2)),
            daemon=True,
        )
        thread.start()
        with loopback_sender(group, ttl=1) as send:
            report = send_stream(send, group, rate=20_000, count=2000, size=SizeRange(100, 100), stream_id=42)
        thread.join(30)
    assert report.sent == 2000
    (result,) = received
    stats = result.stats  # type: ignore[attr-defined]
    assert result.stream_id == 42  # type: ignore[attr-defined]
    assert stats.unique == 2000 and stats.lost == 0 and stats.duplicates == 0
    assert result.stopped_by == "count"  # type: ignore[attr-defined]
    latency = latency_summary(stats.latencies_ns)
    assert latency["p50"] is not None and latency["p50"] >= 0


@needs_loopback_multicast
def test_a_size_range_draws_each_datagrams_size_the_same_way_for_a_stream_id() -> None:
    group, sizes = random_group(), SizeRange(24, 300)
    with loopback_receiver(group, timeout=0.5) as listen, loopback_sender(group, ttl=1) as send:
        listen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        report = send_stream(send, group, rate=0, count=200, size=sizes, stream_id=11)
        lengths = [len(listen.recv(1000)) for _ in range(report.sent)]
    assert report.sent == 200
    assert all(24 <= n <= 300 for n in lengths)
    assert len(set(lengths)) > 50  # spread over the range, not one size
    again = random_group()
    with loopback_receiver(again, timeout=0.5) as listen, loopback_sender(again, ttl=1) as send:
        send_stream(send, again, rate=0, count=200, size=sizes, stream_id=11)
        assert [len(listen.recv(1000)) for _ in range(200)] == lengths


def test_a_paced_sender_sends_a_ticks_worth_per_system_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 50k msg/s a turn waits for 5 datagrams; a late turn sends more, never fewer."""
    flushes: list[int] = []
    flush = BatchSender.flush

    def counted(self: BatchSender) -> int:
        flushes.append(self.count)
        return flush(self)

    monkeypatch.setattr(BatchSender, "flush", counted)
    rate, count = 50_000, 3_000
    per_turn = 5  # 50k msg/s for a 100 µs tick
    with open_sender(LOOPBACK, ttl=1, loop=False) as send:
        report = send_stream(
            send, random_group(), rate=rate, count=count, size=SizeRange(64, 64), stream_id=3
        )
    assert TICK_NS == 100_000
    assert report.sent == count == sum(flushes)
    assert min(flushes[:-1]) >= per_turn
    assert len(flushes) <= count // per_turn


def test_parse_batch_reads_every_datagram_of_a_coalesced_run() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        slots = DatagramSlots(sock, capacity=1000, slots=2)
        for number in range(5):  # slot 0: a run of 5 x 40 bytes, the third not a probe datagram
            HEADER.pack_into(
                slots.buffer, number * 40, b"XXXX" if number == 2 else MAGIC, 9, number, 100 + number
            )
        HEADER.pack_into(slots.buffer, slots.stride, MAGIC, 9, 5, 105)  # slot 1: one datagram
        datagrams, foreign = parse_batch(slots, [(200, False, 40), (30, False, 0)])
    assert datagrams == [(9, 0, 100), (9, 1, 101), (9, 3, 103), (9, 4, 104), (9, 5, 105)]
    assert foreign == 1


def test_datagrams_the_kernel_refuses_are_reported_not_counted_as_sent() -> None:
    # Broadcast without SO_BROADCAST: the kernel refuses every datagram (EACCES).
    with open_sender(LOOPBACK, ttl=1, loop=False) as send:
        report = send_stream(
            send, ("255.255.255.255", 9), rate=0, count=40, size=SizeRange(64, 64), stream_id=7
        )
    assert report.sent == 0 and report.send_errors == 40


@needs_loopback_multicast
def test_receiver_stops_on_timeout_and_counts_foreign_datagrams() -> None:
    group = random_group()
    with (
        loopback_receiver(group) as listen,
        loopback_sender(group, ttl=1) as send,
    ):
        send.send(b"not a probe datagram at all")
        datagram = bytearray(64)
        HEADER.pack_into(datagram, 0, MAGIC, 7, 0, 0)
        send.send(datagram)
        HEADER.pack_into(datagram, 0, MAGIC, 8, 1, 0)  # another stream: foreign
        send.send(datagram)
        result = receive_stream(listen, count=5, timeout=0.5, idle=10)
    assert result.stopped_by == "timeout"
    assert result.stream_id == 7
    assert result.foreign == 2
    assert result.stats.unique == 1 and result.stats.lost == 4


@needs_loopback_multicast
def test_cli_send_and_recv_json() -> None:
    group = str(random_group())
    common = ["--group", group, "--interface", LOOPBACK, "--count", "500", "--json"]
    console = Console(out=StringIO(), err=StringIO())
    outcome: list[int] = []
    receiver = threading.Thread(
        target=lambda: outcome.append(
            main(["probe", "recv", *common, "--timeout", "20", "--idle", "2"], console)
        )
    )
    receiver.start()
    # The receiver must have joined before the stream starts; a missed head would show as loss.
    threading.Event().wait(0.5)
    sender_console = Console(out=StringIO(), err=StringIO())
    assert main(["probe", "send", *common, "--rate", "5000"], sender_console) == ExitStatus.OK
    receiver.join(30)
    assert outcome == [ExitStatus.OK]
    report = json.loads(console.out.getvalue())
    assert report["unique"] == 500 and report["lost"] == 0 and report["ok"] is True
    sent = json.loads(sender_console.out.getvalue())
    assert sent["sent"] == 500 and sent["stream_id"] == report["stream_id"]


@needs_loopback_multicast
def test_cli_recv_fails_when_loss_exceeds_budget() -> None:
    console = Console(out=StringIO(), err=StringIO())
    argv = [
        "probe",
        "recv",
        "--group",
        str(random_group()),
        "--interface",
        LOOPBACK,
        "--count",
        "10",
        "--timeout",
        "0.3",
    ]
    assert main([*argv, "--json"], console) == ExitStatus.FAILURE
    report = json.loads(console.out.getvalue())
    assert report["lost"] == 10 and report["stopped_by"] == "timeout" and report["ok"] is False
    assert "exceeds --max-loss" in console.err.getvalue()


@needs_loopback_multicast
def test_rtt_through_echo() -> None:
    request, reply = random_group(), random_group()
    stop = threading.Event()
    with (
        loopback_receiver(request, timeout=0.1) as echo_in,
        loopback_sender(reply, ttl=1) as echo_out,
    ):
        echoer = threading.Thread(
            target=echo,
            args=(echo_in, echo_out),
            kwargs={"count": 0, "timeout": 20, "keep_running": lambda: not stop.is_set()},
        )
        echoer.start()
        with (
            loopback_sender(request, ttl=1) as send,
            loopback_receiver(reply) as listen,
        ):
            set_receive_timeout(listen, 0.05)
            result = measure_rtt(
                send, listen, count=20, size=64, interval=0.001, loss_timeout=1.0, stream_id=5
            )
        stop.set()
        echoer.join(5)
    assert result.sent == 20 and result.answered == 20 and result.lost == 0
    assert result.summary()["rtt_us"]["p50"] is not None


@needs_loopback_multicast
def test_rtt_without_echo_gives_up_per_datagram() -> None:
    request, reply = random_group(), random_group()
    with (
        loopback_sender(request, ttl=1) as send,
        loopback_receiver(reply) as listen,
    ):
        set_receive_timeout(listen, 0.02)
        result = measure_rtt(send, listen, count=3, size=64, interval=0, loss_timeout=0.1, stream_id=9)
    assert result.sent == 3 and result.answered == 0 and result.lost == 3


def test_sender_socket_is_connected_to_therandom_group() -> None:
    group = random_group()
    with loopback_sender(group, ttl=3) as send:
        assert send.getpeername() == (group.group, group.port)
        assert send.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == 3


@needs_loopback_multicast
def test_cli_rtt_through_cli_echo() -> None:
    request, reply = str(random_group()), str(random_group())
    echo_console = Console(out=StringIO(), err=StringIO())
    common = ["--group", request, "--reply", reply, "--interface", LOOPBACK, "--count", "10"]
    echoer = threading.Thread(target=main, args=(["probe", "echo", *common, "--timeout", "20"], echo_console))
    echoer.start()
    threading.Event().wait(0.5)
    console = Console(out=StringIO(), err=StringIO())
    status = main(["probe", "rtt", *common, "--interval", "0.001", "--json"], console)
    echoer.join(30)
    assert status == ExitStatus.OK, console.err.getvalue()
    report = json.loads(console.out.getvalue())
    assert report["answered"] == 10 and report["lost"] == 0 and report["rtt_us"]["p99"] is not None
    assert "echoed 10 datagrams" in echo_console.out.getvalue()
