"""The `[grassroots]` table (docs/grassroots.md)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from freescore.settings import Config, SettingError, WebSocketSettings


@dataclass(frozen=True)
class Settings(WebSocketSettings):
    data: Path = Path("var/freescore")
    """The data root (upstream's /usr/local/freescore/data); each tournament's rings are in
    `<data>/<db>/forms-grassroots/`."""
    cors_origin: str = "*"
    """`Access-Control-Allow-Origin` on every HTTP answer (upstream: the pages' `http://host:port`)."""
    path: str = "/grassroots"
    """The WebSocket's mount on a shared listener (`/grassroots/<db>/<ring>`)."""
    rest_path: str = "/grassroots/webservice"
    """The REST routes' mount on a shared listener; on a listener of its own (upstream's 3080) they
    answer at the root of the port, as the tablet expects."""
    sse_path: str = "/cgi-bin/freescore/forms/grassroots/update"
    """The display's and tablet's server-sent events, in place of upstream's CGI."""
    sse_heartbeat: float = 15.0
    """Seconds between SSE comment lines that keep idle streams open; 0: none."""
    sse_replay: int = 64
    """Events per ring kept for a reconnecting client's `Last-Event-ID`."""
    autopilot: tuple[float, ...] = (0.0, 9.0, 14.0, 18.0)
    """Seconds from a completed athlete to the scoreboard, leaderboard, next athlete and its scoreboard."""
    inactivity_timeout: float = 3600.0
    keepalive: float = 60.0
    create_data: bool = True

    def validate(self, base: Path) -> Settings:
        for key in ("path", "rest_path", "sse_path"):
            value = getattr(self, key)
            if not value.startswith("/") or value.endswith("/") or "//" in value:
                raise SettingError(key, "must start with / and not end with / (e.g. \"/grassroots\")")
        if len(self.autopilot) != 4 or any(t < 0 for t in self.autopilot) or list(self.autopilot) != sorted(
                self.autopilot):
            raise SettingError("autopilot", "must be 4 non-negative, non-decreasing times in seconds")
        if self.sse_heartbeat < 0:
            raise SettingError("sse_heartbeat", "must be 0 (off) or positive")
        if self.sse_replay < 1:
            raise SettingError("sse_replay", "must be at least 1")
        if self.inactivity_timeout <= 0:
            raise SettingError("inactivity_timeout", "must be positive")
        data = (self.data if self.data.is_absolute() else base / self.data).resolve()
        if data.exists() and not data.is_dir():
            raise SettingError("data", f"not a folder: {data}")
        if not self.create_data and not data.is_dir():
            raise SettingError("data", f"no such folder: {data}")
        return replace(self, data=data, autopilot=tuple(float(t) for t in self.autopilot))

    def check(self, config: Config, name: str) -> None:
        """Grassroots keeps its data in a local folder, so it cannot share a multi-node hub."""
        if config.hub.backend == "redis":
            raise SettingError("hub.backend", "grassroots is single-node (its data folder is local); "
                                              "use backend = \"memory\" or disable [grassroots]")
