"""The `[gateway]` table, the seed's environment overrides and the start-up rules."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freescore.gateway import wire
from freescore.settings import Config, SettingError, WebSocketSettings

LOG_LEVELS = ("error", "warn", "info", "debug")
HOOK_TIMEOUT_RANGE = (50, 29000)
MAX_TIMEOUT_MS = 2**31


@dataclass(frozen=True)
class Settings(WebSocketSettings):
    """Upstream's keys keep their names and units: `timeout` (ms, WS_TIMEOUT) sets the keepalive
    (a ping every timeout/2, at least 1 s), `hook_timeout` the opening handshake's (plus 5 s)."""

    # -- the backend and its hooks (the seed's environment overrides these four) ----------
    api_uri: str = ""
    """Backend base URL; required (here or in API_URI / TARGET_ADDRESS)."""
    ws_hostname: str = ""
    """Base of each `ws_uri`; empty: the first push listener's address + push_path."""
    timeout: int = 30000
    """ms (WS_TIMEOUT): the connect hook's `timeout` and, halved, the keepalive."""
    log_level: str = "info"
    close_retry_delays: tuple[float, ...] = (1.0, 2.0)
    """Pauses between DELETE hook attempts (3 attempts in all by default)."""
    hook_timeout: int = 10000
    """ms each hook may take (clamped to 50..29000); a slower connect hook refuses the client 504."""
    hook_pool_size: int = 128
    """Persistent connections kept to the backend."""
    max_backlog: int = 268435456
    """Bytes of client messages waiting for (or in flight to) the backend, all connections together,
    beyond which the connection whose message crosses it is closed 1013 as a too-slow backend; 0: off."""

    # -- the push API ------------------------------------------------------------------
    push_path: str = "/@connections"
    push_token: str | None = None
    push_hmac_secret: str | None = None
    push_listen: tuple[int | str, ...] = ()
    """Listeners (index or name) that serve the push API; empty: all of the gateway's."""
    push_access_log: bool = False
    """Write an HTTP access log line per push API request (a third of a push's CPU)."""
    max_outbound_buffer: int = 1048576
    """Bytes waiting to be written to one client beyond which a push gets 429."""
    push_allow: tuple[str, ...] = ()
    """Client networks (CIDR) allowed to call the push API; empty: any."""

    # -- the clients' endpoint: the kit's limits with the gateway's defaults, and its timers ----
    path: str = "/gateway"
    auth_query_param: str = "token"
    """The query parameter a browser's credential may come in when it can set no header."""
    trusted_proxies: tuple[str, ...] = ()
    """Networks whose X-Forwarded-For is believed for GET's sourceIp."""
    max_frame: int = 32768
    """Largest inbound frame payload; pushes go out in frames of at most this size."""
    max_message: int = 131072
    close_timeout: float = 5.0
    idle_timeout: float = 600.0
    """Seconds without a data message either way before a 1001 close; 0: off."""
    max_duration: float = 7200.0
    """Seconds a connection may last before a 1001 close, however busy; 0: off."""

    def validate(self, base: Path) -> Settings:
        s = apply_environment(self, os.environ)
        if not s.api_uri:
            raise SettingError("api_uri", "is required (or set API_URI in the environment)")
        api = wire.with_scheme(s.api_uri)
        if not wire.valid_http_url(api):
            raise SettingError("api_uri", f"must be an http(s) URL, not {s.api_uri!r}")
        ws_host = wire.with_scheme(s.ws_hostname) if s.ws_hostname else ""
        if ws_host and not wire.valid_http_url(ws_host):
            raise SettingError("ws_hostname", f"must be an http(s) URL, not {s.ws_hostname!r}")
        s.check_paths("path", "push_path")
        if not 1 <= s.timeout <= MAX_TIMEOUT_MS:
            raise SettingError("timeout", f"must be 1..{MAX_TIMEOUT_MS} ms")
        hook_timeout = min(max(s.hook_timeout, HOOK_TIMEOUT_RANGE[0]), HOOK_TIMEOUT_RANGE[1])
        s.check_at_least(1, "max_frame", "max_message", "max_connections", "hook_pool_size", "max_outbound_buffer")
        s.check_not_negative("idle_timeout", "max_duration", "max_backlog", zero="off")
        if 0 < s.max_backlog < s.max_message:
            raise SettingError("max_backlog", f"must be 0 (off) or at least max_message ({s.max_message}), "
                                              "so a message the settings allow fits")
        if any(d < 0 for d in s.close_retry_delays):
            raise SettingError("close_retry_delays", "must not be negative")
        if s.log_level not in LOG_LEVELS:
            raise SettingError("log_level", f"must be one of {', '.join(LOG_LEVELS)}")
        s.check_secrets("push_token", "push_hmac_secret", absent="instead")
        for key in ("push_allow", "trusted_proxies"):
            for i, net in enumerate(getattr(s, key)):
                try:
                    ipaddress.ip_network(net, strict=False)
                except ValueError:
                    raise SettingError(f"{key}[{i}]", f"not a network: {net!r}") from None
        return dataclasses.replace(s, api_uri=api, ws_hostname=ws_host, hook_timeout=hook_timeout)

    def implied_limits(self) -> dict[str, Any]:
        return {"keepalive": max(1.0, self.timeout / 2000.0), "open_timeout": self.hook_timeout / 1000.0 + 5.0}

    def check(self, config: Config, name: str) -> None:
        """Without push_token or push_hmac_secret the push API is open: allow that on loopback listeners only."""
        indexes = push_listeners(config, name)
        if self.push_token is None and self.push_hmac_secret is None:
            open_ones = [i for i in indexes if not config.listeners[i].loopback]
            if open_ones:
                raise SettingError(
                    f"{name}.push_listen",
                    f"the push API has no push_token or push_hmac_secret, so it may only be on loopback "
                    f"listeners; listener {open_ones[0]} is not",
                )

    def networks(self, key: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in getattr(self, key))


def apply_environment(s: Settings, environ: Mapping[str, str]) -> Settings:
    """The seed's variables win over the file: API_URI, WS_HOSTNAME, WS_TIMEOUT, LOG_LEVEL."""
    changes: dict[str, object] = {}
    api = environ.get("API_URI") or environ.get("TARGET_ADDRESS")
    if api:
        changes["api_uri"] = api
    host = environ.get("WS_HOSTNAME") or environ.get("LOCAL_ADDRESS")
    if host:
        changes["ws_hostname"] = host
    timeout = environ.get("WS_TIMEOUT")
    if timeout:
        try:
            changes["timeout"] = int(timeout)
        except ValueError:
            raise SettingError("timeout", f"WS_TIMEOUT must be milliseconds, not {timeout!r}") from None
    level = environ.get("LOG_LEVEL")
    if level:
        level = level.strip().lower()
        changes["log_level"] = "warn" if level == "warning" else level
    return dataclasses.replace(s, **changes) if changes else s


def push_listeners(config: Config, name: str = "gateway") -> tuple[int, ...]:
    """Indexes of the listeners that serve the push API."""
    settings = config.services[name]
    assert isinstance(settings, Settings)
    mine = config.listeners_for(name)
    if not settings.push_listen:
        return mine
    names = {lst.name: i for i, lst in enumerate(config.listeners) if lst.name}
    chosen = []
    for i, ref in enumerate(settings.push_listen):
        index = ref if isinstance(ref, int) else names.get(ref)
        if index is None or index not in mine:
            raise SettingError(f"{name}.push_listen[{i}]", f"{ref!r} is not a listener of the gateway")
        chosen.append(index)
    return tuple(sorted(set(chosen)))
