"""Requests on a division whose current round is se or sbs, and their autopilot (methods addendum §5-§7).

Importing this module routes the affected `handlers.HANDLERS` entries: a request on a bracket
round goes to the function here, any other to the cutoff handler it wraps. The changes to the
division are `elimination`'s; this module adds what a handler adds: validation, the autopilot
token, the save and the effects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from freescore.effects import Effects
from freescore.worldclass import bracket, elimination, handlers, scoring, wire
from freescore.worldclass.bracket import BracketError, Snapshot
from freescore.worldclass.handlers import HANDLERS, Context
from freescore.worldclass.model import AutopilotToken, Loaded, RingState
from freescore.worldclass.wire import RequestError, Update

Handler = Callable[[Context], Effects]


@dataclass(frozen=True)
class BracketStep:
    """The payload of the ring's autopilot timer for an se/sbs sequence: the plan and where it is."""

    token: AutopilotToken
    snap: Snapshot
    steps: tuple[str, ...]
    index: int
    position: tuple[str, int, int]

    @property
    def name(self) -> str:
        return self.steps[self.index]


def _route(name: str) -> Callable[[Callable[[Context, RingState, Loaded], Effects]], None]:
    """Register `fn` for bracket rounds in front of the cutoff handler `name`."""
    cutoff: Handler | None = HANDLERS.get(name)

    def register(fn: Callable[[Context, RingState, Loaded], Effects]) -> None:
        def run(ctx: Context) -> Effects:
            found = _bracket_division(ctx)
            if found is None:
                if cutoff is None:
                    raise RequestError(f"'{ctx.request['action']}' needs the single-elimination or side-by-side "
                                       "method")
                return cutoff(ctx)
            try:
                return fn(ctx, *found)
            except BracketError as e:
                raise RequestError(str(e)) from None
        HANDLERS[name] = run
    return register


def _bracket_division(ctx: Context) -> tuple[RingState, Loaded] | None:
    try:
        state, loaded = ctx.division()
    except RequestError:
        return None
    return (state, loaded) if elimination.in_bracket(loaded.div) else None


def _manual(state: RingState, loaded: Loaded) -> None:
    """A manual action: the ring's sequence is cancelled and autopilot is off (no key, as upstream)."""
    state.autopilot_gen += 1
    elimination.switch_off(loaded.div)


def _update(ctx: Context, state: RingState, loaded: Loaded, request: dict[str, Any] | None = None) -> Any:
    return ctx.broadcast(Update(ctx.request["type"], "division", state.division_json(loaded),
                                ctx.request if request is None else request))


def _armed(ctx: Context, state: RingState, loaded: Loaded, description: str, bye: bool = False,
           request: dict[str, Any] | None = None) -> Effects:
    """Autopilot on, written with the change; its own update first, then the plan's first step."""
    div = loaded.div
    state.autopilot_gen += 1
    div.autopilot = "on"
    ctx.save(state, loaded, description)
    snap = elimination.snapshot(div, loaded.results, bye)
    steps = tuple(bracket.autopilot_steps(snap))
    token = AutopilotToken(state.autopilot_gen, div.name, div.round, div.current, div.form, ctx.request)
    effects = Effects([_update(ctx, state, loaded, request)])
    effects.arm(ctx.autopilot, 0, BracketStep(token, snap, steps, 0, (div.round, div.current, div.form)))
    return effects


def _judge(div: Any, value: Any) -> int:
    if value is None:
        raise RequestError("Missing field 'judge'")
    return wire.to_int(value, "judge", 0, div.judges - 1)


@_route("division_score")
def division_score(ctx: Context, state: RingState, loaded: Loaded) -> Effects:
    req, div = ctx.request, loaded.div
    score = wire.require(req, "score", dict)
    judge = _judge(div, req.get("judge", score.get("judge")))
    if elimination.method(div) == "sbs":
        try:
            elimination.sbs_score(div, judge, score)
        except BracketError as e:  # upstream's text, to the sender only, without the request
            return Effects([ctx.reply({"error": str(e)})])
    else:
        marks = elimination.marks(score)
        handlers._current_form(loaded).judges[judge] = marks
    form = handlers._current_form(loaded)
    if scoring.form_result(form, div.judges).complete and state.ring != "staging":
        effects = Effects()
        effects.cancel(ctx.autopilot)
        effects += _armed(ctx, state, loaded, f"judge {judge} score")
        return effects
    ctx.save(state, loaded, f"judge {judge} score")
    return Effects([_update(ctx, state, loaded)])


@_route("division_award_min_score")
def division_award_min_score(ctx: Context, state: RingState, loaded: Loaded) -> Effects:
    div = loaded.div
    athlete = elimination.award_min_score(div, ctx.request.get("athlete_id"))
    results = scoring.compute(div)
    effects = Effects()
    effects.cancel(ctx.autopilot)
    description = f"award min score {athlete}"
    if elimination.match_is_complete(div, results, elimination.current_match(div)) and state.ring != "staging":
        return Effects([*effects, *_armed(ctx, state, loaded, description, True, dict(ctx.request, bye=1))])
    state.autopilot_gen += 1
    ctx.save(state, loaded, description)
    effects.append(_update(ctx, state, loaded))
    return effects


