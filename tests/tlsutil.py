"""Test certificates made with `cryptography`: a root CA, an intermediate, a leaf."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Authority:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert: x509.Certificate

    def issue(
        self, cn: str, ca: bool = False, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None
    ) -> "Authority":
        key = key or _key()
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return Authority(key, builder.sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)


def root_ca(cn: str = "freescore test root") -> Authority:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


@dataclass
class ServerFiles:
    root: Authority
    leaf: Authority
    certificate: Path
    private_key: Path
    ca_file: Path

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        return ctx


def write_server_files(
    folder: Path, root: Authority | None = None, cn: str = "localhost", rsa_key: bool = False
) -> ServerFiles:
    """Leaf signed by an intermediate: the certificate file holds leaf + intermediate.

    `rsa_key`: an RSA leaf, the only kind a static-RSA (no forward secrecy) suite can use.
    """
    root = root or root_ca()
    intermediate = root.issue("freescore test intermediate", ca=True)
    leaf = intermediate.issue(cn, key=rsa.generate_private_key(65537, 2048) if rsa_key else None)
    folder.mkdir(parents=True, exist_ok=True)
    certificate = folder / "server.pem"
    private_key = folder / "server.key"
    ca_file = folder / "ca.pem"
    certificate.write_bytes(leaf.pem + intermediate.pem)
    private_key.write_bytes(
        leaf.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ca_file.write_bytes(root.pem)
    return ServerFiles(root, leaf, certificate, private_key, ca_file)


def peer_certificate(host: str, port: int, ctx: ssl.SSLContext) -> x509.Certificate:
    """Handshake and return the certificate the server presented."""
    import socket

    with socket.create_connection((host, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der)
