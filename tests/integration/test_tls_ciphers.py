"""TLS 1.2 suites: forward secret AEAD by default, `[[listen]] ciphers` for more (issue 12 item 6).

Driven by `openssl s_client`; the leaf key is RSA, the only kind a static-RSA suite can use.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness import run_twistd
from tlsutil import write_server_files

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed; .ci/needs-http.sh")


def tls_config(files, extra: str = "") -> str:
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"
certificate = "{files.certificate}"
private_key = "{files.private_key}"
{extra}
"""


def handshake(port: int, cipher: str) -> str | None:
    """The TLS 1.2 suite agreed when the client offers only `cipher`, or None when the server refused."""
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-cipher", cipher],
        input="", capture_output=True, text=True, timeout=30,
    )
    for line in result.stdout.splitlines():
        if "Cipher is " in line and result.returncode == 0:
            agreed = line.rsplit("Cipher is ", 1)[1].strip()
            return None if agreed == "(NONE)" else agreed
    return None


def test_default_tls12_suites_are_forward_secret_aead_only(freescore, tmp_path):
    files = write_server_files(tmp_path / "tls", rsa_key=True)
    fs = freescore(tls_config(files))
    port = fs.port()
    assert handshake(port, "ECDHE-RSA-AES128-GCM-SHA256") == "ECDHE-RSA-AES128-GCM-SHA256"
    assert handshake(port, "ECDHE-RSA-CHACHA20-POLY1305") == "ECDHE-RSA-CHACHA20-POLY1305"
    assert handshake(port, "AES128-SHA") is None  # static RSA: no forward secrecy
    assert handshake(port, "AES256-GCM-SHA384") is None  # static RSA, even with GCM
    assert handshake(port, "ECDHE-RSA-AES128-SHA") is None  # forward secret, but CBC with SHA-1


def test_ciphers_setting_adds_suites(freescore, tmp_path):
    files = write_server_files(tmp_path / "tls", rsa_key=True)
    fs = freescore(tls_config(files, 'ciphers = "ECDHE+AESGCM:AES128-SHA"'))
    assert handshake(fs.port(), "AES128-SHA") == "AES128-SHA"
    assert handshake(fs.port(), "ECDHE-RSA-AES256-GCM-SHA384") == "ECDHE-RSA-AES256-GCM-SHA384"


def test_a_cipher_string_openssl_cannot_use_stops_start_up(tmp_path):
    files = write_server_files(tmp_path / "tls")
    config = tmp_path / "freescore.toml"
    config.write_text(tls_config(files, 'ciphers = "NO-SUCH-SUITE"'))
    result = run_twistd(config)
    assert result.returncode == 2
    assert "listen[0].ciphers" in result.stderr and "NO-SUCH-SUITE" in result.stderr
