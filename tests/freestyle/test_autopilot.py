"""The autopilot plan (§8): arming, its two steps, cancellation by moving on, `autodisplay`."""

from __future__ import annotations

from freescore.freestyle import actions, autopilot
from tests.freestyle.test_actions import complete, division

REQUEST = {"type": "division", "action": "score", "judge": 2}


def armed(n: int = 3, athlete: int = 0, **extra: object) -> tuple:
    div = division(n, **extra)
    complete(div, athlete)
    return div, autopilot.arm(div, athlete, REQUEST)


def test_arms_once_when_the_athlete_completes_and_shows_it_at_once() -> None:
    div = division(3)
    div.current = 0
    actions.score(div, 0, {"technical": {}, "presentation": {}})
    assert autopilot.arm(div, 0, REQUEST) is None
    complete(div, 0)
    pilot = autopilot.arm(div, 0, REQUEST)
    assert pilot is not None and div.data["autopilot"] == "on"
    assert autopilot.arm(div, 0, REQUEST) is None  # already on


def test_leaderboard_then_next_athlete_with_upstreams_delays() -> None:
    div, pilot = armed()
    changed, pilot2, delay = autopilot.run(div, pilot, autopilot.Delays())
    assert changed and div.state == "display" and delay == 14.0 and pilot2.step == autopilot.NEXT
    assert autopilot.valid(div, pilot2)
    changed, last, _ = autopilot.run(div, pilot2, autopilot.Delays())
    assert changed and last is None and (div.current, div.state, div.autopilot) == (1, "score", False)


def test_after_the_last_finalist_nothing_moves_and_the_leaderboard_stays() -> None:
    div, pilot = armed(3, 2, current=2)
    _, pilot, _ = autopilot.run(div, pilot, autopilot.Delays())
    autopilot.run(div, pilot, autopilot.Delays())
    assert (div.current, div.state, div.autopilot) == (2, "display", False)


def test_a_manual_move_or_switching_it_off_invalidates_the_pilot() -> None:
    """§17.1: upstream's steps would write their stale copy over the move."""
    div, pilot = armed()
    actions.athlete_step(div, +1)
    assert not autopilot.valid(div, pilot)
    div, pilot = armed()
    div.autopilot = False
    assert not autopilot.valid(div, pilot) and not autopilot.valid(None, pilot)


def test_autodisplay_shows_the_leaderboard_every_cth_athlete_and_for_the_last() -> None:
    div, pilot = armed(5, 0, autodisplay=2)
    changed, nxt, delay = autopilot.run(div, pilot, autopilot.Delays())
    assert not changed and delay == autopilot.SKIP_PAUSE and div.state == "score"
    div.current = 1
    assert autopilot.leaderboard_due(div)
    div.current = 4
    assert autopilot.leaderboard_due(div)
