"""``mcastkit overlay up|down|status|unit|key``: multicast between hosts where no Transit Gateway
domain reaches, over VXLAN with head-end replication (see :mod:`mcastkit.overlay.device`)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from mcastkit.config import Overlay, load_config, load_overlays
from mcastkit.console import Console
from mcastkit.errors import BadInput
from mcastkit.exit import ExitStatus
from mcastkit.overlay import device, wireguard
from mcastkit.overlay.echo import echo
from mcastkit.overlay.status import status
from mcastkit.overlay.system import System
from mcastkit.overlay.unit import systemd_unit


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "overlay",
        help="multicast between hosts over VXLAN with head-end replication (no Transit Gateway needed)",
        description="Bring this host's part of an overlay up or down, show it, or print a systemd unit "
        "for it.",
    )
    actions = parser.add_subparsers(dest="overlay_command", required=True)
    helps = {
        "up": "make this host's part of the overlay match the config (idempotent)",
        "down": "remove this host's part of the overlay (idempotent)",
        "status": "show the device, its peers (and whether they answer), its groups and traffic",
        "unit": "print a systemd unit that brings the overlay up at boot",
        "key": "make this host's WireGuard key (once) and print its public key for the config",
    }
    for name, text in helps.items():
        sub = actions.add_parser(name, help=text)
        source = sub.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", metavar="FILE", help="a file of overlays (overlays: [...])")
        source.add_argument("--config", metavar="FILE", help="the mcastkit config (its overlays: section)")
        sub.add_argument("--name", help="the overlay (default: the only one in the file)")
        sub.add_argument(
            "--host",
            help="this host's name in the overlay (default: the host whose underlay address this has)",
        )
        if name in ("up", "unit", "key"):
            sub.add_argument(
                "--key-dir",
                type=Path,
                default=wireguard.DEFAULT_KEY_DIR,
                help=f"where this host's WireGuard key is kept (default {wireguard.DEFAULT_KEY_DIR})",
            )
        if name == "status":
            sub.add_argument("--no-check", action="store_true", help="do not send an ICMP echo to each peer")
            sub.add_argument("--json", action="store_true", help="print the status as JSON")
        if name == "unit":
            sub.add_argument(
                "--executable",
                default=shutil.which("mcastkit") or "/usr/local/bin/mcastkit",
                help="the mcastkit the unit runs",
            )
        sub.set_defaults(handler=run)


def _overlay(args: argparse.Namespace) -> tuple[Overlay, list[str]]:
    # Absolute: a systemd unit runs its command from /.
    if args.file:
        overlays, source = load_overlays(args.file), ["--file", str(Path(args.file).resolve())]
    else:
        overlays, source = load_config(args.config).overlays, ["--config", str(Path(args.config).resolve())]
    names = [o.name for o in overlays]
    if args.name is None:
        if len(overlays) != 1:
            flag = args.file or args.config
            raise BadInput(f"{flag}: {len(overlays)} overlays ({', '.join(names) or 'none'}); pass --name")
        return overlays[0], source
    for overlay in overlays:
        if overlay.name == args.name:
            return overlay, source
    raise BadInput(f"--name {args.name}: no such overlay ({', '.join(names) or 'none'})")


def run(args: argparse.Namespace, console: Console) -> ExitStatus:
    overlay, source = _overlay(args)
    system = System()
    if args.overlay_command == "down":
        changes = device.down(overlay, system)
        print("\n".join(changes.lines) or f"overlay {overlay.name}: nothing to remove", file=console.out)
        return ExitStatus.OK
    me = device.this_host(overlay, system, args.host)
    if args.overlay_command == "unit":
        keys = None if args.key_dir == wireguard.DEFAULT_KEY_DIR else args.key_dir.resolve()
        unit = systemd_unit(overlay, me, executable=args.executable, source=source, key_dir=keys)
        print(unit, end="", file=console.out)
        return ExitStatus.OK
    if args.overlay_command == "key":
        if overlay.wireguard is None:
            raise BadInput(
                f"overlay {overlay.name} has no wireguard section, so it needs no key; add "
                "wireguard: {cidr: ...} to it to carry it encrypted"
            )
        key, created = wireguard.ensure_key(overlay, system, args.key_dir)
        print(key, file=console.out)
        kept = "made" if created else "already there"
        path = wireguard.key_path(overlay, args.key_dir)
        print(
            f"overlay {overlay.name}, host {me.name}: private key {path} {kept}; put "
            f"`public_key: {key}` in {me.name}'s entry of the config",
            file=console.err,
        )
        return ExitStatus.OK
    if args.overlay_command == "up":
        changes = device.up(overlay, me, system, args.key_dir)
        print(
            "\n".join(changes.lines) or f"overlay {overlay.name} on {me.name}: up, nothing changed",
            file=console.out,
        )
        return ExitStatus.OK
    system.require("ip", "bridge", "iptables")
    found = status(overlay, me, system, check_peers=not args.no_check, echo=echo)
    if args.json:
        print(json.dumps(found.to_dict()), file=console.out)
    else:
        print("\n".join(found.lines()), file=console.out)
    return ExitStatus.FAILURE if found.problems else ExitStatus.OK
