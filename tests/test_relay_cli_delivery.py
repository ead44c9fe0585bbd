"""``relay egress --unicast`` and ``--serve`` as an operator runs them: bad input, and three processes."""

from __future__ import annotations

import json
import random
import signal
import socket
import struct
import time
from pathlib import Path

import pytest
from test_relay_cli import SECRET, _assert_clean_error, _get, _relay, _running, _wait_for_log

from mcastkit.net.sockets import open_receiver

pytestmark = pytest.mark.timeout(60)

ALLOWED = "239.1.1.1:5000"


@pytest.fixture
def secret_path(tmp_path: Path) -> str:
    path = tmp_path / "relay.secret"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--unicast", ALLOWED], f"--unicast '{ALLOWED}': expected G:P=HOST:PORT[,HOST:PORT...], e.g. "),
        (
            ["--unicast", f"{ALLOWED}=10.0.0.5:0"],
            f"--unicast '{ALLOWED}=10.0.0.5:0': target '10.0.0.5:0': port '0' is not a number from 1 to 655",
        ),
        (
            ["--unicast", f"{ALLOWED}=receiver.example:6000"],
            "'receiver.example' is not an IPv4 address; give the receiver's address",
        ),
        (
            ["--unicast", f"{ALLOWED}=239.2.2.2:6000"],
            "239.2.2.2 is not one receiver's address; give a unicast address",
        ),
        (
            ["--unicast", "239.1.1.2:5000=10.0.0.5:6000"],
            "--unicast '239.1.1.2:5000=10.0.0.5:6000': 239.1.1.2:5000 is not an --allow group; add --allow "
            "239.1.1.2:5000",
        ),
        (
            ["--unicast", f"{ALLOWED}=10.0.0.5:6000,10.0.0.6:6000,10.0.0.5:6000"],
            f"10.0.0.5:6000 is listed twice for {ALLOWED}; name each receiver once",
        ),
        (
            ["--unicast", f"{ALLOWED}=10.0.0.5:6000", "--unicast", f"{ALLOWED}=10.0.0.6:6000"],
            f"--unicast '{ALLOWED}=10.0.0.6:6000': {ALLOWED} is given twice; list all its receivers in one",
        ),
        (
            ["--unicast", "239.1.1:5000=10.0.0.5:6000"],
            "--unicast '239.1.1:5000=10.0.0.5:6000': group '239.1.1:5000': '239.1.1' is not an IPv4 address",
        ),
        (
            ["--serve", "127.0.0.1:0"],
            "--serve 127.0.0.1:0: relays one ingress, and --listen with --max-peers 8 lets in more: give "
            "--connect once, or --listen with --max-peers 1",
        ),
        (["--serve", "127.0.0.1"], "--serve '127.0.0.1': expected HOST:PORT"),
        (["--replay-bytes", "1000"], "--replay-bytes 1000: only with --serve"),
        (["--serve-max-peers", "3"], "--serve-max-peers 3: only with --serve"),
    ],
)
def test_bad_unicast_or_serve_input_is_one_line_naming_the_flag_and_value(
    secret_path: str, args: list[str], message: str
) -> None:
    result = _relay(
        "egress", "--listen", "127.0.0.1:0", "--interface", "127.0.0.1", "--ttl", "1",
        "--secret-file", secret_path, "--allow", ALLOWED, *args,
    )  # fmt: skip
    _assert_clean_error(result, 2, message)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_serve_address_in_use_exits_3_naming_it(secret_path: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _relay(
            "egress", "--connect", "127.0.0.1:9", "--interface", "127.0.0.1", "--ttl", "1",
            "--secret-file", secret_path, "--allow", ALLOWED, "--serve", f"127.0.0.1:{port}",
        )  # fmt: skip
    _assert_clean_error(result, 3)
    assert (
        result.stderr.splitlines()[-1] == f"mcastkit: error: --serve 127.0.0.1:{port}: Address already in use"
    )


def _group() -> tuple[str, int]:
    return (
        f"239.{random.randint(200, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}",
        random.randint(20000, 60000),
    )


def test_three_processes_deliver_as_unicast_and_down_the_tree(secret_path: str) -> None:
    """Ingress, a middle egress that sends its group as unicast and serves a leaf, the leaf: each
    datagram reaches the unicast receiver and the leaf's group, and the middle's metrics say so."""
    source, unicast_group, leaf_group = _group(), _group(), _group()
    unicast = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    unicast.bind(("127.0.0.1", 0))
    unicast.settimeout(5)
    leaf_receiver = open_receiver(*leaf_group, "127.0.0.1", buffer_bytes=1 << 20)
    leaf_receiver.setblocking(True)
    leaf_receiver.settimeout(5)
    target = f"127.0.0.1:{unicast.getsockname()[1]}"
    label, emitted = f"{source[0]}:{source[1]}", f"{unicast_group[0]}:{unicast_group[1]}"
    leaf_label = f"{leaf_group[0]}:{leaf_group[1]}"
    logs: dict[str, list[str]] = {"ingress": [], "middle": [], "leaf": []}
    common = ["--interface", "127.0.0.1", "--secret-file", secret_path, "--heartbeat", "0.5"]
    with _running("ingress", "--group", label, "--listen", "127.0.0.1:0", *common) as ingress:
        ingress_port = _wait_for_log(ingress, r"listening on [\d.]+:(\d+)", logs["ingress"])[1]
        with _running(
            "egress", "--connect", f"127.0.0.1:{ingress_port}", "--ttl", "1", *common,
            "--map", f"{label}={emitted}", "--allow", emitted, "--unicast", f"{emitted}={target}",
            "--serve", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
        ) as middle:  # fmt: skip
            metrics_port = _wait_for_log(middle, r"metrics on http://[\d.]+:(\d+)/", logs["middle"])[1]
            _wait_for_log(middle, f"{emitted} goes as unicast to {target}, not as multicast", logs["middle"])
            serve_port = _wait_for_log(
                middle, r"serving downstream egresses on [\d.]+:(\d+)", logs["middle"]
            )[1]
            _wait_for_log(ingress, r"peer .* starts fresh", logs["ingress"])
            with _running(
                "egress", "--connect", f"127.0.0.1:{serve_port}", "--ttl", "1", *common,
                "--map", f"{label}={leaf_label}", "--allow", leaf_label,
            ) as leaf:  # fmt: skip
                _wait_for_log(middle, r"peer .* starts fresh", logs["middle"])  # the leaf is live
                sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
                for index in range(20):
                    sender.sendto(struct.pack("!I", index), source)
                assert [struct.unpack("!I", unicast.recv(100))[0] for _ in range(20)] == list(range(20))
                assert [struct.unpack("!I", leaf_receiver.recv(100))[0] for _ in range(20)] == list(range(20))

                metrics = f"http://127.0.0.1:{metrics_port}"
                wanted = [
                    f'mcastkit_relay_unicast_datagrams_out_total{{group="{emitted}",target="{target}"}} 20.0',
                    f'mcastkit_relay_datagrams_out_total{{group="{emitted}"}} 20.0',
                    f'mcastkit_relay_downstream_datagrams_out_total{{group="{label}"}} 20.0',
                    "mcastkit_relay_downstream_peers 1.0",
                ]
                deadline = time.monotonic() + 5
                while not all(line in (text := _get(f"{metrics}/metrics")[1]) for line in wanted):
                    assert time.monotonic() < deadline, text
                    time.sleep(0.05)
                health = json.loads(_get(f"{metrics}/healthz")[1])
                assert (health["peers"], health["downstream_peers"]) == (1, 1)
                for process in (ingress, middle, leaf):
                    process.send_signal(signal.SIGTERM)
                    assert process.wait(10) == 0
    unicast.close()
    leaf_receiver.close()
