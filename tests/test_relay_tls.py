"""TLS mode: the link encrypted with mutual TLS 1.3; the shared secret and the seals inside it."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest
from test_relay_link import (
    Receiver,
    _egress,
    _endpoint,
    _groups,
    _ingress,
    _label,
    _message,
    _run,
    _sender,
    running,
    send,
    until,
)

from mcastkit.lab.pki import issue, make_ca
from mcastkit.relay.tls import TlsContexts, TlsError, load_tls

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        shutil.which("openssl") is None, reason="needs the openssl command to make certificates"
    ),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TlsContexts | None]:
    folder = tmp_path_factory.mktemp("pki")
    ca, other_ca = make_ca(folder, "relay-ca"), make_ca(folder, "other-ca")
    made = {
        "ingress": issue(folder, "ingress", ca),
        "egress": issue(folder, "egress", ca),
        "stranger": issue(folder, "stranger", other_ca, trust=ca[0]),
    }
    return {name: load_tls(c.cert, c.key, c.ca) for name, c in made.items()}


def test_a_stream_crosses_an_encrypted_link_whole(pki: dict[str, TlsContexts | None]) -> None:
    async def scenario() -> None:
        source, target = _groups()
        receiver = Receiver(target)
        async with (
            running(_egress({source: target}, tls=pki["egress"]), listen=True) as egress,
            running(_ingress([source], tls=pki["ingress"]), connect=[_endpoint(egress)]) as ingress,
        ):
            await until(lambda: egress.stats.peers == 1 and ingress.stats.peers == 1, "the TLS link")
            (link,) = egress.links
            assert link.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
            await send(_sender(), source, [_message(i) for i in range(200)])
            await until(lambda: len(receiver.received) == 200, "the stream")
            assert egress.stats.groups[_label(target)].gaps == 0
        receiver.close()
        assert receiver.indexes() == list(range(200))

    _run(scenario)


@pytest.mark.parametrize("peer", ["plain_tcp", "certificate_of_another_ca"])
def test_a_peer_without_a_certificate_of_the_ca_never_reaches_the_relay(
    peer: str, pki: dict[str, TlsContexts | None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mcastkit.relay")

    async def scenario() -> None:
        source, target = _groups()
        async with running(_egress({source: target}, tls=pki["egress"]), listen=True) as egress:
            if peer == "plain_tcp":
                reader, writer = await asyncio.open_connection(*_endpoint(egress))
                writer.write(b"HELLO, relay: plain TCP, no TLS\n" * 4)
                assert await asyncio.wait_for(reader.read(), 5) is not None  # closed on it
                writer.close()
            else:
                async with running(_ingress([source], tls=pki["stranger"]), connect=[_endpoint(egress)]):
                    await asyncio.sleep(1.0)  # it dials and fails, again and again
            assert egress.stats.peers == 0 and egress.stats.auth_failures == 0  # never got that far

    _run(scenario)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_tls_files_are_all_three_present_private_and_what_they_claim(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "ca")
    made = issue(tmp_path, "relay", ca)
    cert, key = made.cert, made.key
    assert load_tls(None, None, None) is None
    with pytest.raises(TlsError, match="--tls-ca missing"):
        load_tls(cert, key, None)
    with pytest.raises(TlsError, match="--tls-key nope: no such file"):
        load_tls(cert, "nope", str(ca[0]))
    Path(key).chmod(0o640)
    with pytest.raises(TlsError, match=f"readable by group or others; chmod 600 {key}"):
        load_tls(cert, key, str(ca[0]))
    Path(key).chmod(0o600)
    not_a_cert = tmp_path / "junk.pem"
    not_a_cert.write_text("junk\n")
    with pytest.raises(TlsError, match=r"--tls-ca .*junk\.pem: not a CA certificate"):
        load_tls(cert, key, str(not_a_cert))