@_route("division_draw")
def division_draw(ctx: Context, state: RingState, loaded: Loaded) -> Effects:
    _manual(state, loaded)
    elimination.draw(loaded.div, wire.require(ctx.request, "draw", dict))
    ctx.save(state, loaded, "draw")
    return ctx.manual(_update(ctx, state, loaded))


@_route("division_draw_select_age")
def division_draw_select_age(ctx: Context, state: RingState, loaded: Loaded) -> Effects:
    divid = ctx.request.get("divid")
    if divid is not None and divid != loaded.div.name:
        state, loaded = ctx.division(divid)
    _manual(state, loaded)
    elimination.draw_select_age(loaded.div, wire.require(ctx.request, "age"))
    ctx.save(state, loaded, "draw select age")
    return ctx.manual(_update(ctx, state, loaded))


def _manual_move(name: str, move: Callable[[Any, scoring.Results], None]) -> None:
    @_route(name)
    def run(ctx: Context, state: RingState, loaded: Loaded) -> Effects:
        _manual(state, loaded)
        move(loaded.div, loaded.results)
        ctx.save(state, loaded, name.replace("_", " "))
        return ctx.manual(_update(ctx, state, loaded))


_manual_move("division_display", elimination.display)
_manual_move("division_athlete_next", elimination.athlete_next)
_manual_move("division_athlete_prev", lambda div, _results: elimination.athlete_prev(div))


@_route("division_navigate")
def division_navigate(ctx: Context, state: RingState, loaded: Loaded) -> Effects:
    target = ctx.request.get("target")
    if not isinstance(target, dict) or target.get("destination") != "athlete":
        return _cutoff_navigate(ctx)
    div = loaded.div
    index = wire.to_int(target.get("index"), "index", 0, max(len(div.athletes) - 1, 0))
    if index not in div.order.get(div.round, []):
        raise RequestError(f"Invalid index '{index}'")
    _manual(state, loaded)
    elimination.navigate_athlete(div, index)
    ctx.save(state, loaded, "navigate athlete")
    return ctx.manual(_update(ctx, state, loaded))


_cutoff_navigate: Handler = handlers.division_navigate


@_route("division_clear_judge_score")
def division_clear_judge_score(ctx: Context, state: RingState, loaded: Loaded) -> Effects:
    judge = _judge(loaded.div, wire.require(ctx.request, "judge"))
    _manual(state, loaded)
    elimination.clear_judge_score(loaded.div, judge, ctx.request.get("index"))
    ctx.save(state, loaded, f"clear judge {judge} score")
    return ctx.manual(_update(ctx, state, loaded))


@_route("division_award_punitive")
def division_award_punitive(ctx: Context, state: RingState, loaded: Loaded) -> Effects:
    """As cutoff, then on to the next incomplete athlete; never arms, and leaves the flag as it is."""
    decision = wire.require(ctx.request, "decision", str)
    if decision not in ("withdraw", "disqualify", "clear"):
        raise RequestError(f"Invalid decision '{decision}'")
    div = loaded.div
    athlete = ctx.request.get("athlete_id")
    index = div.current if athlete is None else wire.to_int(athlete, "athlete_id", 0, max(len(div.athletes) - 1, 0))
    if index not in div.order.get(div.round, []):
        raise RequestError(f"Invalid athlete_id '{index}'")
    state.autopilot_gen += 1
    forms = div.form_scores(index, div.round)
    forms[min(div.form, len(forms) - 1)].decision = {} if decision == "clear" else {decision: 1}
    if decision != "clear":
        elimination.after_punitive(div, scoring.compute(div))
    ctx.save(state, loaded, f"award punitive {decision}")
    return ctx.manual(_update(ctx, state, loaded))


# -- autopilot ----------------------------------------------------------------------------

def autopilot_step(state: RingState, step: BracketStep, now: float) -> tuple[Update | None, BracketStep | None]:
    """Run one step: its update and the following step (None: done). Stale steps do nothing.

    Every manual action moves `autopilot_gen` on, so a sequence never outlives one (a deliberate
    difference: upstream's sequence runs on). SE switches itself off after the division's last step.
    """
    token = step.token
    loaded = state.divisions.get(token.divid)
    if state.autopilot_gen != token.gen or loaded is None:
        return None, None
    div = loaded.div
    if (div.round, div.current, div.form) != step.position or div.autopilot != "on":
        return None, None
    elimination.run_step(div, step.snap, step.name)
    last = step.index == len(step.steps) - 1
    if last and step.snap.method == "se" and bracket.division_over(step.snap):
        elimination.switch_off(div)
    state.save(loaded, f"autopilot {step.name}", now)
    request = {"type": "autopilot", "action": step.name, "delay": bracket.STEP_DELAY[step.name]}
    update = Update("autopilot", "division", state.division_json(loaded), request)
    if last:
        return update, None
    return update, replace(step, index=step.index + 1, position=(div.round, div.current, div.form))


def pause_after(step: BracketStep) -> float:
    """Seconds from a step to the next one: its `delay` (§7)."""
    return float(bracket.STEP_DELAY[step.name])
