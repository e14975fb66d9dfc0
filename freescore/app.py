"""Composition root: configuration -> one MultiService of listeners and services.

This is the only module that knows every service. An existing Twisted
`Application` can add freescore with `makeService({"config": path})`, and an
existing `twisted.web` site can mount one of `service.roots`.
"""

from __future__ import annotations

import importlib
import resource as rlimit
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger

from freescore import config as configmod
from freescore import embedded, listeners
from freescore.gcpolicy import GcPolicy
from freescore.hub.memory import MemoryHub
from freescore.listeners import ListenerService
from freescore.metrics import Metrics
from freescore.pollpacing import PollPacing
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.web import FreescoreSite, MetricsPage, Root, Status
from freescore.websocket import ConnectionRegistry

log = Logger(namespace="freescore")


class _GoingAway(Service):
    """On stop, closes every WebSocket with 1001 and waits (bounded) for them to go."""

    def __init__(self, connections: ConnectionRegistry, reactor: Any, timeout: float) -> None:
        self.connections = connections
        self.reactor = reactor
        self.timeout = timeout

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        count = len(self.connections.open)
        if count:
            log.info("freescore: closing {count} WebSocket connections (1001)", count=count)
        return self.connections.close_all(self.reactor, self.timeout)


class FreescoreService(MultiService):
    """The whole of freescore as one Twisted service."""

    def __init__(self, cfg: configmod.Config, reactor: Any) -> None:
        super().__init__()
        self.setName("freescore")
        self.config = cfg
        self.reactor = reactor
        self.metrics = Metrics()
        self.connections = ConnectionRegistry()
        self.gc = GcPolicy(reactor, self.metrics, self.connections, cfg.runtime)
        self.gc.setServiceParent(self)
        PollPacing(reactor, self.metrics, cfg.runtime).setServiceParent(self)
        self.hub = make_hub(cfg, reactor)
        if isinstance(self.hub, Service):  # the Redis hub connects on start, leaves presence on stop
            self.hub.setServiceParent(self)
        self.protocols: dict[str, ProtocolService] = {}
        self.roots = [self._make_root(listener) for listener in cfg.listeners]
        for name, settings in cfg.services.items():
            ctx = ServiceContext(
                name=name, settings=settings, config=cfg, hub=self.hub, reactor=reactor,
                metrics=self.metrics.for_service(name), connections=self.connections,
            )
            service = make_service(ctx)
            service.setServiceParent(self)
            self.protocols[name] = service
            for index in cfg.listeners_for(name):
                for path, resource in service.resources.items():
                    self.roots[index].mount(path, resource)
        _GoingAway(self.connections, reactor, cfg.http.shutdown_timeout).setServiceParent(self)
        self.listeners = []
        for index, (listener, root) in enumerate(zip(cfg.listeners, self.roots, strict=True)):
            site = FreescoreSite(root, idle_timeout=cfg.http.idle_timeout, reactor=reactor)
            site.max_body = cfg.http.max_body
            site.header_timeout = cfg.http.header_timeout
            site.displayTracebacks = False
            lst = ListenerService(index, listener, site, reactor)
            lst.setServiceParent(self)
            self.listeners.append(lst)

    def _make_root(self, listener: configmod.ListenerSettings) -> Root:
        root = Root()
        if listener.status:
            root.putChild(b"status", Status(self.down, self.config.http.cors_origin))
        if listener.serves_metrics:
            root.putChild(b"metrics", MetricsPage(self.metrics.render))
        return root

    def down(self) -> list[str]:
        """Names of what is not up, for /status."""
        down = [name for name, svc in self.protocols.items() if not svc.is_up()]
        if not self.hub.is_up():
            down.append("hub")
        return down

    def reload_tls(self) -> None:
        for lst in self.listeners:
            if lst.tls is not None:
                lst.tls.reload()

    def startService(self) -> None:
        raise_open_files(self.config.runtime.nofile)
        super().startService()
        self.reactor.callWhenRunning(self._ready)
        if hasattr(signal, "SIGHUP"):
            try:
                signal.signal(signal.SIGHUP, self._on_sighup)
            except ValueError:  # not the main thread (embedded use)
                pass

    def _ready(self) -> None:
        waits = [lst.listening for lst in self.listeners if lst.listening is not None]
        DeferredList(waits).addCallback(lambda _: self._log_ready())

    def _log_ready(self) -> None:
        if any(lst.port is None for lst in self.listeners):
            return  # one could not listen: logged, and the reactor is stopping
        log.info(
            "freescore: ready, services {services} on {count} listener(s)",
            services=", ".join(self.protocols) or "(none)", count=len(self.listeners),
        )

    def _on_sighup(self, signum: int, frame: Any) -> None:
        log.info("freescore: SIGHUP, reloading TLS certificates")
        self.reactor.callFromThread(self.reload_tls)


def make_service(ctx: ServiceContext) -> ProtocolService:
    """Build the enabled service `ctx.name` from its package's `service` module, imported only now."""
    module = importlib.import_module(f"freescore.{ctx.name}.service")
    service: ProtocolService = module.make_service(ctx)
    return service


def raise_open_files(wanted: int) -> None:
    """Raise the process's open-files soft limit once: every connection is a descriptor.

    To `wanted` (0: the hard limit), never above the hard limit and never lower than it is.
    """
    try:
        soft, hard = rlimit.getrlimit(rlimit.RLIMIT_NOFILE)
        target = hard if wanted == 0 else (wanted if hard == rlimit.RLIM_INFINITY else min(wanted, hard))
        if soft != rlimit.RLIM_INFINITY and (target == rlimit.RLIM_INFINITY or target > soft):
            rlimit.setrlimit(rlimit.RLIMIT_NOFILE, (target, hard))
            log.info("freescore: open-files limit raised from {old} to {new}", old=soft, new=_limit(target))
        else:
            log.info("freescore: open-files limit {soft} (hard {hard})", soft=_limit(soft), hard=_limit(hard))
    except (OSError, ValueError) as e:
        log.warn("freescore: cannot raise the open-files limit: {why}", why=e)


def _limit(n: int) -> str:
    return "unlimited" if n == rlimit.RLIM_INFINITY else str(n)


def make_hub(cfg: configmod.Config, reactor: Any) -> Any:
    start_ms = int(reactor.seconds() * 1000)
    if cfg.hub.backend == "memory":
        return MemoryHub(start_ms)
    from freescore.hub.redis import RedisHub

    hub = cfg.hub
    try:
        return RedisHub(
            hub.url, start_ms, reactor, node=hub.node, presence_ttl=hub.presence_ttl, timeout=hub.timeout,
            retry_min=hub.retry_min, retry_max=hub.retry_max,
        )
    except ValueError as e:
        raise configmod.ConfigError(cfg.file, "hub.url", str(e)) from None


def makeService(options: Mapping[str, Any], reactor: Any = None) -> FreescoreService:
    """Build freescore from `options["config"]` (a TOML path), else the embedded default. Raises ConfigError."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    if options.get("config") is not None:
        cfg = configmod.load(options["config"])
    else:
        cwd = Path.cwd().resolve()
        cfg = embedded.load(options.get("listen"), cwd)
        log.info(
            "freescore: no --config: running the embedded default (twistd freescore --print-config shows it), "
            "data in {data}", data=str(cwd / embedded.DATA_DIR),
        )
    listeners.check(cfg, reactor)
    return FreescoreService(cfg, reactor)
