"""bootstrap/socket-buffers.sh: raises the socket buffer ceilings that tasks without root get,
never lowers them, persists them; run against a sysctl tree of files."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mcastkit.constructs.cluster import BOOTSTRAP_DIR

SCRIPT = BOOTSTRAP_DIR / "socket-buffers.sh"


def run(tree: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["env", f"MCASTKIT_PROC_CORE={tree}", *(f"{k}={v}" for k, v in env.items()), "bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def tree_with(tmp_path: Path, rmem: int, wmem: int) -> Path:
    tree = tmp_path / "core"
    tree.mkdir()
    (tree / "rmem_max").write_text(f"{rmem}\n")
    (tree / "wmem_max").write_text(f"{wmem}\n")
    return tree


def test_the_ceilings_are_raised_and_persisted(tmp_path: Path) -> None:
    tree = tree_with(tmp_path, 212992, 212992)
    conf = tmp_path / "sysctl.d" / "90-mcastkit-socket-buffers.conf"
    result = run(tree, MCASTKIT_SYSCTL_CONF=str(conf))
    assert result.returncode == 0, result.stderr
    assert (tree / "rmem_max").read_text().strip() == "67108864"
    assert (tree / "wmem_max").read_text().strip() == "67108864"
    assert "net.core.rmem_max = 67108864" in conf.read_text()
    assert "rmem_max=67108864" in result.stdout


def test_a_higher_ceiling_is_kept(tmp_path: Path) -> None:
    tree = tree_with(tmp_path, 268435456, 1000)
    result = run(tree, MCASTKIT_SYSCTL_CONF="", MCASTKIT_SOCKET_BUFFER_BYTES="1048576")
    assert result.returncode == 0, result.stderr
    assert (tree / "rmem_max").read_text().strip() == "268435456"
    assert (tree / "wmem_max").read_text().strip() == "1048576"


def test_bad_input_and_a_missing_tree_fail_with_one_line(tmp_path: Path) -> None:
    tree = tree_with(tmp_path, 1, 1)
    bad = run(tree, MCASTKIT_SYSCTL_CONF="", MCASTKIT_SOCKET_BUFFER_BYTES="64M")
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "socket-buffers: MCASTKIT_SOCKET_BUFFER_BYTES=64M is not a number of bytes"
    ]
    missing = run(tmp_path / "nowhere", MCASTKIT_SYSCTL_CONF="")
    assert missing.returncode == 1 and "is not writable: run as root on Linux" in missing.stderr
