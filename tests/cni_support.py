"""A fake IMDSv2 and a minimal CNI runtime, to run the pods' network chain for real.

The fake metadata service answers only with a session token (PUT /latest/api/token first, 401
otherwise), as IMDSv2 does. Run it in-process with :func:`serving`, or in a namespace with
``python tests/cni_support.py PORT INTERFACES_JSON`` (it prints ``ready`` once listening).

:func:`run_chain` executes a conflist the way libcni does: ADD and CHECK run the plugins in order,
each getting the previous result as ``prevResult``; DEL runs them in reverse with the final result.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
IPAM_PLUGIN = REPO / "mcastkit" / "eks" / "cni" / "mcastkit-eni-ipam"
SYSTEM_PLUGINS = Path("/usr/lib/cni")
TOKEN = "fake-imdsv2-token"

#: A node with its primary ENI and the multicast ENI at device index 1.
NODE_INTERFACES = {
    "0e:00:00:00:00:05": {
        "device-number": "0",
        "local-ipv4s": "10.20.100.5",
        "subnet-ipv4-cidr-block": "10.20.100.0/24",
    },
    "0e:00:00:00:00:16": {
        "device-number": "1",
        "local-ipv4s": "10.20.0.17\n10.20.0.99",
        "subnet-ipv4-cidr-block": "10.20.0.0/24",
    },
}


def imds_handler(lookup: Callable[[str], str | None]) -> type[BaseHTTPRequestHandler]:
    """An IMDSv2 request handler: a token first, then ``lookup(path below /latest/meta-data/)``
    (``None``: 404)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _answer(self, status: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                self._answer(200, TOKEN)
            else:
                self._answer(400)

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                self._answer(401)
                return
            value = lookup(self.path.removeprefix("/latest/meta-data/"))
            if value is None:
                self._answer(404)
            else:
                self._answer(200, value)

    return Handler


def interfaces_lookup(interfaces: dict[str, dict[str, str]]) -> Callable[[str], str | None]:
    """Metadata of the network interfaces ``interfaces`` (MAC -> their metadata) only."""

    def lookup(path: str) -> str | None:
        prefix = "network/interfaces/macs/"
        if not path.startswith(prefix):
            return None
        parts = [part for part in path[len(prefix) :].split("/") if part]
        if not parts:
            return "\n".join(f"{mac}/" for mac in interfaces)
        if len(parts) == 2:
            return interfaces.get(parts[0], {}).get(parts[1])
        return None

    return lookup


@contextmanager
def serving(interfaces: dict[str, dict[str, str]]) -> Iterator[str]:
    """A fake IMDSv2 on loopback in this process; yields its endpoint URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), imds_handler(interfaces_lookup(interfaces)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_plugin(
    plugin: Path, command: str, config: dict[str, Any], env: dict[str, str], prefix: list[str] | None = None
) -> tuple[int, dict[str, Any]]:
    """Run one CNI plugin; its exit status and its JSON output (``{}`` when it prints nothing)."""
    result = subprocess.run(
        [
            *(prefix or []),
            "env",
            f"CNI_COMMAND={command}",
            *(f"{k}={v}" for k, v in env.items()),
            str(plugin),
        ],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, (json.loads(result.stdout) if result.stdout.strip() else {})


def run_chain(
    conflist: dict[str, Any],
    command: str,
    env: dict[str, str],
    *,
    node: str,
    previous: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run ``conflist`` in namespace ``node``; stops at the first failing plugin (as libcni does)."""
    plugins = list(conflist["plugins"])
    if command == "DEL":
        plugins.reverse()
    result = previous
    for plugin in plugins:
        config = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **plugin}
        if result is not None:
            config["prevResult"] = result
        status, output = run_plugin(
            SYSTEM_PLUGINS / plugin["type"], command, config, env, prefix=["ip", "netns", "exec", node]
        )
        if status != 0:
            return status, output
        if command == "ADD":
            result = output
    return 0, result or {}


if __name__ == "__main__":
    port, interfaces = int(sys.argv[1]), json.loads(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), imds_handler(interfaces_lookup(interfaces)))
    print("ready", flush=True)
    server.serve_forever()
