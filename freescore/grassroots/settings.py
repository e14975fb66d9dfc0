"""The `[grassroots]` table (docs/grassroots.md)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from freescore.poomsae.settings import FreeScoreSettings
from freescore.settings import SettingError


@dataclass(frozen=True)
class Settings(FreeScoreSettings):
    rest_path: str = "/grassroots/webservice"
    """The REST routes' mount on a shared listener; on a listener of its own (upstream's 3080) they
    answer at the root of the port, as the tablet expects."""
    sse_path: str = "/cgi-bin/freescore/forms/grassroots/update"
    """The display's and tablet's server-sent events, in place of upstream's CGI."""
    sse_heartbeat: float = 15.0
    """Seconds between SSE comment lines that keep idle streams open; must be positive: a write is
    how a stream whose display vanished is noticed (and its slot freed), SSE has no other timeout."""
    sse_replay: int = 64
    """Events per ring kept for a reconnecting client's `Last-Event-ID`."""
    sse_max_unsent: int = 1048576
    """Bytes a stream may leave unread before it is dropped (a display that stopped reading)."""
    autopilot: tuple[float, ...] = (0.0, 9.0, 14.0, 18.0)
    """Seconds from a completed athlete to the scoreboard, leaderboard, next athlete and its scoreboard."""

    def validate(self, base: Path) -> Settings:
        for key in ("rest_path", "sse_path"):
            value = getattr(self, key)
            if not value.startswith("/") or value.endswith("/") or "//" in value:
                raise SettingError(key, "must start with / and not end with / (e.g. \"/grassroots\")")
        times = self.autopilot
        if len(times) != 4 or any(t < 0 for t in times) or list(times) != sorted(times):
            raise SettingError("autopilot", "must be 4 non-negative, non-decreasing times in seconds")
        if self.sse_heartbeat <= 0:
            raise SettingError("sse_heartbeat", "must be positive: the heartbeat is how an SSE stream whose "
                                                "display vanished is noticed and its slot freed")
        if self.sse_max_unsent < 1024:
            raise SettingError("sse_max_unsent", "must be at least 1024 bytes")
        if self.sse_replay < 1:
            raise SettingError("sse_replay", "must be at least 1")
        return replace(super().validate(base), autopilot=tuple(float(t) for t in times))
