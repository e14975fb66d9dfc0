"""The `[freestyle]` table (docs/freestyle.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freescore.poomsae.settings import FreeScoreSettings


@dataclass(frozen=True)
class Settings(FreeScoreSettings):
    leaderboard_delay: float = 9.0
    """Autopilot: the completing score -> the leaderboard (s)."""
    next_delay: float = 12.0
    """Autopilot: the leaderboard -> the next athlete (s), after `brief_delay`."""
    brief_delay: float = 2.0
    """Autopilot: upstream's two one-second pauses before the next athlete (s)."""

    def validate(self, base: Path) -> "Settings":
        self.non_negative("leaderboard_delay", "next_delay", "brief_delay")
        return super().validate(base)
