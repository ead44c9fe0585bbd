"""Throwaway certificates for a relay link in TLS mode: a private CA and a certificate per relay,
made with the ``openssl`` command (the lab's ``--tls``, and the tests)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mcastkit.lab.netns import LabError

_CURVE = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(frozen=True)
class Credentials:
    """What ``mcastkit relay --tls-cert --tls-key --tls-ca`` takes."""

    cert: str
    key: str
    ca: str

    def flags(self) -> list[str]:
        return ["--tls-cert", self.cert, "--tls-key", self.key, "--tls-ca", self.ca]


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise LabError("TLS needs the openssl command to make certificates (Debian: apt-get install openssl)")
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode:
        raise LabError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req", "-x509", *_CURVE, "-keyout", str(key), "-out", str(cert), "-days", "7", "-subj", f"/CN={name}"
    )
    key.chmod(0o600)
    return cert, key


def issue(folder: Path, name: str, ca: tuple[Path, Path], trust: Path | None = None) -> Credentials:
    """A certificate for ``name`` signed by ``ca``, trusting ``trust`` (default: that CA)."""
    cert, key, request = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    _openssl("req", *_CURVE, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}")
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
        "-out", str(cert), "-days", "7",
    )  # fmt: skip
    key.chmod(0o600)
    return Credentials(str(cert), str(key), str(trust or ca[0]))
