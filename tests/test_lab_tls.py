"""The lab with its relays' link in TLS: certificates made, flags passed, the stream whole."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from netns_support import needs_lab

from mcastkit.lab.session import Lab, relay_available


@pytest.mark.netns
@needs_lab
@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
def test_a_lab_up_with_tls_carries_the_stream_whole_over_mutual_tls() -> None:
    if not relay_available():
        pytest.skip("`mcastkit relay` is not available in this installation")
    lab = Lab(f"mckt{uuid.uuid4().hex[:6]}")
    try:
        state = lab.up(members=1, tls=True)
        for role in ("ingress", "egress"):
            command = Path(f"/proc/{state.pids[role]}/cmdline").read_bytes().split(b"\0")
            assert b"--tls-cert" in command and b"--tls-ca" in command, role
        assert (lab.run_dir / "pki" / "ingress.key").stat().st_mode & 0o077 == 0
        report = lab.run(path="relay", count=3000, rate=3000)
    finally:
        lab.down()
    (member,) = report.members
    assert member.report is not None and (member.report.unique, member.report.lost) == (3000, 0)
    assert (report.relay or {}).get("egress.datagrams_out") == 3000
