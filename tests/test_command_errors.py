"""An error a probe or lab command raises reaches ``cli.main``, which alone turns it into one line
on standard error and the exit status its class carries: bad input 2, the environment 3."""

from __future__ import annotations

import errno
import socket
from io import StringIO
from typing import Any

import pytest

from mcastkit.cli import Console, main
from mcastkit.commands import probe
from mcastkit.errors import BadInput, EnvironmentFailure
from mcastkit.exit import ExitStatus
from mcastkit.lab.netns import LabError
from mcastkit.net.addresses import GroupPort
from mcastkit.net.sockets import SocketSetupError
from mcastkit.relay.auth import SecretError

RECV = ["probe", "recv", "--group", "239.1.1.1:5000", "--interface", "127.0.0.1", "--count", "5"]
SEND = ["probe", "send", "--group", "239.1.1.1:5000", "--interface", "127.0.0.1", "--count", "5"]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    status = main(argv, Console(out=out, err=err))
    return status, out.getvalue(), err.getvalue()


def test_the_error_classes_carry_their_exit_status() -> None:
    assert issubclass(LabError, EnvironmentFailure) and LabError.status == ExitStatus.ENVIRONMENT
    assert issubclass(SecretError, BadInput) and SecretError.status == ExitStatus.BAD_INPUT
    refused = SocketSetupError(errno.EPERM, "join 239.1.1.1: permission denied")
    assert isinstance(refused, EnvironmentFailure) and refused.status == ExitStatus.ENVIRONMENT
    # Still an OSError with its errno, for code that handles socket errors as such.
    assert isinstance(refused, OSError) and refused.errno == errno.EPERM
    assert refused.render() == "join 239.1.1.1: permission denied"  # not "[Errno 1] ..."


def test_a_bad_interface_is_bad_input_in_one_line() -> None:
    status, out, err = _run([*RECV[:4], "--interface", "203.0.113.9"])
    assert status == ExitStatus.BAD_INPUT and out == ""
    assert err == "mcastkit: error: --interface 203.0.113.9: no interface on this host has that address\n"


def test_a_refused_join_is_the_environment_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> socket.socket:
        raise SocketSetupError(errno.EPERM, "join 239.1.1.1: permission denied")

    monkeypatch.setattr(probe, "open_receiver", refuse)
    status, out, err = _run(RECV)
    assert status == ExitStatus.ENVIRONMENT and out == ""
    assert err == "mcastkit: error: join 239.1.1.1: permission denied\n"


def test_a_refused_bind_names_the_group_in_one_line() -> None:
    group = GroupPort("239.255.91.7", 45_991)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(group)  # without SO_REUSEADDR: the receiver's bind is refused
        status, _, err = _run(["probe", "recv", "--group", str(group), "--interface", "127.0.0.1"])
    assert status == ExitStatus.ENVIRONMENT
    assert err == f"mcastkit: error: bind {group}: Address already in use\n"


def test_a_bare_network_error_says_network_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOBUFS, "No buffer space available")

    monkeypatch.setattr(probe, "send_stream", fail)
    status, out, err = _run(SEND)
    assert status == ExitStatus.ENVIRONMENT and out == ""
    assert err == "mcastkit: error: network: No buffer space available\n"


def test_a_lab_that_is_not_up_is_the_environment_in_one_line() -> None:
    status, out, err = _run(["lab", "run", "--name", "mcktnotup"])
    assert status == ExitStatus.ENVIRONMENT and out == ""
    assert err == "mcastkit: error: lab 'mcktnotup' is not up: run `mcastkit lab up --name mcktnotup`\n"
