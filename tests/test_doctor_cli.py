"""``mcastkit doctor`` on the command line: exit statuses, the --json document, and one line (never a
traceback) for a bad argument or a refused AWS call. The host is a fake tree under tmp_path."""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mcastkit import cli
from mcastkit.commands import doctor as doctor_command
from mcastkit.doctor import Host
from mcastkit.doctor.offload import UdpOffloads
from mcastkit.doctor.procfs import ProcFs
from mcastkit.exit import ExitStatus
from mcastkit.onboard.aws import Aws

GROUP = "239.10.1.3:30003"
REGION = "eu-west-2"
ENI = "eni-0123456789abcdef0"


def _hex(address: str) -> str:
    return f"{int.from_bytes(socket.inet_aton(address), 'little'):08X}"


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tree(root: Path, *, forced: str = "2") -> Path:
    """eth1 the multicast interface (224.0.0.0/4 routed by it, 239.10.1.3 joined), eth0 the default."""
    for entry in ("all", "default", "lo", "eth0", "eth1"):
        _write(
            root, f"proc/sys/net/ipv4/conf/{entry}/force_igmp_version", f"{forced if entry == 'all' else 0}\n"
        )
        _write(root, f"proc/sys/net/ipv4/conf/{entry}/rp_filter", "0\n")
    querier = "V2" if forced == "2" else "V3"
    _write(
        root,
        "proc/net/igmp",
        "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
        f"3\teth1      :     2      {querier}\n"
        f"\t\t\t\t{_hex('239.10.1.3')}     1 0:00000000\t\t0\n"
        f"\t\t\t\t{_hex('224.0.0.1')}     1 0:00000000\t\t0\n",
    )
    _write(
        root,
        "proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        f"eth0\t00000000\t{_hex('10.20.50.1')}\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        f"eth1\t{_hex('224.0.0.0')}\t00000000\t0001\t0\t0\t0\t{_hex('240.0.0.0')}\t0\t0\t0\n",
    )
    return root


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A healthy fake host the command reads instead of this machine."""
    _tree(tmp_path)
    privileged = [False]
    monkeypatch.setattr(
        doctor_command,
        "local_host",
        lambda: Host(
            proc=ProcFs(tmp_path),
            udp_offloads=lambda: UdpOffloads(gso=None, gro=None),
            privileged=lambda: privileged[0],
        ),
    )
    return tmp_path


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(["doctor", *argv], cli.Console(out=out, err=err))
    return status, out.getvalue(), err.getvalue()


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mcastkit: error: ")
    return lines[0].removeprefix("mcastkit: error: ")


def test_a_healthy_host_exits_0_with_one_ok_line_per_finding(host: Path) -> None:
    status, out, err = _run("--interface", "eth1", "--group", GROUP)
    assert status == ExitStatus.OK and err == ""
    *findings, summary = out.splitlines()
    assert findings and all(line.startswith("ok       ") for line in findings)
    assert "ok       239.10.1.3 on eth1: joined (1 membership(s) on eth1)" in findings
    assert summary == f"0 problems, 0 warnings, {len(findings)} ok"


def test_a_problem_exits_1_and_says_the_fix(host: Path) -> None:
    _tree(host, forced="0")
    status, out, _ = _run("--interface", "eth1", "--group", GROUP)
    assert status == ExitStatus.FAILURE
    problem = next(line for line in out.splitlines() if line.startswith("PROBLEM"))
    assert problem.startswith("PROBLEM  eth1 IGMP version: IGMPv3 is in effect")
    assert "; fix: sysctl -w net.ipv4.conf.all.force_igmp_version=2" in problem
    assert out.splitlines()[-1].startswith("1 problem, ")


def _document(out: str) -> dict[str, Any]:
    assert len(out.splitlines()) == 1, out
    document = json.loads(out)
    assert isinstance(document, dict)
    return document


def test_json_on_success_is_one_document_of_findings(host: Path) -> None:
    status, out, _ = _run("--interface", "eth1", "--group", GROUP, "--json")
    document = _document(out)
    assert status == ExitStatus.OK and set(document) == {"findings", "problems"}
    assert document["problems"] == 0 and document["findings"]
    for finding in document["findings"]:
        assert set(finding) == {"severity", "check", "subject", "message", "fix"}
        assert finding["severity"] == "ok"


def test_json_on_failure_counts_the_problems(host: Path) -> None:
    _tree(host, forced="0")
    status, out, _ = _run("--interface", "eth1", "--group", GROUP, "--group", "239.10.1.4:30004", "--json")
    document = _document(out)
    problems = [f for f in document["findings"] if f["severity"] == "problem"]
    assert status == ExitStatus.FAILURE
    assert document["problems"] == len(problems) == 2
    assert {p["check"] for p in problems} == {"igmp-version", "igmp-membership"}


def test_a_bad_group_is_one_line_and_exit_2(host: Path) -> None:
    status, out, err = _run("--group", "239.1.1")
    assert status == ExitStatus.BAD_INPUT and out == ""
    assert _one_line(err) == "--group '239.1.1': expected GROUP:PORT, e.g. 239.1.1.1:5000"


def test_a_bad_group_with_json_still_prints_a_document(host: Path) -> None:
    status, out, err = _run("--group", "10.1.1.1:5000", "--json")
    assert status == ExitStatus.BAD_INPUT
    message = _one_line(err)
    assert message == (
        "--group '10.1.1.1:5000': 10.1.1.1 is not a multicast group (224.0.0.0/4); "
        "e.g. --group 239.1.1.1:5000"
    )
    assert _document(out) == {"findings": [], "problems": 0, "error": message}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--listen", "-1"], "--listen '-1': not a number of seconds from 0 to 3600"),
        (["--listen", "nan"], "--listen 'nan': not a number of seconds"),
        (["--aws", "--eni", "eni-12"], "--eni 'eni-12': not an ENI id; e.g. --eni eni-0123456789abcdef0"),
        (["--aws", "--domain", "tgw-1"], "--domain 'tgw-1': not a multicast domain id"),
        (["--region", "eu-west-2"], "--region eu-west-2: only the AWS checks use it; add --aws"),
        (["--interface", "10.20.0.17"], "--interface 10.20.0.17: give the interface's name (e.g. eth1)"),
        (["--interface", "eth/1"], "--interface 'eth/1': not an interface name"),
        (
            ["--interface", "eth7"],
            "--interface eth7: no such interface in this network namespace (interfaces: ",
        ),
        (["--netns", "a", "--all-netns"], "--netns a and --all-netns: choose one"),
        (["--source", "10.20.0.1/33"], "--source '10.20.0.1/33': not an IPv4 address or CIDR"),
    ],
)
def test_every_bad_argument_is_one_line_naming_it(host: Path, argv: list[str], expected: str) -> None:
    status, out, err = _run(*argv)
    assert status == ExitStatus.BAD_INPUT and out == ""
    assert _one_line(err).startswith(expected)


def test_namespaces_without_root_are_the_environment(host: Path) -> None:
    status, out, err = _run("--all-netns")
    assert status == ExitStatus.ENVIRONMENT and out == ""
    assert _one_line(err).startswith("--all-netns: entering a network namespace needs root")


def _denied(region: str, _profile: str | None) -> Aws:
    client = boto3.client(
        "ec2", region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    stubber.add_client_error(
        "describe_network_interfaces",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.",
        http_status_code=403,
    )
    stubber.activate()
    return Aws(region=region, clients={"ec2": client})


def test_an_aws_call_denied_is_one_line_after_the_local_findings(
    host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor_command, "make_aws", _denied)
    argv = ["--interface", "eth1", "--aws", "--region", REGION, "--eni", ENI]
    status, out, err = _run(*argv)
    assert status == ExitStatus.ENVIRONMENT
    assert _one_line(err) == (
        f"account unknown, region {REGION}, {ENI}: access denied to ec2:DescribeNetworkInterfaces "
        "(UnauthorizedOperation: You are not authorized to perform this operation.)"
    )
    assert out.splitlines()[0].startswith("ok       eth1 IGMP version")  # the local checks were printed
    status, out, _ = _run(*argv, "--json")
    document = _document(out)
    assert status == ExitStatus.ENVIRONMENT and document["findings"]
    assert document["error"].endswith(
        "access denied to ec2:DescribeNetworkInterfaces (UnauthorizedOperation: "
        "You are not authorized to perform this operation.)"
    )


def test_a_real_process_says_one_line_for_a_bad_group() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcastkit", "doctor", "--group", "239.1.1.1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == ExitStatus.BAD_INPUT and result.stdout == ""
    assert _one_line(result.stderr) == "--group '239.1.1.1': expected GROUP:PORT, e.g. 239.1.1.1:5000"


def test_every_doctor_option_has_help_that_names_its_default() -> None:
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    doctor = subparsers.choices["doctor"]
    options = [a for a in doctor._actions if a.option_strings and a.dest != "help"]
    assert {a.option_strings[0] for a in options} >= {
        "--interface",
        "--group",
        "--listen",
        "--aws",
        "--netns",
    }
    for action in options:
        assert action.help, action.option_strings
        if action.default not in (None, False):
            assert "default" in action.help, action.option_strings
