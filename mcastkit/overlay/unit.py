"""A systemd unit that brings a host's part of an overlay up at boot (and down at shutdown)."""

from __future__ import annotations

import shlex
from pathlib import Path

from mcastkit.config import Overlay, OverlayHost


def systemd_unit(
    overlay: Overlay, me: OverlayHost, *, executable: str, source: list[str], key_dir: Path | None = None
) -> str:
    """The unit text; ``source`` is how the command finds the overlay (``--file F`` or ``--config C``);
    ``key_dir``: where ``up`` finds the WireGuard key, when not in the default place."""
    where = [*source, "--name", overlay.name, "--host", me.name]
    keys = [] if key_dir is None else ["--key-dir", str(key_dir)]
    up = shlex.join([executable, "overlay", "up", *where, *keys])
    down = shlex.join([executable, "overlay", "down", *where])
    return f"""[Unit]
Description=mcastkit overlay {overlay.name} (VXLAN {overlay.vni}) on {me.name}
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
Restart=on-failure
RestartSec=10
ExecStart={up}
ExecStop={down}

[Install]
WantedBy=multi-user.target
"""
