"""Listening endpoints, TLS contexts and certificate reload.

TLS is terminated here so no stunnel or Apache is needed: a plain endpoint
string (`tcp:8443`) plus PEM files becomes a TLS listener whose certificate
can be swapped on SIGHUP without dropping open connections.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from OpenSSL import SSL
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IOpenSSLServerConnectionCreator
from twisted.internet.ssl import Certificate, CertificateOptions, KeyPair, TLSVersion
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.server import Site
from zope.interface import implementer

from freescore.settings import Config, ConfigError, ListenerSettings, endpoint_options

log = Logger(namespace="freescore.listeners")

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)

DEFAULT_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
"""TLS 1.2 suites: forward secret (ECDHE) and AEAD only. TLS 1.3 suites are OpenSSL's, all of them AEAD."""

MIN_BACKLOG = 1024
_BACKLOG_KINDS = ("tcp", "tcp6", "ssl", "unix")


class TLSConfigError(Exception):
    """The PEM files cannot make a TLS context; the message says why."""


class CannotListen(Exception):
    """A listener could not listen at start. Its line is logged already: the process exits 1 without a traceback.

    An exception, not SystemExit: a daemonizing twistd reports an exception from
    the start to the waiting parent, which then exits 1 (SystemExit would leave it waiting).
    """


def _no_traceback_for_cannot_listen() -> None:
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not issubclass(kind, CannotListen):
            previous(kind, value, tb)

    sys.excepthook = hook


def check_ciphers(ciphers: str) -> None:
    """Refuse an OpenSSL cipher string that names no suite OpenSSL knows."""
    if not ciphers:
        return
    try:
        SSL.Context(SSL.TLS_METHOD).set_cipher_list(ciphers.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError) as e:
        raise TLSConfigError(f"OpenSSL takes no cipher from {ciphers!r}: {e}") from None


def load_tls_context(certificate: Path, private_key: Path, ciphers: str = "") -> SSL.Context:
    """Build a server context: TLS 1.2 minimum, forward-secret AEAD suites (or `ciphers`), full chain."""
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
        context.set_cipher_list((ciphers or DEFAULT_CIPHERS).encode("ascii"))
        context.set_alpn_select_callback(select_http_1_1)
    except Exception as e:
        raise TLSConfigError(f"certificate and key do not make a TLS context: {e!r}") from None
    return context


def select_http_1_1(connection: SSL.Connection, offered: list[bytes]) -> Any:
    """ALPN: `http/1.1` when offered, else no protocol (the handshake goes on; the client decides).

    Replaces Twisted's choice, which offers h2 wherever the h2 package is installed
    (freescore's channel speaks HTTP/1.1 only) and fails a handshake offering
    neither with an internal_error alert.
    """
    return b"http/1.1" if b"http/1.1" in offered else SSL.NO_OVERLAPPING_PROTOCOLS


def check(config: Config, reactor: Any) -> None:
    """What parsing cannot check without Twisted: endpoint strings, ciphers and PEM files. Raises ConfigError."""
    for index, listener in enumerate(config.listeners):
        key = f"listen[{index}]"
        try:
            serverFromString(reactor, listener.endpoint)
        except Exception as e:  # Twisted raises ValueError, KeyError, TypeError...
            raise ConfigError(
                config.file, f"{key}.endpoint", f"cannot parse endpoint {listener.endpoint!r}: {e!r}"
            ) from None
        if listener.certificate is not None and listener.private_key is not None:
            try:
                check_ciphers(listener.ciphers)
            except TLSConfigError as e:
                raise ConfigError(config.file, f"{key}.ciphers", str(e)) from None
            try:
                load_tls_context(listener.certificate, listener.private_key, listener.ciphers)
            except TLSConfigError as e:
                raise ConfigError(config.file, f"{key}.certificate", str(e)) from None


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableTLS:
    """Hands each new handshake the current context; `reload()` swaps it."""

    def __init__(self, certificate: Path, private_key: Path, ciphers: str = "") -> None:
        self.certificate = certificate
        self.private_key = private_key
        self.ciphers = ciphers
        self.context = load_tls_context(certificate, private_key, ciphers)

    def reload(self) -> bool:
        try:
            context = load_tls_context(self.certificate, self.private_key, self.ciphers)
        except TLSConfigError as e:
            log.error("TLS reload of {cert} failed, keeping the old certificate: {why}", cert=self.certificate, why=e)
            return False
        self.context = context
        log.info("TLS certificate reloaded from {cert}", cert=self.certificate)
        return True

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        return SSL.Connection(self.context, None)


def system_backlog() -> int:
    """The listen backlog freescore asks for: the kernel's `somaxconn`, at least MIN_BACKLOG.

    Twisted's default of 50 drops SYNs when a venue's clients reconnect at once;
    each dropped SYN costs that client a one-second (then longer) retransmit.
    """
    try:
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        somaxconn = 0
    return max(somaxconn, MIN_BACKLOG)


def with_backlog(endpoint: str, backlog: int) -> tuple[str, int | None]:
    """`endpoint` with `backlog=` added when it takes one and sets none; and the backlog it will have."""
    kind, options = endpoint_options(endpoint)
    if kind not in _BACKLOG_KINDS:
        return endpoint, None
    if "backlog" in options:
        value = options["backlog"]
        return endpoint, int(value) if value.isdigit() else None
    return f"{endpoint}:backlog={backlog}", backlog


class ListenerService(Service):
    """One `[[listen]]` table: an endpoint serving one Site, with TLS when configured.

    It listens in `privilegedStartService` (before twistd sheds privileges, as
    Twisted's own strports do), so a port that cannot be bound stops start-up
    before anything runs: one line, exit status 1 (CannotListen).
    """

    def __init__(self, index: int, settings: ListenerSettings, site: Site, reactor: Any) -> None:
        self.index = index
        self.settings = settings
        self.site = site
        self.reactor = reactor
        self.tls = ReloadableTLS(settings.certificate, settings.private_key, settings.ciphers) if settings.tls \
            else None
        self.port: IListeningPort | None = None
        self.listening: Deferred[IListeningPort | None] | None = None
        """Fires once listening (with the port) or once that failed (with None, logged)."""
        self.backlog: int | None = None
        self.failed = False
        self.setName(f"listen[{index}]")

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen()
        if self.failed and not self.reactor.running:  # twistd has not started the reactor
            _no_traceback_for_cannot_listen()
            raise CannotListen(f"cannot listen on {self.settings.endpoint}")

    def startService(self) -> None:
        super().startService()
        self._listen()  # embedded in a running application: no privileged start came first

    def _listen(self) -> None:
        if self.listening is not None:
            return
        factory: Any = self.site
        if self.tls is not None:
            factory = TLSMemoryBIOFactory(self.tls, False, self.site)
        endpoint_string, self.backlog = with_backlog(self.settings.endpoint, system_backlog())
        endpoint = serverFromString(self.reactor, endpoint_string)
        self.listening = endpoint.listen(factory)
        self.listening.addCallbacks(self._listening, self._failed)

    def _listening(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        log.info("freescore: listening on {url}", url=self.url())  # scripts read the URL at the end of this line
        if self.backlog is not None:
            log.info("freescore: listen backlog {backlog} on {url}", backlog=self.backlog, url=self.url())
        return port

    def _failed(self, failure: Any) -> None:
        self.failed = True
        log.error(
            "freescore: cannot listen on {endpoint}: {why}", endpoint=self.settings.endpoint,
            why=failure.getErrorMessage(),
        )
        sys.stdout.flush()
        if self.reactor.running:
            self.reactor.stop()

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
