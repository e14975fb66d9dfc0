"""The `[clicker]` table (docs/clicker.md)."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freescore.clicker.logic import ID_SPACE
from freescore.settings import SettingError, WebSocketSettings


@dataclass(frozen=True)
class Settings(WebSocketSettings):
    path: str = "/ws"
    """WebSocket mount path; the devices use exactly /ws."""
    state: Path = Path("var/clicker")
    """Folder for registry.json (secret -> id), created at start; relative to the config file."""
    ping_interval: float = 30.0
    """Seconds between server pings: the clicker's name for `keepalive` (0: off)."""
    max_ids: int = 64
    """Ids kept from one SUBSCRIBE/LISTEN."""
    max_message: int = 65536
    max_unsent: int = 1048576
    """Bytes a connection may leave unread (a listener that stopped reading its relays) before it
    is closed with 1013; 0: off (it then grows until the keepalive drops it)."""
    close_timeout: float = 1.0
    """Seconds to wait for a close frame echo; the devices never send one."""
    presence_check: float = 10.0
    """Seconds between checks of the hub's presence for devices of nodes that died silently (0: off)."""
    max_devices: int = 100_000
    """File registry: at this many ids, a REGISTER needing a new one is ignored (known secrets still work)."""
    register_rate: float = 10.0
    """New ids per minute per remote address; more REGISTERs needing one are ignored (0: off)."""
    register_burst: int = 20
    """New ids an address may take at once before register_rate applies."""
    register_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    """Networks not budgeted: behind a local reverse proxy every device has the proxy's address."""
    registry: str = "auto"
    """Where secret -> id lives: "file" (in `state`), "hub" (the hub's shared store), "auto" (hub with Redis)."""

    def validate(self, base: Path) -> Settings:
        if not self.path.startswith("/"):
            raise SettingError("path", f"must start with '/', not {self.path!r}")
        if self.ping_interval < 0:
            raise SettingError("ping_interval", "must be 0 (off) or positive")
        self.check_not_negative("max_unsent", zero="off")
        if self.presence_check < 0:
            raise SettingError("presence_check", "must be 0 (off) or positive")
        if self.max_ids < 1:
            raise SettingError("max_ids", "must be at least 1")
        if not 1 <= self.max_devices <= ID_SPACE:
            raise SettingError("max_devices", f"must be between 1 and {ID_SPACE}")
        if self.register_rate < 0:
            raise SettingError("register_rate", "must be 0 (off) or positive")
        if self.register_burst < 1:
            raise SettingError("register_burst", "must be at least 1")
        for net in self.register_exempt:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise SettingError("register_exempt", f"not an address or network: {net!r}") from None
        if self.registry not in ("auto", "file", "hub"):
            raise SettingError("registry", f"must be 'auto', 'file' or 'hub', not {self.registry!r}")
        if not self.state.is_absolute():
            return dataclasses.replace(self, state=(base / self.state).resolve())
        return self

    def implied_limits(self) -> dict[str, Any]:
        return {"keepalive": self.ping_interval}
