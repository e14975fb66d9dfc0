"""Every table's typed, validated values: the bases each service table extends, the process's
own tables, and `Config`, the whole of them. `config` reads TOML into these.

Pure Python: each protocol's `settings.py` imports only this, so a
configuration parses without a reactor, Autobahn or any service's code.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self


class ConfigError(Exception):
    """A configuration problem, rendered as `FILE: KEY: message` (here, not in config.py: services raise it)."""

    def __init__(self, file: str | Path, key: str, message: str) -> None:
        self.file = str(file)
        self.key = key
        self.message = message
        super().__init__(f"{self.file}: {key}: {message}")


class SettingError(ValueError):
    """A bad value; the loader adds the file. `key` is relative to the table, or whole (`hub.backend`)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True)
class ServiceSettings:
    """Keys every service table has."""

    enabled: bool = True
    listen: tuple[int | str, ...] = ()

    def validate(self, base: Path) -> Self:
        """Check rules between this table's keys; return self or a copy with resolved values."""
        return self

    def check(self, config: Config, name: str) -> None:
        """Check rules that span tables (a service that cannot run on Redis, an open sender).

        Raises SettingError with a whole key (`events.sender_token`).
        """

    # -- the rules several tables share, for `validate` ---------------------------------
    def check_paths(self, *keys: str) -> None:
        """Each key is a mount path (`/...`) and no two mount at the same place (trailing `/` aside)."""
        seen: dict[str, str] = {}
        for key in keys:
            value = getattr(self, key)
            if not value.startswith("/"):
                raise SettingError(key, f"must start with '/', not {value!r}")
            other = seen.setdefault(value.strip("/"), key)
            if other != key:
                raise SettingError(key, f"must differ from {other}")

    def check_at_least(self, minimum: float, *keys: str) -> None:
        for key in keys:
            if getattr(self, key) < minimum:
                raise SettingError(key, f"must be at least {minimum}")

    def check_not_negative(self, *keys: str, zero: str = "") -> None:
        """`zero` says what 0 means (`off`), for the message."""
        for key in keys:
            if getattr(self, key) < 0:
                raise SettingError(key, f"must not be negative (0: {zero})" if zero else "must not be negative")

    def check_secrets(self, *keys: str, absent: str) -> None:
        """A secret is left out or has characters; `absent` says what leaving it out does."""
        for key in keys:
            value = getattr(self, key)
            if value is not None and not value.strip():
                raise SettingError(key, f"must not be empty (leave it out {absent})")


@dataclass(frozen=True)
class WebSocketSettings(ServiceSettings):
    """The limits every WebSocket factory gets: sizes in bytes, times in seconds.

    A service redeclares a field to change its default. Where a protocol's own
    documented key already sets a limit (the gateway's `timeout` in ms, the
    events `ping_interval`), `implied_limits` derives the limit from it unless
    the table sets the limit itself.
    """

    max_frame: int = 0
    """Largest frame payload accepted; 0: as large as `max_message`."""
    max_message: int = 1048576
    """Largest message accepted; a larger one closes the connection with 1009."""
    open_timeout: float = 10.0
    """Seconds the opening handshake may take."""
    close_timeout: float = 3.0
    """Seconds to wait for the peer's close frame."""
    max_connections: int = 10000
    """Open and opening connections; over it the handshake gets 503."""
    allowed_origins: tuple[str, ...] = ("*",)
    """fnmatch patterns matched against the raw Origin header (`https://*.example.org`,
    `Espruino`); a request without Origin (a non-browser client) is always allowed."""
    keepalive: float = 30.0
    """Seconds between server pings; a peer silent for a whole interval after one is dropped; 0: off."""

    def implied_limits(self) -> dict[str, Any]:
        """Limits this protocol's own keys imply, applied where the table does not set them."""
        return {}

    def resolve_limits(self, given: frozenset[str]) -> Self:
        """Apply `implied_limits` to the limits not in `given` (the table's keys), then check them."""
        implied = {k: v for k, v in self.implied_limits().items() if k not in given}
        s = dataclasses.replace(self, **implied) if implied else self
        for key in ("max_message", "max_connections"):
            if getattr(s, key) < 1:
                raise SettingError(key, "must be at least 1")
        if s.max_frame < 0:
            raise SettingError("max_frame", "must be 0 (as max_message) or positive")
        for key in ("open_timeout", "close_timeout"):
            if getattr(s, key) <= 0:
                raise SettingError(key, "must be positive")
        if s.keepalive < 0:
            raise SettingError("keepalive", "must be 0 (off) or positive")
        if not s.allowed_origins:
            raise SettingError("allowed_origins", 'must name at least one pattern (["*"] allows any)')
        return s

    @property
    def frame_limit(self) -> int:
        """The largest frame payload accepted (`max_frame`, at most `max_message`)."""
        return min(self.max_frame, self.max_message) if self.max_frame else self.max_message

    def limits(self, **changes: Any) -> WebSocketSettings:
        """Just the limits, with `changes`: for a service with several endpoints of their own sizes."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(WebSocketSettings)}
        return WebSocketSettings(**{**fields, **changes})


@dataclass(frozen=True)
class ListenerSettings:
    endpoint: str
    name: str = ""
    certificate: Path | None = None
    private_key: Path | None = None
    ciphers: str = ""
    """OpenSSL cipher string for TLS 1.2; "" keeps freescore's forward-secret AEAD default."""
    metrics: bool | None = None
    """Serve /metrics here; None: only on a loopback listener."""
    status: bool = True

    @property
    def tls(self) -> bool:
        return self.certificate is not None

    @property
    def serves_metrics(self) -> bool:
        return is_loopback(self) if self.metrics is None else self.metrics

    @property
    def loopback(self) -> bool:
        return is_loopback(self)


