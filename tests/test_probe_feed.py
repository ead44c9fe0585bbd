"""`probe recv` on a group that carries a feed: the plain mode says so, `--passive` watches it."""

from __future__ import annotations

import json
import threading
import time
from io import StringIO

from probe_support import LOOPBACK, loopback_sender, needs_loopback_multicast, random_group

from mcastkit.cli import Console, main
from mcastkit.exit import ExitStatus
from mcastkit.net.addresses import GroupPort


def _feed(group: GroupPort, bursts: list[tuple[int, int]], pause: float) -> threading.Thread:
    """A sender of non-probe datagrams: ``(count, size)`` bursts, ``pause`` s apart, after 0.3 s
    (the receiver joins first)."""

    def send() -> None:
        time.sleep(0.3)
        with loopback_sender(group, ttl=1) as sock:
            for index, (count, size) in enumerate(bursts):
                if index:
                    time.sleep(pause)
                for _ in range(count):
                    sock.send(b"F" * size)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def _recv(*argv: str) -> tuple[int, str, str]:
    console = Console(out=StringIO(), err=StringIO())
    status = main(["probe", "recv", "--interface", LOOPBACK, *argv], console)
    return status, console.out.getvalue(), console.err.getvalue()


@needs_loopback_multicast
def test_a_probe_receiver_on_a_feed_says_what_it_heard() -> None:
    group = random_group()
    sender = _feed(group, [(50, 120)], pause=0)
    status, out, err = _recv("--group", str(group), "--count", "100", "--timeout", "1.5")
    sender.join(10)
    assert status == ExitStatus.FAILURE
    assert "received 0/100" in out
    assert "50 datagrams from another sender: this group carries a feed, not a probe stream; " in err
    assert "use --passive to watch it" in err


@needs_loopback_multicast
def test_an_open_ended_probe_receiver_on_a_feed_says_so_once() -> None:
    group = random_group()
    sender = _feed(group, [(10, 64), (10, 64)], pause=0.4)
    status, _, err = _recv(
        "--group", str(group), "--count", "0", "--report-every", "0.3", "--timeout", "1.2"
    )  # fmt: skip
    sender.join(10)
    assert status == ExitStatus.FAILURE
    assert err.count("datagrams from another sender: this group carries a feed") == 1


@needs_loopback_multicast
def test_passive_reports_rate_sizes_and_silences() -> None:
    group = random_group()
    sender = _feed(group, [(20, 100), (20, 200)], pause=0.6)
    status, out, err = _recv("--group", str(group), "--passive", "--timeout", "1.6", "--gap", "0.3", "--json")
    sender.join(10)
    assert status == ExitStatus.OK, err
    report = json.loads(out)
    assert report["datagrams"] == 40 and report["bytes"] == 20 * 100 + 20 * 200
    assert (report["size_min"], report["size_max"], report["size_mean"]) == (100, 200, 150)
    assert report["probe_datagrams"] == 0
    # The 0.6 s pause between the bursts, and the quiet after the second until the end.
    assert report["silences"] == 2
    assert report["longest_silence"] >= 0.5
    assert report["rate"] == round(40 / report["seconds"], 1)


@needs_loopback_multicast
def test_passive_with_nothing_arriving_fails_in_one_line() -> None:
    group = random_group()
    status, out, err = _recv("--group", str(group), "--passive", "--timeout", "0.4")
    assert status == ExitStatus.FAILURE
    assert "0 datagrams in" in out
    assert err == f"mcastkit: error: nothing arrived on {group} in 0.4 s\n"
