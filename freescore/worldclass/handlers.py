"""Worldclass request handlers: one function per `type_action`, registered in HANDLERS.

Each takes a Context (the tournament, the requester's connection id and client, the annotated
request, the ring's clients and the time), changes the ring model through RingState.save /
save_progress, and returns Effects (freescore.effects): `Send` to the requester, `Broadcast` of a
`wire.Update` to a ring group, `Cancel`/`Arm` of the ring's autopilot timer (keyed by the ring
group). Bad input raises RequestError before anything changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from freescore.effects import Broadcast, Cancel, ConnId, Effect, Effects, Send
from freescore.worldclass import bracket, scoring, wire
from freescore.worldclass.divfile import (
    PENALTY_KEYS,
    Athlete,
    Division,
    DivisionFormatError,
    Score,
    pad,
    parse_division,
    parse_forms,
)
from freescore.worldclass.model import (
    WRITE_KEYS,
    AutopilotStep,
    AutopilotToken,
    Client,
    Loaded,
    RingState,
    Tournament,
)
from freescore.worldclass.wire import RequestError, Ring, Update


@dataclass
class Context:
    t: Tournament
    client: Client
    request: dict[str, Any]
    clients: list[Client]
    now: float
    conn: ConnId = ConnId("")

    @property
    def ring(self) -> RingState:
        return self.t.ring(self.client.route.ring)

    def division(self, divid: Any = None, staging_too: bool = False) -> tuple[RingState, Loaded]:
        state = self.ring
        if divid is None:
            divid = state.current_divid()
            if divid is None:
                raise RequestError("No divisions in this ring")
        wire.check_divid(divid)
        if divid in state.divisions:
            return state, state.divisions[divid]
        if staging_too and state.ring != "staging":
            staging = self.t.ring("staging")
            if divid in staging.divisions:
                return staging, staging.divisions[divid]
        raise RequestError(f"No division '{divid}' in ring {self.client.route.ring_text}")

    @property
    def autopilot(self) -> tuple[str, Ring]:
        """The requester's ring's autopilot timer (the ring group's key)."""
        return self.client.route.group

    def broadcast(self, update: Update) -> Broadcast:
        """An update to every page of the requester's ring."""
        return Broadcast(self.client.route.group, update)

    def division_update(self, state: RingState, loaded: Loaded) -> Broadcast:
        return self.broadcast(Update(self.request["type"], "division", state.division_json(loaded), self.request))

    def ring_update(self) -> Broadcast:
        return self.broadcast(Update("ring", "ring", self.ring.ring_json(self.client.route.ring_text), self.request))

    def reply(self, payload: dict[str, Any]) -> Send:
        """A frame to the requester alone."""
        return Send(self.conn, payload)

    def manual(self, *effects: Effect) -> Effects:
        """A manual change: the ring's autopilot is cancelled first."""
        return Effects([Cancel(self.autopilot), *effects])

    def save(self, state: RingState, loaded: Loaded, description: str) -> None:
        state.save(loaded, description, self.now)


HANDLERS: dict[str, Any] = {}
BATCHABLE = frozenset({"division_score", "division_read", "division_award_penalty", "division_clear_judge_score",
                       "ring_read"})


def handler(name: str):  # type: ignore[no-untyped-def]
    def register(fn):  # type: ignore[no-untyped-def]
        HANDLERS[name] = fn
        return fn
    return register


def _cancelled(ctx: Context, state: RingState, loaded: Loaded) -> None:
    """Manual changes cancel the ring's autopilot; the change itself switches it off.

    A bracket (se/sbs) round drops the key instead, as upstream writes it there.
    """
    state.autopilot_gen += 1
    if loaded.div.autopilot == "on":
        loaded.div.autopilot = None if bracket.is_bracket_round(loaded.div.method, loaded.div.round) else "off"


def _current_form(loaded: Loaded) -> Any:
    div = loaded.div
    if not 0 <= div.current < len(div.athletes) or div.current not in div.order.get(div.round, []):
        raise RequestError("No current athlete in this round")
    forms = div.form_scores(div.current, div.round)
    if not 0 <= div.form < len(forms):
        raise RequestError("No current form")
    return forms[div.form]


@handler("division_read")
def division_read(ctx: Context) -> Effects:
    divid = ctx.request.get("divid")
    state, loaded = ctx.division(divid, staging_too=True)
    return Effects([ctx.division_update(state, loaded)])


@handler("division_score")
def division_score(ctx: Context) -> Effects:
    req = ctx.request
    score = wire.require(req, "score", dict)
    judge_value = req.get("judge", score.get("judge"))
    if judge_value is None:
        raise RequestError("Missing field 'judge'")
    state, loaded = ctx.division()
    div = loaded.div
    judge = wire.to_int(judge_value, "judge", 0, div.judges - 1)
    marks = Score(
        major=wire.to_float(score.get("major", 0), "major", 0, 10),
        minor=wire.to_float(score.get("minor", 0), "minor", 0, 10),
        rhythm=wire.to_float(score.get("rhythm", 0), "rhythm", 0, 2.0),
        power=wire.to_float(score.get("power", 0), "power", 0, 2.0),
        ki=wire.to_float(score.get("ki", 0), "ki", 0, 2.0),
    )
    form = _current_form(loaded)
    form.judges[judge] = marks
    effects = Effects()
    token = None
    position = (div.name, div.round, div.current, div.form)
    if scoring.form_result(form, div.judges).complete and state.ring != "staging":
        # As upstream, the score broadcast already says autopilot "on"; the steps follow.
        state.autopilot_gen += 1
        div.autopilot = "on"
        token = AutopilotToken(state.autopilot_gen, *position, req)
        effects.cancel(ctx.autopilot)
    ctx.save(state, loaded, f"judge {judge} score")
    effects.append(ctx.division_update(state, loaded))
    if token is not None:
        effects.arm(ctx.autopilot, 0, AutopilotStep(token, "scoreboard"))
    return effects


@handler("division_clear_judge_score")
def division_clear_judge_score(ctx: Context) -> Effects:
    state, loaded = ctx.division()
    judge = wire.to_int(wire.require(ctx.request, "judge"), "judge", 0, loaded.div.judges - 1)
    form = _current_form(loaded)
    _cancelled(ctx, state, loaded)
    form.judges[judge] = Score()
    ctx.save(state, loaded, f"clear judge {judge} score")
    return ctx.manual(ctx.division_update(state, loaded))


@handler("division_award_penalty")
def division_award_penalty(ctx: Context) -> Effects:
    penalties = wire.require(ctx.request, "penalties", dict)
    state, loaded = ctx.division()
    form = _current_form(loaded)
    values = dict(form.penalty or dict.fromkeys(PENALTY_KEYS, 0.0))
    for key in PENALTY_KEYS:
        if key in penalties:
            values[key] = wire.to_float(penalties[key], key, 0, 1000)
    form.penalty = values if any(values.values()) else None
    ctx.save(state, loaded, "award penalty")
    return Effects([ctx.division_update(state, loaded)])


@handler("division_award_punitive")
def division_award_punitive(ctx: Context) -> Effects:
    decision = wire.require(ctx.request, "decision", str)
    if decision not in ("withdraw", "disqualify", "clear"):
        raise RequestError(f"Invalid decision '{decision}'")
    state, loaded = ctx.division()
    div = loaded.div
    form = _current_form(loaded)
    _cancelled(ctx, state, loaded)
    form.decision = {} if decision == "clear" else {decision: 1}
    if decision != "clear":
        loaded.results = scoring.compute(div)
        order = div.order.get(div.round, [])
        res = loaded.results.rounds.get(div.round, {})
        i = order.index(div.current)
        for a in order[i + 1:] + order[:i]:
            if not res[a].complete:
                div.current, div.form, div.state = a, 0, "score"
                break
    ctx.save(state, loaded, f"award punitive {decision}")
    return ctx.manual(ctx.division_update(state, loaded))


def _navigation(name: str, move):  # type: ignore[no-untyped-def]
    def run(ctx: Context) -> Effects:
        state, loaded = ctx.division()
        _cancelled(ctx, state, loaded)
        move(loaded.div)
        ctx.save(state, loaded, name.replace("_", " "))
        return ctx.manual(ctx.division_update(state, loaded))
    HANDLERS[name] = run


def _athlete_step(step: int):  # type: ignore[no-untyped-def]
    def move(div: Division) -> None:
        order = div.order.get(div.round, [])
        if not order:
            raise RequestError("No athletes in this round")
        i = order.index(div.current) if div.current in order else -step if step > 0 else 0
        div.current = order[(i + step) % len(order)]
        div.form = 0
        div.state = "score"
    return move


def _form_step(step: int):  # type: ignore[no-untyped-def]
    def move(div: Division) -> None:
        div.form = min(max(div.form + step, 0), div.form_count(div.round) - 1)
        div.state = "score"
    return move


def _round_step(div: Division, step: int) -> None:
    rounds = [r for r in div.rounds() if div.order.get(r)]
    if not rounds:
        raise RequestError("No rounds with athletes")
    i = rounds.index(div.round) if div.round in rounds else 0
    div.round = rounds[(i + step) % len(rounds)]
    order = div.order[div.round]
    built = div.matches.get(div.round) if isinstance(div.matches, dict) else None  # a bracket round's matches
    if step > 0:
        first = bracket.first_athlete(built) if built else None
        div.current, div.form = order[0] if first is None else first, 0
    else:
        last = bracket.last_athlete(built) if built else None
        div.current, div.form = order[-1] if last is None else last, div.form_count(div.round) - 1
    div.state = "score"


def _toggle_display(div: Division) -> None:
    div.state = "score" if div.state == "display" else "display"


_navigation("division_athlete_next", _athlete_step(1))
_navigation("division_athlete_prev", _athlete_step(-1))
_navigation("division_form_next", _form_step(1))
_navigation("division_form_prev", _form_step(-1))
_navigation("division_round_next", lambda div: _round_step(div, 1))
_navigation("division_round_prev", lambda div: _round_step(div, -1))
_navigation("division_display", _toggle_display)


@handler("division_navigate")
def division_navigate(ctx: Context) -> Effects:
    target = wire.require(ctx.request, "target", dict)
    destination = target.get("destination")
    if destination == "division":
        divid = wire.check_divid(target.get("divid"), "divid")
        state = ctx.ring
        if divid not in state.divisions:
            if state.ring == "staging":
                raise RequestError(f"No division '{divid}' in staging")
            staging = ctx.t.ring("staging")
            if divid not in staging.divisions:
                raise RequestError(f"No division '{divid}' in ring {ctx.client.route.ring_text} or staging")
            _move_division(staging, state, divid)
        state.autopilot_gen += 1
        state.progress["current"] = divid
        state.save_progress()
        return ctx.manual(ctx.ring_update())
    state, loaded = ctx.division()
    div = loaded.div
    _cancelled(ctx, state, loaded)
    if destination == "athlete":
        index = wire.to_int(target.get("index"), "index", 0, len(div.athletes) - 1)
        if index not in div.order.get(div.round, []):
            raise RequestError(f"Invalid index '{index}'")
        div.current, div.form, div.state = index, 0, "score"
    elif destination == "form":
        div.form = wire.to_int(target.get("index"), "index", 0, div.form_count(div.round) - 1)
        div.state = "score"
    elif destination == "round":
        code = target.get("round", target.get("index"))
        if code == "next":
            _round_step(div, 1)
        elif code == "prev":
            _round_step(div, -1)
        elif isinstance(code, str) and div.order.get(code):
            div.round, div.current, div.form, div.state = code, div.order[code][0], 0, "score"
        else:
            raise RequestError(f"Invalid round '{code}'")
    else:
        raise RequestError(f"Invalid destination '{destination}'")
    ctx.save(state, loaded, f"navigate {destination}")
    return ctx.manual(ctx.division_update(state, loaded))


@handler("division_athlete_delete")
def division_athlete_delete(ctx: Context) -> Effects:
    state, loaded = ctx.division(ctx.request.get("divid"))
    div = loaded.div
    idx = wire.to_int(wire.require(ctx.request, "athlete_id"), "athlete_id", 0, len(div.athletes) - 1)
    _cancelled(ctx, state, loaded)
    order = div.order.get(div.round, [])
    if div.current == idx and idx in order and len(order) > 1:
        i = order.index(idx)
        div.current = order[i + 1] if i + 1 < len(order) else order[i - 1]
    del div.athletes[idx]
    orders = {r: [a - 1 if a > idx else a for a in o if a != idx] for r, o in div.order.items()}
    div.order = {r: o for r, o in orders.items() if o}  # an emptied round is not written, so not kept
    div.placement = {r: _without(p, idx) for r, p in div.placement.items()}
    if isinstance(div.matches, dict):
        div.matches = bracket.without_athlete(div.matches, idx)
    if div.current > idx:
        div.current -= 1
    div.current = min(div.current, max(len(div.athletes) - 1, 0))
    div.form = min(div.form, div.form_count(div.round) - 1)
    ctx.save(state, loaded, f"delete athlete {idx}")
    return ctx.manual(ctx.division_update(state, loaded))


def _without(placed: Any, idx: int) -> Any:
    """A placement (flat, or groups for bracket rounds) without athlete `idx`, later ones renumbered."""
    if not isinstance(placed, list):
        return placed
    return [_without(a, idx) if isinstance(a, list) else a - 1 if isinstance(a, int) and a > idx else a
            for a in placed if a != idx]


@handler("division_edit_athletes")
def division_edit_athletes(ctx: Context) -> Effects:
    req = ctx.request
    entries = wire.require(req, "athletes", list)
    state, loaded = ctx.division(req.get("divid"), staging_too=True)
    div = loaded.div
    round_ = req.get("round") or (div.rounds()[0] if div.rounds() else None)
    first = next((r for r in div.rounds() if div.order.get(r)), None)
    old_order = list(div.order.get(round_, [])) if round_ else []
    edits: list[tuple[int | None, str]] = []
    for entry in entries:  # validate everything before changing anything
        if not isinstance(entry, dict):
            raise RequestError("Invalid athletes: each entry must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or "\t" in name or "\n" in name:
            continue
        pos = entry.get("order")
        if pos not in (None, "") and old_order:
            edits.append((old_order[wire.to_int(pos, "order", 1, len(old_order)) - 1], name))
        else:
            edits.append((None, name))
    picked: list[int] = []
    for idx, name in edits:
        if idx is None:
            div.athletes.append(Athlete(name=name))
            idx = len(div.athletes) - 1
        else:
            div.athletes[idx].name = name
        picked.append(idx)
    _cancelled(ctx, state, loaded)
    if round_ is None or round_ == first or first is None:
        # The first round lists everyone: rebuild athletes[] in the new order, dropping the unlisted.
        round_ = round_ or scoring.first_round_for(div.method, len(picked))
        keep = [div.athletes[i] for i in picked]
        remap = {old: new for new, old in enumerate(picked)}
        div.athletes = keep
        for r in list(div.order):
            div.order[r] = [remap[a] for a in div.order[r] if a in remap]
        div.order[round_] = list(range(len(keep)))
        div.placement = {}
        div.current = remap.get(div.current, 0)
    else:
        div.order[round_] = picked
    pad(div)
    ctx.save(state, loaded, "edit athletes")
    return ctx.manual(ctx.division_update(state, loaded))


def division_from_json(data: dict[str, Any]) -> Division:
    """A division sent by the editor (only the keys upstream keeps)."""
    data = {k: v for k, v in data.items() if k in WRITE_KEYS}
    name = wire.check_divid(data.get("name"), "name")
    forms = data.get("forms") or {}
    if isinstance(forms, str):
        forms = parse_forms(forms)
    if not isinstance(forms, dict) or not all(isinstance(v, list) for v in forms.values()):
        raise RequestError("Invalid forms")
    judges = wire.to_int(data.get("judges", 5), "judges", 1, 15)
    athletes_in = data.get("athletes") or []
    if not isinstance(athletes_in, list):
        raise RequestError("Invalid athletes")
    athletes = []
    for a in athletes_in:
        a = {"name": a} if isinstance(a, str) else a
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not a["name"].strip():
            raise RequestError("Invalid athletes: each needs a name")
        info = a.get("info") if isinstance(a.get("info"), dict) else {}
        athletes.append(Athlete(name=a["name"].replace("\t", " "),
                                info={str(k): str(v).replace("\t", " ") for k, v in info.items()}))
    div = Division(name=name, description=str(data.get("description", "")).replace("\n", " "),
                   judges=judges, forms={str(r): [str(f) for f in v] for r, v in forms.items()},
                   athletes=athletes)
    for key in ("method", "matches", "tags"):
        if data.get(key) is not None:
            setattr(div, key, data[key])
    if isinstance(data.get("flight"), dict):
        div.flight = data["flight"]
    order = data.get("order")
    if isinstance(order, dict) and order:
        for r, idxs in order.items():
            if not isinstance(idxs, list):
                raise RequestError("Invalid order")
            div.order[str(r)] = [wire.to_int(i, "order", 0, max(len(athletes) - 1, 0)) for i in idxs]
    elif athletes:
        try:
            first = scoring.first_round_for(div.method, len(athletes))
        except bracket.BracketError as e:
            raise RequestError(str(e)) from None
        if bracket.uses_brackets(div.method) and first not in div.forms:
            raise RequestError(f"Division Configuration Error: no forms designated for round '{first}'")
        if first not in div.forms and div.forms:
            first = next(r for r in div.rounds() if r in div.forms)
        div.order[first] = list(range(len(athletes)))
    for r, idxs in div.order.items():  # a bracket round must fit its table (its matches say who meets whom)
        built = div.matches if isinstance(div.matches, dict) else {}
        if idxs and bracket.is_bracket_round(div.method, r) and r not in built:
            try:
                bracket.check_size(div.name, r, len(idxs))
            except bracket.BracketError as e:
                raise RequestError(str(e)) from None
    round_ = data.get("round")
    div.round = round_ if isinstance(round_, str) and round_ in div.order else next(iter(div.order), "finals")
    div.current = div.order[div.round][0] if div.order.get(div.round) else 0
    pad(div)
    return div


@handler("division_write")
def division_write(ctx: Context) -> Effects:
    data = wire.require(ctx.request, "division", dict)
    div = division_from_json(data)
    state = ctx.ring
    path = state.new_path(div.name)
    echo = {k: v for k, v in data.items() if k in WRITE_KEYS}
    if ctx.t.store.holds(path) and not wire.to_bool(ctx.request.get("overwrite")):
        return Effects([ctx.reply({"type": "division", "action": "write error",
                                                  "error": f"Division '{div.name}' already exists",
                                                  "division": echo})])
    state.autopilot_gen += 1
    loaded = Loaded(div=div, path=path, stamp=None, results=scoring.compute(div))
    state.save(loaded, "write", ctx.now)
    state.divisions[div.name] = loaded
    state.divisions = dict(sorted(state.divisions.items()))
    return ctx.manual(ctx.reply({"type": "division", "action": "write ok", "division": echo}),
                        ctx.ring_update())


@handler("division_history")
def division_history(ctx: Context) -> Effects:
    state, loaded = ctx.division(ctx.request.get("divid"), staging_too=True)
    payload = state.division_json(loaded)
    payload["history"] = [
        {"number": e["number"], "datetime": e["datetime"], "description": e["description"]}
        for e in reversed(ctx.t.store.history(state.dir, loaded.div.name).entries())
    ]
    return Effects([ctx.broadcast(Update(ctx.request["type"], "division", payload, ctx.request))])


@handler("division_restore")
def division_restore(ctx: Context) -> Effects:
    version = wire.require(ctx.request, "version")
    state, loaded = ctx.division(ctx.request.get("divid"), staging_too=True)
    text = ctx.t.store.history(state.dir, loaded.div.name).text(str(version))
    if text is None:
        raise RequestError(f"Unknown version '{version}' of division '{loaded.div.name}'")
    try:
        div = parse_division(text, loaded.div.name)
    except DivisionFormatError as e:
        raise RequestError(f"Version {version} cannot be read: {e}") from None
    state.autopilot_gen += 1
    loaded.div = div
    ctx.save(state, loaded, f"restore {version}")
    return ctx.manual(ctx.division_update(state, loaded))


@handler("division_judge_query")
def division_judge_query(ctx: Context) -> Effects:
    judges = sorted(
        ({"judge": c.jid, "cid": c.cid, "health": c.health} for c in ctx.clients if c.jid is not None),
        key=lambda j: (j["judge"], j["cid"]),
    )
    return Effects([ctx.reply({"type": "division", "action": "judges", "judges": judges})])


def _se_only(ctx: Context) -> Effects:
    raise RequestError(f"'{ctx.request['action']}' needs the single-elimination or side-by-side method")


for _name in ("division_award_min_score", "division_draw", "division_draw_select_age"):
    HANDLERS[_name] = _se_only


# -- ring -------------------------------------------------------------------------------

@handler("ring_read")
def ring_read(ctx: Context) -> Effects:
    return Effects([ctx.ring_update()])


def _ring_step(step: int):  # type: ignore[no-untyped-def]
    def run(ctx: Context) -> Effects:
        state = ctx.ring
        divids = list(state.divisions)
        if not divids:
            raise RequestError("No divisions in this ring")
        current = state.current_divid()
        i = divids.index(current) if current in divids else 0
        state.autopilot_gen += 1
        state.progress["current"] = divids[(i + step) % len(divids)]
        state.save_progress()
        return ctx.manual(ctx.ring_update())
    return run


HANDLERS["ring_division_next"] = _ring_step(1)
HANDLERS["ring_division_prev"] = _ring_step(-1)


def _move_division(source: RingState, target: RingState, divid: str) -> None:
    loaded = source.divisions.pop(divid)
    path = target.new_path(divid)
    if source.t.store.holds(path):
        source.divisions[divid] = loaded
        raise RequestError(f"Division '{divid}' already exists in the target ring")
    source.t.store.move_division(source, target, divid, loaded.path)
    loaded.path = path
    target.divisions[divid] = loaded
    target.divisions = dict(sorted(target.divisions.items()))
    if source.progress.get("current") == divid:
        _advance_current(source, divid)


def _advance_current(state: RingState, gone: str) -> None:
    """The current division went away: the next one (alphabetically) becomes current."""
    rest = sorted(state.divisions)
    later = [d for d in rest if d > gone]
    state.progress["current"] = (later or rest or [""])[0]
    if not state.progress["current"]:
        del state.progress["current"]
    state.save_progress()


@handler("ring_transfer")
def ring_transfer(ctx: Context) -> Effects:
    divid = wire.check_divid(wire.require(ctx.request, "name"), "name")
    target_ring = wire.parse_ring(wire.require(ctx.request, "transfer"), "transfer")
    state = ctx.ring
    if divid not in state.divisions:
        raise RequestError(f"No division '{divid}' in ring {ctx.client.route.ring_text}")
    was_current = state.current_divid() == divid
    target = ctx.t.ring(target_ring)
    if target is state:
        return Effects([ctx.ring_update()])
    state.autopilot_gen += 1
    if was_current and state.progress.get("current") != divid:
        state.progress["current"] = divid
    _move_division(state, target, divid)
    effects = ctx.manual(ctx.ring_update())
    if target_ring != "staging":
        # the receiving ring's pages filter on request.ring: tell them in their own ring's terms
        text = str(target_ring)
        effects.broadcast((ctx.client.route.db, target_ring),
                          Update("ring", "ring", target.ring_json(text), dict(ctx.request, ring=text)))
    return effects


@handler("ring_division_delete")
def ring_division_delete(ctx: Context) -> Effects:
    divid = wire.check_divid(wire.require(ctx.request, "divid"), "divid")
    state = ctx.ring
    loaded = state.divisions.get(divid)
    if loaded is None:
        raise RequestError(f"No division '{divid}' in ring {ctx.client.route.ring_text}")
    was_current = state.current_divid() == divid
    state.autopilot_gen += 1
    ctx.t.store.delete_division(state, divid, loaded.path)
    del state.divisions[divid]
    if was_current:
        _advance_current(state, divid)
    return ctx.manual(ctx.ring_update())


@handler("ring_division_split")
def ring_division_split(ctx: Context) -> Effects:
    divid = wire.check_divid(wire.require(ctx.request, "name"), "name")
    flights = wire.to_int(wire.require(ctx.request, "flights"), "flights", 2, 26)
    state = ctx.ring
    loaded = state.divisions.get(divid)
    if loaded is None:
        raise RequestError(f"No division '{divid}' in ring {ctx.client.route.ring_text}")
    div = loaded.div
    prelim = div.order.get("prelim")
    if not prelim or any(r != "prelim" and div.order.get(r) for r in div.order):
        raise RequestError(f"Division '{divid}' has no prelim round to split")
    ids = [f"{divid}{chr(ord('a') + i)}" for i in range(flights)]
    for fid in ids:
        wire.check_divid(fid, "name")
        if fid in state.divisions:
            raise RequestError(f"Division '{fid}' already exists")
    athletes = [div.athletes[a] for a in prelim]
    ctx.t.rng.shuffle(athletes)
    state.autopilot_gen += 1
    for i, fid in enumerate(ids):
        group = athletes[i::flights]
        flight = Division(
            name=fid, description=f"{div.description} Flight {chr(ord('A') + i)}", judges=div.judges,
            round="prelim", forms={r: list(f) for r, f in div.forms.items()}, method=div.method,
            athletes=[Athlete(name=a.name, info=dict(a.info)) for a in group],
            flight={"id": chr(ord("a") + i), "group": list(ids), "state": "ready"}, tags=div.tags,
        )
        flight.order["prelim"] = list(range(len(group)))
        pad(flight)
        fl = Loaded(div=flight, path=state.new_path(fid), stamp=None, results=scoring.compute(flight))
        state.save(fl, "split", ctx.now)
        state.divisions[fid] = fl
    was_current = state.current_divid() == divid
    ctx.t.store.delete(loaded.path)
    ctx.t.store.delete_history(state.dir, divid)
    del state.divisions[divid]
    state.divisions = dict(sorted(state.divisions.items()))
    if was_current:
        state.progress["current"] = ids[0]
        state.save_progress()
    return ctx.manual(ctx.ring_update())


@handler("ring_division_merge")
def ring_division_merge(ctx: Context) -> Effects:
    divid = wire.check_divid(wire.require(ctx.request, "name"), "name")
    state = ctx.ring
    flights = [ld for d, ld in state.divisions.items()
               if ld.div.flight is not None and d != divid and d.startswith(divid) and len(d) == len(divid) + 1]
    if not flights:
        raise RequestError(f"No flights of division '{divid}'")
    if divid in state.divisions:
        raise RequestError(f"Division '{divid}' already exists")
    if any((ld.div.flight or {}).get("state") != "complete" for ld in flights):
        raise RequestError("Every flight must be complete before merging")
    chosen: list[Athlete] = []
    for ld in flights:
        fdiv = ld.div
        k = len(fdiv.order.get("prelim", []))
        take = 4 if fdiv.method == "aau-single-cutoff" else math.ceil(k / 2)
        placed = ld.results.placement.get("prelim", [])
        chosen += [Athlete(name=fdiv.athletes[a].name, info=dict(fdiv.athletes[a].info)) for a in placed[:take]]
    ctx.t.rng.shuffle(chosen)
    base = flights[0].div
    merged = Division(name=divid, description=base.description.rsplit(" Flight ", 1)[0], judges=base.judges,
                      round="semfin", forms={r: list(f) for r, f in base.forms.items() if r != "prelim"},
                      method=base.method, athletes=chosen, tags=base.tags)
    merged.order["semfin"] = list(range(len(chosen)))
    merged.current = 0
    pad(merged)
    state.autopilot_gen += 1
    ml = Loaded(div=merged, path=state.new_path(divid), stamp=None, results=scoring.compute(merged))
    state.save(ml, "merge", ctx.now)
    state.divisions[divid] = ml
    for ld in flights:
        ld.div.flight = dict(ld.div.flight or {}, state="merged")
        state.save(ld, "merged", ctx.now)
    state.divisions = dict(sorted(state.divisions.items()))
    return ctx.manual(ctx.ring_update())


# -- tournament ---------------------------------------------------------------------------

@handler("tournament_read")
def tournament_read(ctx: Context) -> Effects:
    if ctx.t.store.is_folder(ctx.t.base):  # as upstream when loading the whole tournament
        ctx.t.store.make_folders(ctx.t.base / "staging")
        if not ctx.t.all_rings():
            ctx.t.store.make_folders(ctx.t.base / "ring01")
    divisions = []
    for ring in [*ctx.t.all_rings(), "staging"]:
        state = ctx.t.ring(ring)
        divisions += [state.division_json(ld) for ld in state.divisions.values()]
    return Effects([ctx.reply({"type": "tournament", "action": "read", "request": ctx.request,
                                              "divisions": divisions})])


@handler("tournament_draws_write")
def tournament_draws_write(ctx: Context) -> Effects:
    draws = wire.require(ctx.request, "draws", dict)
    ctx.t.store.write_draws(ctx.t.base, draws)
    return Effects([ctx.ring_update()])


@handler("tournament_draws_delete")
def tournament_draws_delete(ctx: Context) -> Effects:
    ctx.t.store.delete_draws(ctx.t.base)
    return Effects([ctx.ring_update()])