def endpoint_options(endpoint: str) -> tuple[str, dict[str, str]]:
    """A Twisted endpoint string's kind and its `key=value` options (escaped colons `\\:` unescaped)."""
    kind, *parts = re.split(r"(?<!\\):", endpoint)  # Twisted escapes colons in values as "\:"
    options = {}
    for part in parts:
        key, eq, value = part.replace("\\:", ":").partition("=")
        if eq:
            options.setdefault(key, value)
    return kind, options


def is_loopback(listener: ListenerSettings) -> bool:
    """Does this endpoint accept connections from this host only?"""
    kind, options = endpoint_options(listener.endpoint)
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6") or "interface" not in options:
        return False
    value = options["interface"].strip("[]")
    if value == "localhost":
        return True
    try:
        return ipaddress.ip_address(value).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HubSettings:
    backend: str = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    # Redis backend only (docs/redis.md):
    node: str = ""  # unique name of this node; default host:pid
    presence_ttl: float = 15.0  # a crashed node's members disappear after this (s)
    timeout: float = 5.0  # connect and reply timeout (s)
    retry_min: float = 0.5  # reconnect backoff, first delay (s)
    retry_max: float = 10.0  # reconnect backoff, longest delay (s)

    def validate(self, base: Path) -> "HubSettings":
        if self.backend not in ("memory", "redis"):
            raise SettingError("backend", f"must be 'memory' or 'redis', not {self.backend!r}")
        for key in ("presence_ttl", "timeout", "retry_min", "retry_max"):
            if getattr(self, key) <= 0:
                raise SettingError(key, "must be positive")
        if self.retry_max < self.retry_min:
            raise SettingError("retry_max", "must be at least retry_min")
        if self.backend == "redis":
            from freescore.hub.redis_url import parse_url

            try:
                parse_url(self.url)
            except ValueError as e:
                raise SettingError("url", str(e)) from None
        return self


@dataclass(frozen=True)
class HttpSettings:
    cors_origin: str = "*"
    shutdown_timeout: float = 3.0
    max_body: int = 4 * 1024 * 1024
    header_timeout: float = 10.0  # a request's headers and body must be in within this of the accept or first byte (s)
    idle_timeout: float = 60.0  # a keep-alive connection with no request in flight closes after this (s)

    def validate(self, base: Path) -> "HttpSettings":
        for key in ("shutdown_timeout", "header_timeout", "idle_timeout"):
            if getattr(self, key) <= 0:
                raise SettingError(key, "must be positive")
        if self.max_body < 1024:
            raise SettingError("max_body", "must be at least 1024 bytes")
        return self


MAX_BATCH_PAUSE = 0.01
"""A longer pause would be latency anyone notices; the gain is in the first fraction of a millisecond."""


@dataclass(frozen=True)
class RuntimeSettings:
    """Process tuning (docs/runtime.md)."""

    gc_freeze: bool = True  # freeze what start-up built: later collections skip it
    gc_thresholds: tuple[int, ...] = (20000, 50, 100)  # [] leaves the interpreter's (700, 10, 10)
    gc_full_after_closes: int = 1000  # full pass after this many closes (and >= the open count); 0: never
    gc_full_interval: float = 600.0  # full pass at least this often (s); 0: never
    nofile: int = 0  # open-files soft limit raised to this at start (capped by the hard limit); 0: the hard limit
    batch_pause: float = 0.0005  # s to wait before each poll while pacing (freescore.pollpacing); 0: off
    batch_ready: int = 8  # pace while polls find this many ready sockets per batch_pause, on average

    def validate(self, base: Path) -> "RuntimeSettings":
        t = self.gc_thresholds
        if t and len(t) != 3:
            raise SettingError("gc_thresholds", "give three integers [young, middle, old], or [] for the defaults")
        if t and (t[0] < 100 or t[1] < 1 or t[2] < 1):
            raise SettingError("gc_thresholds", "young must be at least 100, middle and old at least 1")
        if self.gc_full_after_closes < 0:
            raise SettingError("gc_full_after_closes", "must be 0 (off) or positive")
        if self.gc_full_interval < 0:
            raise SettingError("gc_full_interval", "must be 0 (off) or positive")
        if self.nofile < 0:
            raise SettingError("nofile", "must be 0 (the hard limit) or positive")
        if not 0 <= self.batch_pause <= MAX_BATCH_PAUSE:
            raise SettingError("batch_pause", f"must be 0 (off) or up to {MAX_BATCH_PAUSE} s")
        if self.batch_ready < 1:
            raise SettingError("batch_ready", "must be at least 1")
        return self


@dataclass(frozen=True)
class Config:
    file: Path
    listeners: tuple[ListenerSettings, ...]
    hub: HubSettings = HubSettings()
    http: HttpSettings = HttpSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    services: Mapping[str, ServiceSettings] = field(default_factory=dict)

    def listeners_for(self, service: str) -> tuple[int, ...]:
        """Indexes of the listeners a service is mounted on."""
        wanted = self.services[service].listen
        if not wanted:
            return tuple(range(len(self.listeners)))
        indexes = []
        for ref in wanted:
            if isinstance(ref, int):
                indexes.append(ref)
            else:
                indexes.extend(i for i, lst in enumerate(self.listeners) if lst.name == ref)
        return tuple(sorted(set(indexes)))

    def has_own_listeners(self, service: str) -> bool:
        """No other enabled service is mounted on any listener of `service`: it may answer every path there."""
        mine = set(self.listeners_for(service))
        return not any(mine & set(self.listeners_for(other)) for other in self.services if other != service)
