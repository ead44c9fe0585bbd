"""A systemd unit that brings a host's part of an overlay up at boot (and down at shutdown)."""

from __future__ import annotations

import shlex

from mcastkit.config import Overlay, OverlayHost


def systemd_unit(overlay: Overlay, me: OverlayHost, *, executable: str, source: list[str]) -> str:
    """The unit text; ``source`` is how the command finds the overlay (``--file F`` or ``--config C``)."""
    where = [*source, "--name", overlay.name]
    up = shlex.join([executable, "overlay", "up", *where, "--host", me.name])
    down = shlex.join([executable, "overlay", "down", *where, "--host", me.name])
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
