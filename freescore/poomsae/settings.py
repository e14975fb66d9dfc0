"""What every FreeScore service table has (pure): the data root, CORS, tournaments, idle time, limits.

The FreeScore services keep their tournaments in a local data folder (upstream's
/usr/local/freescore/data; each service its own `forms-<service>` folder in a
tournament), so each table names that root and none can run on a multi-node hub.
A service's `Settings` extends `FreeScoreSettings` with its own keys and
checks them after `super().validate`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

from freescore.settings import Config, SettingError, WebSocketSettings


@dataclass(frozen=True)
class FreeScoreSettings(WebSocketSettings):
    data: Path = Path("var/freescore")
    """The data root (upstream's /usr/local/freescore/data); each tournament db is a folder in it.
    One default for every FreeScore service: each keeps its own `<db>/forms-<service>` folder in it,
    so worldclass, freestyle and grassroots share a root as upstream's services do."""
    cors_origin: str = "*"
    inactivity_timeout: float = 3600.0
    keepalive: float = 60.0
    """WebSocket-level pings (answered by every browser) that drop half-open connections; 0 = off."""
    create_data: bool = True
    create_tournaments: bool = False
    """Accept connections for a `<db>` with no folder under the data root (its folder is made on
    the first write); off, such an upgrade is refused with 404, so URLs cannot grow memory or disk."""
    max_message: int = 1048576
    max_unsent: int = 1048576
    """Bytes a WebSocket may leave unread behind a broadcast before it is closed with 1013 (a
    display that stopped reading); 0 = off (it then grows until the keepalive drops it)."""

    def validate(self, base: Path) -> Self:
        if self.inactivity_timeout <= 0:
            raise SettingError("inactivity_timeout", "must be positive")
        if self.max_message < 1024:
            raise SettingError("max_message", "must be at least 1024")
        self.check_not_negative("max_unsent", zero="off")
        data = (self.data if self.data.is_absolute() else base / self.data).resolve()
        if not self.create_data and not data.is_dir():
            raise SettingError("data", f"no such folder: {data}")
        if data.exists() and not data.is_dir():
            raise SettingError("data", f"not a folder: {data}")
        if not data.exists():  # made at start: say now, in one line, when it cannot be (a read-only disk)
            parent = next(p for p in data.parents if p.exists())
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                raise SettingError("data", f"cannot be created: {parent} is not a writable folder")
        return replace(self, data=data)

    def non_negative(self, *keys: str) -> None:
        """Delays (autopilot steps): 0 is allowed, below is not."""
        for key in keys:
            if getattr(self, key) < 0:
                raise SettingError(key, "must not be negative")

    def check(self, config: Config, name: str) -> None:
        """The data directory is local, so a FreeScore service cannot share a multi-node hub."""
        if config.hub.backend == "redis":
            raise SettingError(
                "hub.backend",
                f"{name} is single-node (its data directory is local); use backend = \"memory\" "
                f"or disable [{name}]",
            )
