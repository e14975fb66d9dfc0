"""Listening endpoints, TLS contexts and certificate reload.

TLS is terminated here so no stunnel or Apache is needed: a plain endpoint
string (`tcp:8443`) plus PEM files becomes a TLS listener whose certificate
can be swapped on SIGHUP without dropping open connections.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from OpenSSL import SSL
from twisted.application.service import Service
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IOpenSSLServerConnectionCreator
from twisted.internet.ssl import Certificate, CertificateOptions, KeyPair, TLSVersion
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.server import Site
from zope.interface import implementer

from freescore.config import ListenerSettings

log = Logger(namespace="freescore.listeners")

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TLSConfigError(Exception):
    """The PEM files cannot make a TLS context; the message says why."""


def load_tls_context(certificate: Path, private_key: Path) -> SSL.Context:
    """Build a server context: TLS 1.2 minimum, Twisted's modern ciphers, full chain."""
    try:
        cert_pem = certificate.read_bytes()
        key_pem = private_key.read_bytes()
    except OSError as e:
        raise TLSConfigError(f"cannot read {e.filename}: {e.strerror}") from None
    blocks = _PEM_CERT.findall(cert_pem)
    if not blocks:
        raise TLSConfigError(f"{certificate}: no PEM certificate found")
    try:
        certs = [Certificate.loadPEM(b).original for b in blocks]
        key = KeyPair.load(key_pem, 1).original  # 1 == FILETYPE_PEM
    except Exception as e:
        raise TLSConfigError(f"cannot parse PEM: {e!r}") from None
    try:
        options = CertificateOptions(
            privateKey=key,
            certificate=certs[0],
            extraCertChain=certs[1:],
            raiseMinimumTo=TLSVersion.TLSv1_2,
        )
        context = options.getContext()
        context.check_privatekey()
    except Exception as e:
        raise TLSConfigError(f"certificate and key do not make a TLS context: {e!r}") from None
    return context


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableTLS:
    """Hands each new handshake the current context; `reload()` swaps it."""

    def __init__(self, certificate: Path, private_key: Path) -> None:
        self.certificate = certificate
        self.private_key = private_key
        self.context = load_tls_context(certificate, private_key)

    def reload(self) -> bool:
        try:
            context = load_tls_context(self.certificate, self.private_key)
        except TLSConfigError as e:
            log.error("TLS reload of {cert} failed, keeping the old certificate: {why}", cert=self.certificate, why=e)
            return False
        self.context = context
        log.info("TLS certificate reloaded from {cert}", cert=self.certificate)
        return True

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        return SSL.Connection(self.context, None)


class ListenerService(Service):
    """One `[[listen]]` table: an endpoint serving one Site, with TLS when configured."""

    def __init__(self, index: int, settings: ListenerSettings, site: Site, reactor: Any) -> None:
        self.index = index
        self.settings = settings
        self.site = site
        self.reactor = reactor
        self.tls = ReloadableTLS(settings.certificate, settings.private_key) if settings.tls else None
        self.port: IListeningPort | None = None
        self.setName(f"listen[{index}]")

    def startService(self) -> None:
        super().startService()
        factory: Any = self.site
        if self.tls is not None:
            factory = TLSMemoryBIOFactory(self.tls, False, self.site)
        endpoint = serverFromString(self.reactor, self.settings.endpoint)
        d = endpoint.listen(factory)
        d.addCallback(self._listening)
        d.addErrback(self._failed)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        log.info("freescore: listening on {url}", url=self.url())

    def _failed(self, failure: Any) -> None:
        log.error(
            "freescore: cannot listen on {endpoint}: {why}", endpoint=self.settings.endpoint,
            why=failure.getErrorMessage(),
        )
        from twisted.internet import reactor

        if reactor.running:
            reactor.stop()

    def url(self) -> str:
        """Where a person would point a browser, for the start-up log line."""
        if self.port is None:
            return self.settings.endpoint
        address = self.port.getHost()
        scheme = "https" if self.tls else "http"
        host = getattr(address, "host", None)
        if host is None:
            return f"{scheme}+unix://{getattr(address, 'name', '?')}"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{address.port}/"

    def stopService(self) -> Any:
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None
