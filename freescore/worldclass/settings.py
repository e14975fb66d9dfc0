"""The `[worldclass]` table (docs/worldclass.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freescore.poomsae.settings import FreeScoreSettings
from freescore.settings import SettingError


@dataclass(frozen=True)
class Settings(FreeScoreSettings):
    ping_interval: float = 30.0
    sessions: Path | None = None
    scoreboard_delay: float = 9.0
    leaderboard_delay: float = 12.0
    bracket_pace: float = 1.0
    """Multiplies the se/sbs autopilot pauses (their frames still say the nominal `delay`); tests use 0.01."""
    demo: bool = False
    """Create the demo tournament `<data>/demo` at start when it is absent (the embedded default turns it on)."""

    def validate(self, base: Path) -> "Settings":
        if self.ping_interval <= 0:
            raise SettingError("ping_interval", "must be positive")
        self.non_negative("scoreboard_delay", "leaderboard_delay", "bracket_pace")
        if self.sessions is not None and not self.sessions.is_dir():
            raise SettingError("sessions", f"no such folder: {self.sessions}")
        return super().validate(base)
