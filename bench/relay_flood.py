#!/usr/bin/env python3
"""Can a legitimate peer get in while strangers flood a listening relay? Prints JSON.

Starts ``mcastkit relay ingress|egress --listen`` on loopback as its own process, and a second
process that keeps ``--strangers`` unauthenticated connections going against it: each connects,
then at random closes at once, says nothing, sends a valid HELLO and stops, or sends garbage,
for up to ``--hold`` seconds (default 1; 0: at once), and connects again. Meanwhile this
process makes ``--attempts`` handshakes as a real peer, one after the other, each timed from
connect to both proofs checked.

Run:  python bench/relay_flood.py --role egress  (the relay's goal: at least 19 of 20 in 5 s)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from mcastkit.relay.auth import HELLO, Role, handshake
from mcastkit.relay.frame import FrameType, encode
from mcastkit.relay.seal import Sealer

WITHIN_SECONDS = 5.0
#: The relay's own deadline for a handshake; an attempt that gets no answer is given up after it.
ATTEMPT_TIMEOUT = 10.0


async def _stranger(port: int, stop: float, hold: float) -> int:
    """One stranger, reconnecting until ``stop``; returns how many connections it made."""
    made = 0
    hello = encode(FrameType.HELLO, HELLO.pack(Role.INGRESS, secrets.token_bytes(32), 1))
    while time.monotonic() < stop:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        made += 1
        behaviour = random.choice(("close", "silent", "hello", "garbage"))
        try:
            if behaviour == "hello":
                writer.write(hello)
            elif behaviour == "garbage":
                writer.write(secrets.token_bytes(random.randint(1, 300)))
            if behaviour != "close":
                await asyncio.sleep(random.uniform(0, hold))
            writer.close()
        except (OSError, RuntimeError):
            pass
    return made


async def _flood(port: int, strangers: int, seconds: float, hold: float) -> None:
    stop = time.monotonic() + seconds
    made = await asyncio.gather(*(_stranger(port, stop, hold) for _ in range(strangers)))
    print(json.dumps({"connections": sum(made)}), flush=True)


async def _attempt(port: int, secret: bytes, peer: Role) -> float | str:
    """Seconds from connect to a completed handshake, or why it failed."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), ATTEMPT_TIMEOUT)
        hello = await handshake(
            reader, writer, secret=secret, role=peer, session=secrets.randbits(64), dialer=True,
            timeout=ATTEMPT_TIMEOUT,
        )  # fmt: skip
    except Exception as err:  # any failure is a failed attempt, counted
        return f"{type(err).__name__}: {err}"
    elapsed = time.monotonic() - started
    if peer is Role.EGRESS:  # a real egress says where to resume; here: nowhere
        resume = encode(FrameType.RESUME)
        writer.write(resume + Sealer(hello.keys.send).seal(resume))
    writer.close()
    return elapsed


def _free_port() -> int:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return int(free.getsockname()[1])


def _counters(metrics_port: int) -> dict[str, float]:
    """The relay's handshake counters: how hard the flood pressed."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    wanted = ("mcastkit_relay_disconnects_total", "mcastkit_relay_auth_failures_total")
    counters: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, value = line.rsplit(" ", 1)
            counters[name.removeprefix("mcastkit_relay_")] = float(value)
    return counters


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the relay exited: {process.stderr.read().decode() if process.stderr else ''}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("the relay did not listen within 15 s")


def run(role: str, strangers: int, attempts: int, hold: float, warmup: float = 2.0) -> dict[str, Any]:
    """The whole measurement: relay, flood, attempts; what a test or the command line reads."""
    folder = Path(tempfile.mkdtemp(prefix="mcastkit-flood-"))
    secret_file = folder / "secret"
    secret_file.touch(mode=0o600)
    secret = secrets.token_hex(32).encode()
    secret_file.write_bytes(secret)
    port, metrics_port = _free_port(), _free_port()
    common = [
        "--listen", f"127.0.0.1:{port}", "--interface", "127.0.0.1", "--secret-file", str(secret_file),
        "--metrics", f"127.0.0.1:{metrics_port}",
    ]  # fmt: skip
    role_args = (
        ["--group", "239.255.77.1:47001"]
        if role == "ingress"
        else ["--ttl", "1", "--allow", "239.255.77.2:47002"]
    )
    mcastkit = [sys.executable, "-m", "mcastkit", "relay", role]
    relay = subprocess.Popen([*mcastkit, *common, *role_args], stderr=subprocess.PIPE)
    flood: subprocess.Popen[bytes] | None = None
    try:
        _wait_listening(port, relay)
        budget = warmup + attempts * (ATTEMPT_TIMEOUT + 1) + 5
        flood = subprocess.Popen(
            [sys.executable, __file__, "--flood-port", str(port), "--strangers", str(strangers),
             "--flood-seconds", str(budget), "--hold", str(hold)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(warmup)  # the flood at full strength before the first attempt
        peer = Role.INGRESS if role == "egress" else Role.EGRESS
        times = [asyncio.run(_attempt(port, secret, peer)) for _ in range(attempts)]
        counters = _counters(metrics_port)
    finally:
        if flood is not None:
            flood.kill()  # a load generator: nothing of it to keep
            flood.wait(10)
        relay.send_signal(signal.SIGTERM)
        try:
            _out, errors = relay.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            relay.kill()
            _out, errors = relay.communicate()
    log = errors.decode(errors="replace")
    (folder / "relay.log").write_text(log)
    done = [t for t in times if isinstance(t, float)]
    return {
        "role": role,
        "strangers": strangers,
        "hold_seconds": hold,
        "attempts": attempts,
        "authenticated_within_5s": sum(t <= WITHIN_SECONDS for t in done),
        "failed": [t for t in times if isinstance(t, str)],
        "seconds": {
            "median": round(statistics.median(done), 4) if done else None,
            "max": round(max(done), 4) if done else None,
        },
        "relay_counters": counters,
        "relay_exit": relay.returncode,
        "relay_log_lines": len(log.splitlines()),
        "tracebacks": log.count("Traceback"),
        "relay_log": str(folder / "relay.log"),
        "load_average_at_end": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", choices=("ingress", "egress"), default="egress", help="the listening relay")
    parser.add_argument("--strangers", type=int, default=500)
    parser.add_argument("--attempts", type=int, default=20)
    parser.add_argument(
        "--hold",
        type=float,
        default=1.0,
        help="a stranger keeps each connection up to this long (0: recycle at once)",
    )
    parser.add_argument("--flood-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--flood-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood_port:
        asyncio.run(_flood(args.flood_port, args.strangers, args.flood_seconds, args.hold))
        return 0
    result = run(args.role, args.strangers, args.attempts, args.hold)
    print(json.dumps({"command": "python " + " ".join(sys.argv), **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
