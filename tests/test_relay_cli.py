"""``mcastkit relay`` as an operator runs it: a separate process, bad input, /healthz, SIGTERM."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mcastkit.net.sockets import open_receiver

pytestmark = pytest.mark.timeout(60)

SECRET = "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f"  # 256 bits of hex


def _relay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcastkit", "relay", *args], capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def secret_file(tmp_path: Path) -> str:
    path = tmp_path / "relay.secret"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return str(path)


def _assert_clean_error(result: subprocess.CompletedProcess[str], status: int, *needles: str) -> None:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr


def test_missing_secret_file_fails_at_start_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "absent.secret"
    result = _relay(
        "ingress", "--group", "239.1.1.1:5000", "--interface", "127.0.0.1",
        "--listen", "127.0.0.1:0", "--secret-file", str(missing),
    )  # fmt: skip
    _assert_clean_error(result, 2, f"--secret-file {missing}: no such file")


def test_empty_secret_file_fails_at_start_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.secret"
    empty.write_text("\n")
    result = _relay(
        "egress",
        "--listen",
        "127.0.0.1:0",
        "--interface",
        "127.0.0.1",
        "--ttl",
        "1",
        "--secret-file",
        str(empty),
        "--allow",
        "239.1.1.1:5000",
    )
    _assert_clean_error(result, 2, f"--secret-file {empty} is empty")


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--group", "239.1.1.1"], 2, "--group '239.1.1.1': expected GROUP:PORT"),
        (["--group", "10.0.0.1:5000"], 2, "10.0.0.1 is not a multicast group"),
        (["--group", "239.1.1.1:70000"], 2, "port '70000' is not a number from 1 to 65535"),
        (["--group", "239.1.1.1:5000", "--interface", "nosuch9"], 2, "--interface 'nosuch9': no interface"),
        (
            ["--group", "239.1.1.1:5000", "--interface", "192.0.2.254"],
            2,
            "--interface 192.0.2.254: no interface on this host has that address",
        ),
    ],
)
def test_bad_ingress_input_names_the_value(
    secret_file: str, args: list[str], status: int, message: str
) -> None:
    base = {"--interface": "127.0.0.1", "--listen": "127.0.0.1:0", "--secret-file": secret_file}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    result = _relay("ingress", *[item for pair in base.items() for item in pair])
    _assert_clean_error(result, status, message)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--ttl", "0"], 2, "argument --ttl: '0': must be from 1 to 255"),
        (["--heartbeat", "0"], 2, "argument --heartbeat: '0': must be more than 0.0"),
        (["--heartbeat", "inf"], 2, "argument --heartbeat: 'inf': must be more than 0.0"),
        (["--map", "239.1.1.1:5000"], 2, "--map '239.1.1.1:5000': expected G:P=G2:P2"),
        (["--interface", "192.0.2.254"], 2, "--interface 192.0.2.254: no interface on this host"),
        (["--connect", "127.0.0.1"], 2, "--connect '127.0.0.1': expected HOST:PORT"),
    ],
)
def test_bad_egress_input_names_the_value(
    secret_file: str, args: list[str], status: int, message: str
) -> None:
    base = {
        "--interface": "127.0.0.1",
        "--ttl": "1",
        "--secret-file": secret_file,
        "--allow": "239.1.1.1:5000",
    }
    extra = dict(zip(args[::2], args[1::2], strict=True))
    base.update(extra)
    if "--connect" not in base:
        base["--listen"] = "127.0.0.1:0"
    result = _relay("egress", *[item for pair in base.items() for item in pair])
    _assert_clean_error(result, status, message)


def test_a_refused_listen_or_metrics_address_exits_3_naming_it(secret_file: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        common = [
            "--interface",
            "127.0.0.1",
            "--ttl",
            "1",
            "--secret-file",
            secret_file,
            "--allow",
            "239.1.1.1:5000",
        ]
        listen = _relay("egress", *common, "--listen", f"127.0.0.1:{port}")
        metrics = _relay("egress", *common, "--listen", "127.0.0.1:0", "--metrics", f"127.0.0.1:{port}")
    _assert_clean_error(listen, 3)
    assert listen.stderr.splitlines()[-1].startswith(f"mcastkit: error: --listen 127.0.0.1:{port}: ")
    assert "address already in use" in listen.stderr.lower()
    _assert_clean_error(metrics, 3)
    assert (
        metrics.stderr.splitlines()[-1]
        == f"mcastkit: error: --metrics 127.0.0.1:{port}: Address already in use"
    )


def test_help_documents_the_flags() -> None:
    ingress = _relay("ingress", "--help").stdout
    egress = _relay("egress", "--help").stdout
    for flag in [
        "--group",
        "--interface",
        "--listen",
        "--connect",
        "--secret-file",
        "--secret-env",
        "--metrics",
    ]:
        assert flag in ingress
    for flag in ["--connect", "--listen", "--interface", "--ttl", "--secret-file", "--map", "--metrics"]:
        assert flag in egress


@contextmanager
def _running(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mcastkit", "relay", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for_log(process: subprocess.Popen[str], pattern: str, seen: list[str]) -> re.Match[str]:
    assert process.stderr is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no log line matching {pattern!r}; got:\n{''.join(seen)}")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_two_processes_relay_serve_metrics_and_stop_cleanly_on_sigterm(secret_file: str) -> None:
    """The path the lab drives: egress listens, ingress dials, both export metrics, SIGTERM exits 0."""
    source = (f"239.{random.randint(200, 254)}.{random.randint(0, 255)}.7", random.randint(20000, 60000))
    target = (f"239.{random.randint(200, 254)}.{random.randint(0, 255)}.8", random.randint(20000, 60000))
    receiver = open_receiver(*target, "127.0.0.1", buffer_bytes=1 << 20)
    receiver.setblocking(True)
    receiver.settimeout(5)
    egress_log: list[str] = []
    ingress_log: list[str] = []
    with _running(
        "egress", "--listen", "127.0.0.1:0", "--interface", "lo", "--ttl", "1",
        "--secret-env", "RELAY_TEST_SECRET", "--metrics", "127.0.0.1:0",
        "--map", f"{source[0]}:{source[1]}={target[0]}:{target[1]}",
        "--allow", f"{target[0]}:{target[1]}", "--emf", "test-relay",
        env={"RELAY_TEST_SECRET": SECRET},
    ) as egress:  # fmt: skip
        metrics_port = int(_wait_for_log(egress, r"metrics on http://[\d.]+:(\d+)/", egress_log)[1])
        relay_port = int(_wait_for_log(egress, r"listening on [\d.]+:(\d+)", egress_log)[1])
        with _running(
            "ingress", "--group", f"{source[0]}:{source[1]}", "--interface", "127.0.0.1",
            "--connect", f"127.0.0.1:{relay_port}", "--secret-file", secret_file, "--heartbeat", "0.5",
        ) as ingress:  # fmt: skip
            _wait_for_log(ingress, r"peer .* authenticated \(egress", ingress_log)
            # Live once its RESUME is in: a datagram read before that has no peer to go to.
            _wait_for_log(ingress, r"peer .* starts fresh", ingress_log)
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
            for index in range(20):
                sender.sendto(struct.pack("!I", index), source)
            received = [struct.unpack("!I", receiver.recv(100))[0] for _ in range(20)]
            assert received == list(range(20))

            status, body = _get(f"http://127.0.0.1:{metrics_port}/healthz")
            assert status == 200
            health = json.loads(body)
            assert health["status"] == "ok" and health["role"] == "egress" and health["peers"] == 1
            status, text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert status == 200
            # Counted under the group emitted here (the --map target), not the ingress's.
            label = f'group="{target[0]}:{target[1]}"'
            assert f"mcastkit_relay_datagrams_out_total{{{label}}} 20.0" in text
            assert f'group="{source[0]}:{source[1]}"' not in text
            assert "mcastkit_relay_peers 1.0" in text
            assert re.search(r"^mcastkit_relay_transit_seconds \d", text, re.MULTILINE)
            assert _get(f"http://127.0.0.1:{metrics_port}/nope")[0] == 404

            ingress.send_signal(signal.SIGTERM)
            assert ingress.wait(10) == 0
        egress.send_signal(signal.SIGTERM)
        assert egress.wait(10) == 0
        # --emf: CloudWatch metric lines on stdout, the last one written on the way out.
        assert egress.stdout is not None
        lines = [json.loads(line) for line in egress.stdout.read().splitlines()]
        assert lines and all(line["Service"] == "test-relay" for line in lines)
        assert sum(line["DatagramsOut"] for line in lines) == 20
        assert sum(line["Gaps"] for line in lines) == 0
        assert egress.stderr is not None
        rest = egress.stderr.read()
    receiver.close()
    assert "Traceback" not in rest
    assert "SIGTERM: draining and stopping" in rest and "stopped" in rest
