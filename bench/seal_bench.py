#!/usr/bin/env python3
"""What integrity and encryption cost per relay write; prints JSON (not a test).

A relay link seals every write (one batch of frames) with an HMAC-SHA256 tag, and the reader
verifies it before acting (:mod:`mcastkit.relay.seal`). This measures, in one process and one
run, side by side, per write of N 64-byte datagrams (96 bytes framed each) and of one 64 KiB run:

- ``seal``: the writer's tag (``Sealer.seal``);
- ``verify``: the reader's decode with the check (``SealedDecoder``) minus the plain decode
  (``Decoder``) of the same bytes, i.e. what the check adds;
- ``blake2b``: the same tag with keyed BLAKE2b instead (the alternative considered);
- ``tls``: TLS 1.3 (AES-GCM, OpenSSL through Python's ``ssl`` with memory BIOs): encrypt on one
  side and decrypt on the other, what an encrypted link would add.

Each figure is the median of ``--repeat`` timings of ``--loops`` operations, in microseconds per
write and per datagram.  Run:  python bench/seal_bench.py > bench/out/seal.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mcastkit.relay.frame import Decoder, FrameType, encode
from mcastkit.relay.seal import SealedDecoder, Sealer

KEY = bytes(range(32))


def _batch(datagrams: int, size: int = 64) -> bytes:
    return b"".join(
        encode(FrameType.DATA, b"m" * size, group=0xEF010101, port=5000, sequence=n + 1)
        for n in range(datagrams)
    )


def _run_frame() -> bytes:
    return encode(FrameType.RUN, b"r" * 64 * 1000, group=0xEF010101, port=5000, segment=1000, sequence=1)


def _time(operation: Callable[[], object], loops: int, repeat: int) -> float:
    """Median microseconds per call."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(loops):
            operation()
        timings.append((time.perf_counter() - started) / loops * 1e6)
    return statistics.median(timings)


def _tls_pair() -> tuple[ssl.SSLObject, ssl.SSLObject, list[ssl.MemoryBIO]]:
    """A client and a server TLS 1.3 session over memory BIOs, handshake done."""
    folder = Path(tempfile.mkdtemp())
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=relay"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.load_verify_locations(cert)
    client_context.check_hostname = False
    bios = [ssl.MemoryBIO() for _ in range(4)]  # client in/out, server in/out
    client = client_context.wrap_bio(bios[0], bios[1])
    server = server_context.wrap_bio(bios[2], bios[3], server_side=True)
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        bios[2].write(bios[1].read())
        bios[0].write(bios[3].read())
    return client, server, bios


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loops", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    client, server, bios = _tls_pair()
    cases = {f"{n} x 64 B": (_batch(n), n) for n in (1, 8, 64)} | {"run of 64 x 1000 B": (_run_frame(), 64)}
    results: dict[str, Any] = {}
    for name, (data, datagrams) in cases.items():
        sealer = Sealer(KEY)

        def seal(data: bytes = data, sealer: Sealer = sealer) -> None:
            sealer.seal(data)

        # The reader checks each write once, in order: one stream of sealed writes per timing.
        writer = Sealer(KEY)
        stream = [data + writer.seal(data) for _ in range(args.loops * args.repeat)]
        reader = SealedDecoder(KEY)
        writes = iter(stream)

        def verify(reader: SealedDecoder = reader, writes: Iterator[bytes] = writes) -> None:
            for _ in reader.feed(next(writes)):
                pass

        plain_decoder = Decoder()

        def plain(data: bytes = data, decoder: Decoder = plain_decoder) -> None:
            for _ in decoder.feed(data):
                pass

        def tls(data: bytes = data) -> None:
            client.write(data)
            bios[2].write(bios[1].read())
            got = 0
            while got < len(data):  # a read returns one TLS record (at most 16 KiB)
                got += len(server.read(len(data)))

        figures = {
            "seal": _time(seal, args.loops, args.repeat),
            "verify": _time(verify, args.loops, args.repeat) - _time(plain, args.loops, args.repeat),
            "blake2b": _time(
                lambda data=data: hashlib.blake2b(data, key=KEY, digest_size=16).digest(),
                args.loops,
                args.repeat,
            ),
            "tls": _time(tls, args.loops, args.repeat),
        }
        results[name] = {
            "bytes": len(data),
            "datagrams": datagrams,
            "us_per_write": {key: round(value, 3) for key, value in figures.items()},
            "us_per_datagram": {key: round(value / datagrams, 3) for key, value in figures.items()},
        }
    print(
        json.dumps(
            {
                "command": "python " + " ".join(sys.argv),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "openssl": ssl.OPENSSL_VERSION,
                    "load_average_at_start": os.getloadavg(),
                },
                "tls_cipher": client.cipher(),
                "loops": args.loops,
                "repeat": args.repeat,
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
