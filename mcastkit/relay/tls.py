"""Optional TLS for a relay link (``--tls-cert``, ``--tls-key``, ``--tls-ca``): encryption in transit.

Both sides present a certificate and require the peer's, signed by the one CA given (mutual
TLS 1.3). Peer names are not checked: the relays address each other by IP, and the CA is
meant to be private to the relay (a CA that signs anything else would let those certificates
in too). The shared-secret handshake and the seals run inside TLS unchanged, so TLS adds
confidentiality, and a stranger without a certificate is refused before the relay spends
anything on it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from mcastkit.errors import BadInput


class TlsError(BadInput):
    """A TLS file is missing or unusable (exit 2)."""


@dataclass(frozen=True)
class TlsContexts:
    """What a listening relay serves with and what a dialing relay connects with."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def load_tls(cert: str | None, key: str | None, ca: str | None) -> TlsContexts | None:
    """The contexts for ``--tls-cert``, ``--tls-key`` and ``--tls-ca``; None when none is given."""
    given = {"--tls-cert": cert, "--tls-key": key, "--tls-ca": ca}
    if not any(given.values()):
        return None
    missing = [flag for flag, value in given.items() if not value]
    if missing:
        raise TlsError(f"{', '.join(missing)} missing: TLS needs --tls-cert, --tls-key and --tls-ca together")
    assert cert and key and ca
    for flag, path in given.items():
        if not Path(str(path)).is_file():
            raise TlsError(f"{flag} {path}: no such file")
    if Path(key).stat().st_mode & 0o077:
        raise TlsError(f"--tls-key {key} is readable by group or others; chmod 600 {key}")
    return TlsContexts(
        _context(ssl.Purpose.CLIENT_AUTH, cert, key, ca), _context(ssl.Purpose.SERVER_AUTH, cert, key, ca)
    )


def _context(purpose: ssl.Purpose, cert: str, key: str, ca: str) -> ssl.SSLContext:
    context = ssl.SSLContext(
        ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False  # peers by IP; the private CA is the check (module docs)
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as err:
        raise TlsError(
            f"--tls-cert {cert} / --tls-key {key}: not a certificate and its key ({err})"
        ) from None
    try:
        context.load_verify_locations(cafile=ca)
    except (ssl.SSLError, OSError) as err:
        raise TlsError(f"--tls-ca {ca}: not a CA certificate ({err})") from None
    return context
