"""TLS on the public port: verified HTTPS and wss://, full chain, SIGHUP reload."""

import asyncio
import signal
import ssl
from pathlib import Path

import requests
from websockets.asyncio.client import connect

from harness import FreescoreProcess
from tlsutil import peer_certificate, root_ca, write_server_files

ECHO_TAC = Path(__file__).resolve().parent / "echo_app.tac"


def tls_config(files) -> str:
    return f"""
[[listen]]
name = "public"
endpoint = "tcp:0:interface=127.0.0.1"
certificate = "{files.certificate}"
private_key = "{files.private_key}"

[[listen]]
name = "plain"
endpoint = "tcp:0:interface=127.0.0.1"
"""


def test_https_status_verified_with_full_chain(freescore, tmp_path):
    files = write_server_files(tmp_path / "tls")
    fs = freescore(tls_config(files))
    assert fs.url(0).startswith("https://")
    # The client trusts only the root: verification passes only if the intermediate is sent.
    r = requests.get(fs.url(0) + "/status", verify=str(files.ca_file), timeout=5)
    assert (r.status_code, r.text) == (200, "OK")
    with_plain = requests.get(fs.url(1) + "/status", timeout=5)
    assert with_plain.text == "OK"


def test_tls_version_is_at_least_1_2(freescore, tmp_path):
    files = write_server_files(tmp_path / "tls")
    fs = freescore(tls_config(files))
    import socket

    ctx = files.client_context()
    with socket.create_connection(("127.0.0.1", fs.port(0)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    old = files.client_context()
    old.minimum_version = ssl.TLSVersion.TLSv1_2
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", fs.port(0)), timeout=5) as raw:
        with old.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.2"
            assert tls.cipher()[0].startswith(("ECDHE", "TLS_")), tls.cipher()


def test_alpn_selects_http_1_1_and_an_offer_without_it_is_no_handshake_failure(freescore, tmp_path):
    """freescore speaks HTTP/1.1 only. Twisted's ALPN answered a client offering only h2 with an
    internal_error alert, and offers h2 itself wherever the h2 package is installed."""
    import socket

    files = write_server_files(tmp_path / "tls")
    fs = freescore(tls_config(files))
    for offer, selected in ((["h2", "http/1.1"], "http/1.1"), (["h2"], None), (["spdy/3", "h3"], None)):
        ctx = files.client_context()
        ctx.set_alpn_protocols(offer)
        with socket.create_connection(("127.0.0.1", fs.port(0)), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.selected_alpn_protocol() == selected, offer
                tls.sendall(b"GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                assert tls.recv(4096).startswith(b"HTTP/1.1 200"), offer


async def _echo(url: str, ctx, text: str) -> str:
    async with connect(url, ssl=ctx) as ws:
        await ws.send(text)
        return await asyncio.wait_for(ws.recv(), 5)


def start_echo(tmp_path, files) -> FreescoreProcess:
    return FreescoreProcess(tls_config(files), tmp_path, tac=ECHO_TAC).start()


def test_wss_echo_through_tls_listener(tmp_path):
    files = write_server_files(tmp_path / "tls")
    fs = start_echo(tmp_path, files)
    try:
        reply = asyncio.run(_echo(fs.url(0, "wss") + "/echo", files.client_context(), "hello over wss"))
        assert reply == "hello over wss"
    finally:
        fs.stop()


def test_sighup_reloads_certificate_and_keeps_open_websockets(tmp_path):
    root = root_ca()
    files = write_server_files(tmp_path / "tls", root=root)
    first_serial = files.leaf.cert.serial_number
    fs = start_echo(tmp_path, files)
    try:
        async def scenario():
            async with connect(fs.url(0, "wss") + "/echo", ssl=files.client_context()) as ws:
                await ws.send("before")
                assert await asyncio.wait_for(ws.recv(), 5) == "before"
                # Replace the files in place, as certbot would, and signal.
                renewed = write_server_files(tmp_path / "tls", root=root)
                fs.signal(signal.SIGHUP)
                await asyncio.to_thread(fs.wait_log, r"TLS certificate reloaded")
                seen = peer_certificate("127.0.0.1", fs.port(0), renewed.client_context())
                assert seen.serial_number == renewed.leaf.cert.serial_number != first_serial
                # The connection opened with the old certificate is still up.
                await ws.send("after")
                assert await asyncio.wait_for(ws.recv(), 5) == "after"

        asyncio.run(scenario())
    finally:
        fs.stop()


def test_failed_reload_keeps_the_old_certificate(freescore, tmp_path):
    files = write_server_files(tmp_path / "tls")
    fs = freescore(tls_config(files))
    files.certificate.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    fs.signal(signal.SIGHUP)
    line = fs.wait_log(r"TLS reload of .* failed, keeping the old certificate")
    assert "server.pem" in line
    seen = peer_certificate("127.0.0.1", fs.port(0), files.client_context())
    assert seen.serial_number == files.leaf.cert.serial_number
    assert requests.get(fs.url(0) + "/status", verify=str(files.ca_file), timeout=5).text == "OK"
