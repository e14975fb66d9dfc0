"""freestyle against a real `twistd freescore`: the upstream run of spec §18 replayed over real WebSockets.

Examples A, B and C are sent request by request as upstream received them;
every frame the fixtures hold is compared field by field (JSON types included)
but for the documented differences (docs/freestyle.md), every division file is
checked against the update that announced it, and the files at the end against
upstream's `after/` files.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests

from freescore.freestyle import wire
from freescore.freestyle.divfile import format_division, parse_division
from tests.freestyle.examples import (
    FORMS,
    deliberate,
    differences,
    expected_frame,
    frame,
    score_request,
    upstream_after,
)
from tests.freestyle.examples import requests as run_requests
from tests.worldclass.wc_client import Peer, assert_refused

pytestmark = pytest.mark.integration
ROLES = {"display": "observer", "coord": "computer+operator"}


def config(**overrides: Any) -> str:
    settings = {"data": '"data"', "cors_origin": '"http://localhost:8073"', "leaderboard_delay": "0.05",
                "next_delay": "0.05", "brief_delay": "0.0"}
    settings.update({k: str(v) for k, v in overrides.items()})
    body = "\n".join(f"{k} = {v}" for k, v in settings.items())
    return f'[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[freestyle]\n{body}\n'


def start(freescore: Any, tmp_path: Path, **overrides: Any) -> tuple[Any, Path]:
    forms = tmp_path / "data" / "test" / "forms-freestyle"
    shutil.copytree(FORMS / "before", forms)
    return freescore(config(**overrides)), forms.resolve()


def is_update(kind: str, action: str | None = None) -> Any:
    return lambda f: (f.get("type") == kind and f.get("action") == "update"
                      and (action is None or f.get("request", {}).get("action") == action))


async def file_matches(peer: Peer, forms: Path, division: dict[str, Any]) -> None:
    """The division file holds exactly the object the update announced (written before the broadcast).

    The autopilot's steps are 0.05 s apart here, so on a busy machine it may have moved on before
    the file is read: then the file must be what one of the updates after this one announces
    (waited for, without taking it from the frames the caller waits for next).
    """
    path = Path(division["file"])
    assert path.parent.parent == forms
    text = path.read_text(encoding="utf-8")
    if text == format_division(division):
        return
    later = max(i for i, f in enumerate(peer.frames) if f.get("division") is division)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while not any(isinstance(f.get("division"), dict) and f["division"].get("file") == division["file"]
                  and format_division(f["division"]) == text for f in peer.frames[later + 1:]):
        assert loop.time() < deadline, f"{path.name}: the file matches no update announced after this one"
        await asyncio.sleep(0.01)


class Run:
    """The peers of the run (as upstream's captures named them), connected as the pages connect."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.peers: dict[str, Peer] = {}

    async def peer(self, name: str, ring: int | str) -> Peer:
        if name not in self.peers:
            role = ROLES.get(name.split("-", 1)[1], "observer")
            self.peers[name] = await Peer.connect(self.base, f"/freestyle/test/{ring}/{role}")
        return self.peers[name]

    async def close(self) -> None:
        for p in self.peers.values():
            await p.close()


async def send_and_settle(run: Run, forms: Path, name: str, ring: int, request: dict[str, Any]) -> dict[str, Any]:
    """Send one request; wait for its answer, and when it armed the autopilot for the autopilot's last step."""
    peer = await run.peer(name, ring)
    await peer.send(request)
    kind = f"{request['type']}_{request['action']}".replace(" ", "_")
    if kind in ("nonsense_whatever",):
        return await peer.expect(lambda f: "error" in f)
    if kind == "client_pong":
        return {}
    if kind == "division_judge_query":
        return await peer.expect(lambda f: f.get("action") == "judges")
    if kind == "division_write":
        return await peer.expect(lambda f: f.get("action", "").startswith("write"))
    echoed = wire.annotate(dict(request), "test")
    answer = await peer.expect(lambda f: "error" in f or f.get("request") == echoed)
    division = answer.get("division")
    if isinstance(division, dict) and "athletes" in division and kind != "division_read":
        await file_matches(peer, forms, division)
        if division.get("autopilot") == "on" and kind in ("division_score", "division_award_punitive"):
            last = await peer.expect(lambda f: f.get("request") == answer["request"]
                                     and "autopilot" not in f.get("division", {}), what="the autopilot's last step")
            await file_matches(peer, forms, last["division"])
    return answer


def ours_for(peer: Peer, upstream: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Our frame for an upstream one: the last with the same request, state and autopilot key (or `fields`)."""
    def same(f: dict[str, Any]) -> bool:
        if f.get("type") != upstream.get("type") or differences(upstream.get("request"), f.get("request")):
            return False
        div, up = f.get("division", {}), upstream.get("division", {})
        checks = {"state": up.get("state"), "autopilot": up.get("autopilot"), **fields}
        return all(div.get(k) == v for k, v in checks.items())
    found = [f for f in peer.frames if same(f)]
    assert found, f"{peer.name}: no frame like {json.dumps(upstream)[:300]}"
    return found[-1]


def assert_like(upstream_name: str, ours: dict[str, Any], forms: Path, **fixes: Any) -> None:
    expected = expected_frame(frame(upstream_name), str(forms))
    for path, value in fixes.items():  # deliberate differences of this frame (§17)
        target = expected
        *parents, leaf = path.split("__")
        for key in parents:
            target = target[key]
        target[leaf] = value
    assert differences(expected, ours) == [], upstream_name


def test_examples_a_b_c_replayed_frame_by_frame_and_file_by_file(freescore, tmp_path):
    fs, forms = start(freescore, tmp_path)

    async def scenario() -> None:
        run = Run(fs.url(0, "ws"))
        answers = []
        for item in run_requests():
            answers.append((item, await send_and_settle(run, forms, item["conn"], item["ring"], item["request"])))
        p = run.peers
        d1, d2, d3 = p["r1-display"], p["r2-display"], p["r3-display"]
        for name, peer in [("division-read-reply", d1), ("score-partial-judge0", d1),
                           ("score-complete-autopilot-on", d1), ("autopilot-leaderboard", d1),
                           ("autopilot-next", d1), ("autopilot-end-last-finals-athlete", d1),
                           ("update-view-next", d1), ("update-navigate", d1), ("award-penalty-update", d2),
                           ("award-punitive-withdraw", d2), ("example-b-final", d2),
                           ("example-c-semfin-complete", d3)]:
            upstream = frame(name)
            assert_like(name, ours_for(peer, upstream), forms)
        # the first `display` toggled the leaderboard back to the scoreboard
        assert_like("update-display", ours_for(d1, frame("update-display")), forms)
        coord1 = p["r1-coord"]
        assert_like("ring-read-reply", ours_for(coord1, frame("ring-read-reply")), forms)
        for name in ("ring-update-division-next", "ring-update-transfer"):
            assert_like(name, ours_for(coord1, frame(name)), forms)
        # §17.4: the new round's first athlete, never null (upstream: null, then 0 on the next read)
        change = ours_for(d3, frame("round-change-by-autopilot"))
        order = change["division"]["order"]["finals"]
        assert_like("round-change-by-autopilot", change, forms, division__current=6,
                    division__pending={"finals": order, "semfin": []})
        assert_like("read-after-round-change", ours_for(d3, frame("read-after-round-change"), round="finals"),
                    forms, division__current=6)
        # §17.2: `athlete prev` walks the order: from 6 (first) to 2 (last); upstream went to index 9
        assert_like("athlete-prev-finals", ours_for(d3, frame("athlete-prev-finals")), forms, division__current=2)
        write_ok, write_error = (a for i, a in answers if i["request"]["action"] == "write")
        assert write_ok == expected_frame(frame("write-ok"), str(forms))
        assert write_error == expected_frame(frame("write-error"), str(forms))
        assert [f for f in run.peers["r1-display"].frames if f.get("action", "").startswith("write")] == []
        # §17.7: the judges (none connects as judgeN: tablets are observers)
        query = next(a for i, a in answers if i["request"]["action"] == "judge query")
        assert query == {"type": "division", "action": "judges", "judges": []}
        unknown_divid = next(a for i, a in answers if i["request"].get("divid") == "nope")
        assert "Division not in ring" in unknown_divid["error"] and "type" not in unknown_divid
        assert unknown_divid["request"] == frame("error-division-not-in-ring")["request"]
        await run.close()

    asyncio.run(scenario())
    for ring, divid in ((1, "fs01"), (2, "fs02"), (3, "fs03")):
        path = forms / f"ring{ring:02d}" / f"div.{divid}.txt"
        assert path.read_text() == format_division(deliberate(upstream_after(ring, divid), str(forms)))
    # fs09 moved to ring 2 with its file (§17.5); ring 1's current moved on with it
    assert not (forms / "ring01" / "div.fs09.txt").exists()
    moved = parse_division((forms / "ring02" / "div.fs09.txt").read_text())
    assert moved["file"] == str(forms / "ring02" / "div.fs09.txt")
    assert (forms / "ring01" / "progress.txt").read_text() == "# current=fs01\n# name=1\n"


def test_http_side(freescore, tmp_path):
    """Checklist 1."""
    fs, _ = start(freescore, tmp_path)
    for path in ("/freestyle/status", "/status"):
        r = requests.get(fs.url() + path, timeout=5)
        assert r.status_code == 200 and r.text == "OK"
    r = requests.get(fs.url() + "/freestyle/status", timeout=5)
    assert r.headers["access-control-allow-origin"] == "http://localhost:8073"
    r = requests.get(fs.url() + "/freestyle/x/y", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == {"error": "FreeScore FreeStyle Service Error: Unknown command: freestyle/x/y"}
    assert r.headers["access-control-allow-origin"] == "http://localhost:8073"


def test_upgrades_silence_and_sender_only_reads(freescore, tmp_path):
    """Checklist 2, 3, 4: the pages' paths upgrade, others do not; nothing unasked; reads answer the sender."""
    fs, _ = start(freescore, tmp_path)
    base = fs.url(0, "ws")

    async def scenario() -> None:
        for path in ("/freestyle/test/1/observer", "/freestyle/request/test/1/computer+operator",
                     "/freestyle/test/staging/admin"):
            peer = await Peer.connect(base, path)
            await peer.sentinel({"type": "ring", "action": "read"}, is_update("ring", "read"))  # nothing unasked
            await peer.close()
        await assert_refused(base, ("/freestyle/test/x/observer", "/freestyle/..%2F..%2Fetc/1/observer",
                                    "/freestyle/test/1", "/freestyle/test/01/observer",
                                    "/freestyle/nosuchdb/1/observer"))
        display = await Peer.connect(base, "/freestyle/test/1/observer")
        tablet = await Peer.connect(base, "/freestyle/test/1/observer")
        for request in ({"type": "client", "action": "pong", "server": {"ping": {"timestamp": "x"}}},
                        {"type": "server", "action": "stop ping"}):
            await display.send(request)
        await display.send({"type": "division", "action": "read"})
        read = await display.expect(is_update("division", "read"))
        assert read["request"] == {"type": "division", "action": "read", "tournament": "test", "cookie": {}}
        await display.send({"type": "ring", "action": "read"})
        ring = await display.expect(is_update("ring", "read"))
        assert ring["ring"]["name"] == 1 and ring["request"]["tournament"] == "test"
        assert display.frames == [read, ring]  # the pong and stop ping got nothing, as upstream
        await display.send({"type": "nonsense", "action": "whatever"})
        unknown = await display.expect(lambda f: "error" in f)
        assert "type" not in unknown
        # reads and errors went to the sender only: the tablet's own read is its first frame
        await tablet.sentinel({"type": "ring", "action": "read"}, is_update("ring", "read"))
        for p in (display, tablet):
            await p.close()

    asyncio.run(scenario())


BAD = [
    "not json", "[1, 2]", '{"type": "division"}', '{"type": 3, "action": "read"}',
    '{"type": "division", "action": "score", "judge": 7, "score": {"technical": {}, "presentation": {}}}',
    '{"type": "division", "action": "score", "judge": 0, "score": {"technical": {"mft1": "9"}, "presentation": {}}}',
    '{"type": "division", "action": "score", "judge": "x"}',
    '{"type": "division", "action": "award penalty", "athlete_id": 99, "penalty": {}}',
    '{"type": "division", "action": "award punitive", "athlete_id": 0, "decision": "banish"}',
    '{"type": "division", "action": "navigate", "target": {"destination": "athlete", "index": "99"}}',
    '{"type": "division", "action": "navigate", "target": {"destination": "division", "divid": "../x"}}',
    '{"type": "ring", "action": "transfer", "name": "fs01", "transfer": "../x"}',
    '{"type": "ring", "action": "transfer", "name": "../fs01", "transfer": 2}',
    '{"type": "division", "action": "read", "divid": "../../etc/passwd"}',
    '{"type": "division", "action": "write", "division": {"name": "../x", "athletes": []}}',
    '{"type": "ring", "action": "division delete", "divid": "nope"}',
    '{"type": "division\\ud800", "action": "read"}',
    '{"type": "division", "action": "write", "division": {"name": "x", "athletes": [{"name": "\\udc00"}]}}',
]


def test_bad_input_gets_the_error_frame_and_changes_nothing(freescore, tmp_path):
    """Checklist 14 and every other malformed request: an error frame to the sender, no file touched."""
    fs, forms = start(freescore, tmp_path)
    before = {p: p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()}

    async def scenario() -> None:
        peer = await Peer.connect(fs.url(0, "ws"), "/freestyle/test/1/computer+operator")
        for text in BAD:
            await peer.send(text)
            answer = await peer.expect(lambda f: "error" in f, what=f"an error for {text}")
            assert "type" not in answer and isinstance(answer["error"], str)
        await peer.send(b"\x00\x01binary")
        await peer.send({"type": "division", "action": "read"})
        assert (await peer.expect(is_update("division", "read")))["division"]["name"] == "fs01"
        await peer.close()

    asyncio.run(scenario())
    after = {p: p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()}
    assert after == before


def test_autopilot_sequence_and_its_cancellation(freescore, tmp_path):
    """Checklist 8 and 9 (§17.1): a manual move during the autopilot's pause stops it; the move stays on disk."""
    fs, forms = start(freescore, tmp_path, leaderboard_delay="0.3", next_delay="0.4", brief_delay="0.1")

    async def scenario() -> None:
        base = fs.url(0, "ws")
        tablet = await Peer.connect(base, "/freestyle/test/1/observer")
        coord = await Peer.connect(base, "/freestyle/test/1/computer+operator")
        for j in range(3):
            await tablet.send(score_request(j))
        armed = await tablet.expect(lambda f: f.get("division", {}).get("autopilot") == "on")
        assert armed["request"]["judge"] == 2 and armed["division"]["state"] == "score"
        board = await tablet.expect(lambda f: f.get("division", {}).get("state") == "display")
        nxt = await tablet.expect(lambda f: "autopilot" not in f.get("division", {"autopilot": 1}))
        assert board["request"] == nxt["request"] == armed["request"]
        assert (nxt["division"]["current"], nxt["division"]["state"]) == (1, "score")
        # athlete 1 completes; the coordinator moves on at once: no autopilot frame follows
        for j in range(3):
            await tablet.send(score_request(j, "0.6"))
        await tablet.expect(lambda f: f.get("division", {}).get("autopilot") == "on")
        await coord.send({"type": "division", "action": "athlete next"})
        moved = await coord.expect(is_update("division", "athlete next"))
        assert moved["division"]["current"] == 2 and "autopilot" not in moved["division"]
        await tablet.expect(is_update("division", "athlete next"))
        # the read's answer is the next frame; that the cancelled steps never come, and that no step
        # comes before its pause ends, is proven on a test clock: tests/freestyle/test_autopilot_node.py
        await tablet.sentinel({"type": "division", "action": "read"}, is_update("division", "read"))
        on_disk = parse_division((forms / "ring01" / "div.fs01.txt").read_text())
        assert on_disk["current"] == 2 and "autopilot" not in on_disk
        for p in (tablet, coord):
            await p.close()

    asyncio.run(scenario())


def test_transfer_write_from_staging_and_files_edited_on_disk(freescore, tmp_path):
    """Checklist 12, 13, 14 and §17.5, §17.8, §17.11."""
    fs, forms = start(freescore, tmp_path)

    async def scenario() -> None:
        base = fs.url(0, "ws")
        coord = await Peer.connect(base, "/freestyle/test/1/computer+operator")
        ring2 = await Peer.connect(base, "/freestyle/test/2/computer+operator")
        admin = await Peer.connect(base, "/freestyle/test/staging/admin")
        written = {"name": "fs10", "description": "Staged", "judges": 3, "athletes": [{"name": "Pella Quist"}]}
        await admin.send({"type": "division", "action": "write", "division": written})
        ok = await admin.expect(lambda f: f.get("action") == "write ok")
        assert ok["division"]["file"] == str(forms / "staging" / "div.fs10.txt")
        assert (forms / "staging" / "div.fs10.txt").exists()
        # navigate to a staging division: it moves into the ring and the ring update shows it (§17.11)
        await coord.send({"type": "division", "action": "navigate", "target": {"destination": "division",
                                                                             "divid": "fs10"}})
        ring = await coord.expect(is_update("ring", "navigate"))
        assert ring["ring"]["current"] == "fs10" and "fs10" in [d["name"] for d in ring["ring"]["divisions"]]
        assert (forms / "ring01" / "div.fs10.txt").exists() and not (forms / "staging" / "div.fs10.txt").exists()
        # transfer the current division to ring 2: its next write lands in ring02 only (§17.5)
        await coord.send({"type": "ring", "action": "transfer", "name": "fs10", "transfer": 2})
        ring = await coord.expect(is_update("ring", "transfer"))
        assert ring["ring"]["current"] == "fs01"
        assert (forms / "ring01" / "progress.txt").read_text() == "# current=fs01\n# name=1\n"
        await ring2.send({"type": "division", "action": "navigate", "target": {"destination": "division",
                                                                             "divid": "fs10"}})
        await ring2.expect(is_update("ring", "navigate"))
        await ring2.send({"type": "division", "action": "athlete next"})
        await ring2.expect(is_update("division", "athlete next"))
        assert not (forms / "ring01" / "div.fs10.txt").exists()
        stored = parse_division((forms / "ring02" / "div.fs10.txt").read_text())
        assert stored["file"] == str(forms / "ring02" / "div.fs10.txt") and stored["state"] == "score"
        # write over it with overwrite: an athlete keeping its name keeps its scores
        await ring2.send(score_request(0))
        await ring2.expect(is_update("division", "score"))
        again = {**written, "athletes": [{"name": "Pella Quist"}, {"name": "New Person"}]}
        await ring2.send({"type": "division", "action": "write", "division": again})
        assert (await ring2.expect(lambda f: "write" in f.get("action", "")))["action"] == "write error"
        await ring2.send({"type": "division", "action": "write", "division": again, "overwrite": True})
        await ring2.expect(lambda f: f.get("action") == "write ok")
        stored = parse_division((forms / "ring02" / "div.fs10.txt").read_text())
        assert stored["athletes"][0]["scores"]["finals"][0]["technical"]["mft1"] == "0.7"
        assert [a["name"] for a in stored["athletes"]] == ["Pella Quist", "New Person"]
        # a file edited by another program is seen by the next request
        fs01 = forms / "ring01" / "div.fs01.txt"
        fs01.write_text(fs01.read_text().replace("Freestyle Female 18-30", "Edited"))
        await coord.send({"type": "division", "action": "read"})
        assert (await coord.expect(is_update("division", "read")))["division"]["description"] == "Edited"
        # ring 4 has no folder: an empty ring, the read failure only
        ring4 = await Peer.connect(base, "/freestyle/test/4/observer")
        await ring4.send({"type": "division", "action": "read"})
        failure = await ring4.expect(lambda f: "error" in f)
        assert "Division not in ring" in failure["error"]
        await ring4.sentinel({"type": "division", "action": "read"}, lambda f: f == failure)  # that error only
        for p in (coord, ring2, admin, ring4):
            await p.close()

    asyncio.run(scenario())


def test_judge_query_lists_judge_seats_and_concurrent_tablets_lose_nothing(freescore, tmp_path):
    """§17.7 (upstream answers the number 0) and §17.13 (no locking upstream): five tablets of ring 2
    score at once, each write is serialised, and the file ends with all five scores."""
    fs, forms = start(freescore, tmp_path)

    async def scenario() -> None:
        base = fs.url(0, "ws")
        seat = await Peer.connect(base, "/freestyle/test/2/judge3")
        tablets = [await Peer.connect(base, "/freestyle/test/2/observer") for _ in range(5)]
        await seat.send({"type": "division", "action": "judge query"})
        reply = await seat.expect(lambda f: f.get("action") == "judges")
        assert [j["judge"] for j in reply["judges"]] == [3] and isinstance(reply["judges"][0]["cid"], str)
        await asyncio.gather(*(t.send(score_request(j, f"0.{j + 4}")) for j, t in enumerate(tablets)))
        for j, t in enumerate(tablets):
            echoed = wire.annotate(score_request(j, f"0.{j + 4}"), "test")
            await t.expect(lambda f, echoed=echoed: f.get("request") == echoed)
        for p in (seat, *tablets):
            await p.close()

    asyncio.run(scenario())
    stored = parse_division((forms / "ring02" / "div.fs02.txt").read_text())
    panel = stored["athletes"][0]["scores"]["finals"]
    assert [s["technical"]["mft1"] for s in panel] == ["0.4", "0.5", "0.6", "0.7", "0.8"]
    assert stored["athletes"][0]["complete"] == {"finals": 1}


def test_beside_worldclass_in_one_process_on_its_own_listener(freescore, tmp_path):
    """Upstream's port 3082 layout: freestyle alone on a listener answers every other path with its JSON
    error; worldclass serves the same data root from another listener; a too large message closes 1009."""
    start_config = ('[[listen]]\nname = "main"\nendpoint = "tcp:0:interface=127.0.0.1"\n\n'
                    '[[listen]]\nname = "freestyle"\nendpoint = "tcp:0:interface=127.0.0.1"\n\n'
                    '[worldclass]\ndata = "data"\nlisten = ["main"]\n\n'
                    '[freestyle]\ndata = "data"\nlisten = ["freestyle"]\nmax_message = 4096\n')
    shutil.copytree(FORMS / "before", tmp_path / "data" / "test" / "forms-freestyle")
    fs = freescore(start_config)
    answer = requests.get(fs.url(1) + "/demo.php", timeout=5).json()
    assert answer == {"error": "FreeScore FreeStyle Service Error: Unknown command: demo.php"}
    assert [requests.get(fs.url(1) + p, timeout=5).text for p in ("/status", "/freestyle/status")] == ["OK", "OK"]
    elsewhere = requests.get(fs.url(0) + "/freestyle/status", timeout=5).json()  # worldclass's own listener
    assert elsewhere == {"error": "FreeScore Worldclass Service Error: Unknown command: freestyle/status"}

    async def scenario() -> None:
        free = await Peer.connect(fs.url(1, "ws"), "/freestyle/test/3/observer")
        world = await Peer.connect(fs.url(0, "ws"), "/worldclass/test/3/observer")
        for peer, kind in ((free, "freestyle"), (world, "worldclass")):
            await peer.send({"type": "ring", "action": "read"})
            ring = await peer.expect(is_update("ring", "read"))
            assert ring["ring"]["path"].endswith(f"forms-{kind}/ring03")
        await free.send(json.dumps({"type": "division", "action": "read", "pad": "x" * 5000}))
        await free._reader
        assert free.ws.close_code == 1009
        await world.close()

    asyncio.run(scenario())
