"""The `[worldclass]` table (docs/worldclass.md)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from freescore.settings import Config, SettingError, WebSocketSettings


@dataclass(frozen=True)
class Settings(WebSocketSettings):
    data: Path = Path("var/worldclass")
    """The data root (upstream's /usr/local/freescore/data); each tournament db is a folder in it."""
    cors_origin: str = "*"
    ping_interval: float = 30.0
    sessions: Path | None = None
    scoreboard_delay: float = 9.0
    leaderboard_delay: float = 12.0
    inactivity_timeout: float = 3600.0
    keepalive: float = 60.0
    """WebSocket-level pings (answered by every browser) that drop half-open connections; 0 = off.
    Independent of the protocol's JSON pings (`ping_interval`)."""
    create_data: bool = True
    create_tournaments: bool = False
    """Accept connections for a `<db>` with no folder under the data root (its folder is made on
    the first write); off, such an upgrade is refused with 404, so URLs cannot grow memory or disk."""
    max_message: int = 1048576
    demo: bool = False
    """Create the demo tournament `<data>/demo` at start when it is absent (the embedded default turns it on)."""

    def validate(self, base: Path) -> "Settings":
        for key in ("ping_interval", "inactivity_timeout"):
            if getattr(self, key) <= 0:
                raise SettingError(key, "must be positive")
        for key in ("scoreboard_delay", "leaderboard_delay"):
            if getattr(self, key) < 0:
                raise SettingError(key, "must not be negative")
        if self.max_message < 1024:
            raise SettingError("max_message", "must be at least 1024")
        data = (self.data if self.data.is_absolute() else base / self.data).resolve()
        if not self.create_data and not data.is_dir():
            raise SettingError("data", f"no such folder: {data}")
        if data.exists() and not data.is_dir():
            raise SettingError("data", f"not a folder: {data}")
        if self.sessions is not None and not self.sessions.is_dir():
            raise SettingError("sessions", f"no such folder: {self.sessions}")
        return replace(self, data=data)

    def check(self, config: Config, name: str) -> None:
        """Worldclass keeps its data in a local folder, so it cannot share a multi-node hub."""
        if config.hub.backend == "redis":
            raise SettingError(
                "hub.backend",
                "worldclass is single-node (its data directory is local); use backend = \"memory\" "
                "or disable [worldclass]",
            )
