"""Random request sequences: only the two expected exceptions, and the files always match memory."""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freescore.effects import ConnId
from freescore.worldclass import logic, wire
from freescore.worldclass.divfile import parse_division
from freescore.worldclass.store import WorldclassStore

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "forms-worldclass"

value = st.one_of(st.integers(-2, 30), st.sampled_from(["0.3", "1.5", "2.0", "x", "", "../p01", "p01", "p03",
                                                        "staging", "2", None, True, 1.7]))
score_part = st.sampled_from(["0.0", "0.3", "0.5", "1.0", "1.5", "2.0", "2.5", "abc", 1.2])
requests = st.one_of(
    st.builds(lambda j, parts: {"type": "division", "action": "score",
                                "score": dict(zip(["major", "minor", "rhythm", "power", "ki"], parts, strict=True),
                                              judge=j)},
              st.integers(-1, 7), st.lists(score_part, min_size=5, max_size=5)),
    st.builds(lambda a: {"type": "division", "action": a},
              st.sampled_from(["read", "athlete next", "athlete prev", "form next", "form prev", "round next",
                               "round prev", "display", "history"])),
    st.builds(lambda d, i: {"type": "division", "action": "navigate", "target": {"destination": d, "index": i,
                                                                                 "divid": i, "round": i}},
              st.sampled_from(["athlete", "form", "round", "division", "nowhere"]), value),
    st.builds(lambda j: {"type": "division", "action": "clear judge score", "judge": j}, value),
    st.builds(lambda d: {"type": "division", "action": "award punitive", "decision": d, "athlete_id": 0},
              st.sampled_from(["withdraw", "disqualify", "clear", "nope"])),
    st.builds(lambda b, r: {"type": "division", "action": "award penalty", "penalties": {"bounds": b, "restart": r}},
              value, value),
    st.builds(lambda i: {"type": "division", "action": "athlete delete", "athlete_id": i}, value),
    st.builds(lambda v: {"type": "division", "action": "restore", "version": v},
              st.sampled_from(["1.1", "1.2", "1.9", "x"])),
    st.builds(lambda a: {"type": "ring", "action": a}, st.sampled_from(["read", "division next", "division prev"])),
    st.builds(lambda n, t: {"type": "ring", "action": "transfer", "name": n, "transfer": t}, value, value),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests, min_size=1, max_size=25), st.integers(0, 1000))
def test_random_requests_keep_disk_and_memory_equal(sequence, seed):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(FIXTURES, root / "test" / "forms-worldclass")
        wc = logic.Worldclass(WorldclassStore(root), rng=random.Random(seed))
        who = logic.Client(id="f" * 40, route=wire.parse_route("/worldclass/test/1/computer+operator"))
        for request in sequence:
            request = dict(request, tournament="test", ring="1", **{"from": {"cid": who.cid}})
            try:
                wc.handle(ConnId("c1"), who, request, [], 1000.0)
            except (wire.RequestError, logic.UnknownRequest):
                wc.tournaments.clear()  # as the adapter: re-read from disk after a failure
            t = wc.tournament("test")
            for ring in (1, 2, "staging"):
                state = t.ring(ring)
                for loaded in state.divisions.values():
                    assert parse_division(loaded.path.read_text(), loaded.div.name) == loaded.div
