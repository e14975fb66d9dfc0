"""The `[fedmsg]` table (docs/fedmsg.md lists every key with its upstream name)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from freescore.settings import SettingError, WebSocketSettings

_TCP = re.compile(r"^tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+):(?P<port>\d{1,5}|\*)$")
_OTHER = re.compile(r"^(ipc|inproc|pgm|epgm)://\S+$")


def check_endpoint(endpoint: str, method: str, key: str) -> str:
    """Validate a ZeroMQ endpoint; return it as it will be used (`*` host -> 127.0.0.1 for connect)."""
    m = _TCP.match(endpoint)
    if m is None:
        if _OTHER.match(endpoint):
            return endpoint
        raise SettingError(key, f"{endpoint!r} is not a ZeroMQ endpoint like tcp://host:port or ipc:///path")
    host, port = m.group("host"), m.group("port")
    if port == "*":
        if method == "connect":
            raise SettingError(key, f"{endpoint!r}: a port of * only makes sense with subscribe_method = 'bind'")
    elif not 0 < int(port) < 65536:
        raise SettingError(key, f"{endpoint!r}: port out of range")
    if method == "bind" and host == "localhost":
        raise SettingError(key, f"{endpoint!r}: bind needs an address or *, not localhost")
    if method == "connect" and host == "*":
        return f"tcp://127.0.0.1:{port}"
    return endpoint


@dataclass(frozen=True)
class Settings(WebSocketSettings):
    """Upstream's keys (moksha's and fedmsg's) under the names docs/fedmsg.md maps."""

    path: str = "/fedmsg"
    """`/` serves every path of the service's own listeners, as upstream's port did."""
    endpoints: tuple[str, ...] = ()
    """ZeroMQ endpoints to SUB (fedmsg `endpoints` + `relay_outbound`)."""
    subscribe_method: str = "connect"
    strict: bool = False
    """Exact topic matching instead of prefixes (`zmq_strict`)."""
    client2server: bool = False
    """Browsers may publish topics other than the subscribe commands."""
    publish_path: str = "/fedmsg/publish"
    publish_token: str | None = None
    """Turns HTTP publish on and is its bearer token."""
    publish_endpoints: tuple[str, ...] = ()
    """ZeroMQ PUB, bound, for HTTP and browser publishes."""
    zmq_ingest: bool = True
    """Read `endpoints` on this node (one node only when several share a Redis hub)."""
    high_water_mark: int = 0
    """ZeroMQ's high-water mark of the SUB and PUB sockets; 0: unlimited."""
    tcp_keepalive: int = 1
    """TCP keepalive of the SUB sockets, as ZeroMQ's options: -1 the OS default, 0 off, 1 on."""
    tcp_keepalive_cnt: int = 3
    tcp_keepalive_idle: int = 60
    tcp_keepalive_intvl: int = 5
    reconnect_ivl: int = 100
    """ms before ZeroMQ reconnects a SUB socket, doubling up to `reconnect_ivl_max`."""
    reconnect_ivl_max: int = 1000
    max_patterns: int = 256
    max_pattern_length: int = 1024
    max_inbound_message: int = 65536
    """Largest browser message: fedmsg's name for `max_message`."""
    max_outbound_buffer: int = 8 * 1024 * 1024
    max_publish_body: int = 1024 * 1024
    nofile: int | None = None
    """Deprecated and ignored: the process raises the open-files limit once (`[runtime] nofile`)."""

    def validate(self, base: object) -> "Settings":
        self.check_paths("path", "publish_path")
        if self.subscribe_method not in ("connect", "bind"):
            raise SettingError("subscribe_method", f"must be 'connect' or 'bind', not {self.subscribe_method!r}")
        self.check_secrets("publish_token", absent="to turn HTTP publish off")
        endpoints = tuple(
            check_endpoint(e, self.subscribe_method, f"endpoints[{i}]") for i, e in enumerate(self.endpoints)
        )
        for i, e in enumerate(self.publish_endpoints):
            check_endpoint(e, "bind", f"publish_endpoints[{i}]")
        overlap = set(endpoints) & set(self.publish_endpoints)
        if overlap:
            raise SettingError("publish_endpoints", f"{sorted(overlap)[0]!r} is also in endpoints (double delivery)")
        self.check_at_least(1, "max_patterns", "max_pattern_length", "max_inbound_message", "max_outbound_buffer",
                            "max_publish_body")
        self.check_not_negative("high_water_mark", "tcp_keepalive_cnt", "tcp_keepalive_idle", "tcp_keepalive_intvl",
                                "reconnect_ivl", "reconnect_ivl_max")
        if self.tcp_keepalive not in (-1, 0, 1):
            raise SettingError("tcp_keepalive", "must be -1 (OS default), 0 or 1")
        return dataclasses.replace(self, endpoints=endpoints)

    def implied_limits(self) -> dict[str, Any]:
        return {"max_message": self.max_inbound_message}
