"""The freestyle autopilot as a plan (pure, spec §8): leaderboard after the last score, then the next athlete.

Upstream's steps write a stale copy of the division over anything done in the
meantime (§17.1). Here a `Pilot` remembers the position it was armed for; a
step whose division has moved on, or whose `autopilot` key is gone, does
nothing, and the caller cancels the timer on every manual action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from freescore.freestyle import actions
from freescore.freestyle.division import Division

LEADERBOARD = "leaderboard"
NEXT = "next"
SKIP_PAUSE = 1.0
"""Upstream's pause when the leaderboard step is skipped (`autodisplay` > 1)."""


@dataclass(frozen=True)
class Delays:
    leaderboard: float = 9.0
    next: float = 12.0
    brief: float = 2.0
    """Upstream's two one-second pauses before the next athlete."""


@dataclass(frozen=True)
class Pilot:
    """One armed autopilot: the division and position it runs for, the request its frames echo, its next step."""

    divid: str
    round: str
    current: int
    request: dict[str, Any]
    step: str = LEADERBOARD


def arm(div: Division, athlete: int, request: dict[str, Any]) -> Pilot | None:
    """After a score or a decision: arm when `athlete` is now complete and no autopilot runs yet.

    Sets the `autopilot` key, so the update about to be sent already shows it.
    """
    if div.autopilot or not div.complete(athlete):
        return None
    div.autopilot = True
    return Pilot(div.name, div.round, div.current, request)


def valid(div: Division | None, pilot: Pilot) -> bool:
    """The division is still where the pilot was armed, and nobody switched the autopilot off."""
    return (div is not None and div.autopilot and div.name == pilot.divid
            and (div.round, div.current) == (pilot.round, pilot.current))


def leaderboard_due(div: Division) -> bool:
    """Every athlete with the default `autodisplay` of 1; else every c-th and the round's last."""
    cycle = div.data.get("autodisplay", 1)
    cycle = cycle if isinstance(cycle, int) and not isinstance(cycle, bool) else 1
    order = div.order()
    if cycle <= 1 or div.current not in order:
        return True
    position = order.index(div.current) + 1
    return position % cycle == 0 or position == len(order)


def run(div: Division, pilot: Pilot, delays: Delays) -> tuple[bool, Pilot | None, float]:
    """Run `pilot`'s step: (division changed: write and send, the step after it or None, its delay)."""
    if pilot.step == LEADERBOARD:
        if not leaderboard_due(div):
            return False, Pilot(pilot.divid, pilot.round, pilot.current, pilot.request, NEXT), SKIP_PAUSE
        div.state = "display"
        div.recompute()
        return True, Pilot(pilot.divid, pilot.round, pilot.current, pilot.request, NEXT), delays.next + delays.brief
    div.autopilot = False
    if not actions.is_last(div):
        actions.athlete_step(div, +1)
    elif div.round != "finals":
        actions.round_next(div)
    else:
        div.recompute()  # the finals' leaderboard stays up
    return True, None, 0.0
