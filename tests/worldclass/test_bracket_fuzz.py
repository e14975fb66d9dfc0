"""Random request sequences on se/sbs divisions (and hand-broken bracket lines): only the expected
exceptions, every armed autopilot step runs, and the files always match memory."""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freescore.effects import Arm, ConnId
from freescore.worldclass import logic, scoring, wire
from freescore.worldclass.divfile import parse_division
from freescore.worldclass.store import WorldclassStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from methods_play import METHODS_FIXTURES  # noqa: E402

value = st.one_of(st.integers(-2, 9), st.sampled_from(["0.3", "1.5", "x", "", None, True, 1.7, [0, 1], {"a": 1}]))
mark = st.sampled_from(["0.0", "0.3", "0.5", "1.5", "2.0", "2.5", "abc", 1.2, None])
side = st.one_of(value, st.fixed_dictionaries({"index": value, "major": mark, "minor": mark, "rhythm": mark,
                                               "power": mark, "ki": mark}))
requests = st.one_of(
    st.builds(lambda j, parts: {"type": "division", "action": "score",
                                "score": dict(zip(["major", "minor", "rhythm", "power", "ki"], parts, strict=True),
                                              judge=j)},
              st.integers(-1, 4), st.lists(mark, min_size=5, max_size=5)),
    st.builds(lambda j, m, c, h: {"type": "division", "action": "score", "judge": j,
                                  "score": {"match": m, "form": 0, "chung": c, "hong": h}},
              value, value, side, side),
    st.builds(lambda a: {"type": "division", "action": "award min score", "athlete_id": a}, value),
    st.builds(lambda d: {"type": "division", "action": "award punitive", "decision": d, "athlete_id": 0},
              st.sampled_from(["withdraw", "disqualify", "clear", "nope"])),
    st.builds(lambda f, c: {"type": "division", "action": "draw", "draw": {"form": f, "complete": c}},
              value, value),
    st.builds(lambda a: {"type": "division", "action": "draw select age", "age": a},
              st.sampled_from(["cadet", "o65", "wt25-0x1ffff", "x", 3])),
    st.builds(lambda j, i: {"type": "division", "action": "clear judge score", "judge": j, "index": i}, value, value),
    st.builds(lambda a: {"type": "division", "action": a},
              st.sampled_from(["read", "athlete next", "athlete prev", "form next", "form prev", "round next",
                               "round prev", "display"])),
    st.builds(lambda i: {"type": "division", "action": "athlete delete", "athlete_id": i}, value),
    st.builds(lambda d, i: {"type": "division", "action": "navigate", "target": {"destination": d, "index": i,
                                                                                 "round": i}},
              st.sampled_from(["athlete", "form", "round"]), value),
)
BROKEN = st.sampled_from([
    None, "# matches=[1,2]\n", '# matches={"ro8":[{"chung":99,"hong":null,"number":1,"order":[99,null]}]}\n',
    '# matches={"ro8":"x"}\n', "# draws=[]\n", '# draws={"ro8":{"1":"x"}}\n',
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([1, 2, 3, 4]), BROKEN, st.lists(requests, min_size=1, max_size=25))
def test_random_requests_on_brackets(ring, broken, sequence):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(METHODS_FIXTURES / "before", root / "methods" / "forms-worldclass")
        if broken is not None:
            path = next((root / "methods" / "forms-worldclass" / f"ring{ring:02d}").glob("div.*.txt"))
            path.write_text(path.read_text().replace("# description=", broken + "# description=", 1))
        wc = logic.Worldclass(WorldclassStore(root), rng=random.Random(0))
        who = logic.Client(id="f" * 40, route=wire.parse_route(f"/worldclass/methods/{ring}/computer+operator"))
        for request in sequence:
            request = dict(request, tournament="methods", ring=str(ring), **{"from": {"cid": who.cid}})
            try:
                effects = wc.handle(ConnId("c1"), who, request, [], 1000.0)
            except (wire.RequestError, logic.UnknownRequest):
                wc.tournaments.clear()  # as the service: re-read from disk after a failure
                continue
            for _ in range(10):  # every step of an armed sequence, at once
                arm = next((e for e in effects if isinstance(e, Arm)), None)
                if arm is None:
                    break
                effects = wc.autopilot(("methods", ring), arm.payload, 1001.0)
            state = wc.tournament("methods").ring(ring)
            for loaded in state.divisions.values():
                on_disk = parse_division(loaded.path.read_text(), loaded.div.name)
                scoring.compute(on_disk)
                assert on_disk == loaded.div
