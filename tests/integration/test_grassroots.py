"""grassroots against a real `twistd freescore`: REST on its own listener, the WebSocket, the SSE stream.

The worked examples of spec §20 are replayed with scores sent as the tablet
sends them (REST) and as the ring computer would (WebSocket); answers are
compared with upstream's (JSON types included) and files with upstream's
snapshots, where the replacement deliberately differs as documented.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import threading
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "grassroots"))
from gr_client import (  # noqa: E402
    CORS,
    FRAMES,
    Peer,
    Rest,
    SseClient,
    as_replacement,
    assert_refused,
    config,
    make_rings,
    same_json,
    upstream,
    wait_until,
)

pytestmark = pytest.mark.integration
SSE = "/cgi-bin/freescore/forms/grassroots/update"


def start(freescore, tmp_path, data="data", **extra):
    forms = make_rings(tmp_path / data)
    fs = freescore(config(data=str(tmp_path / data), **extra))
    return fs, forms, Rest(fs.url(1))


def frame_file(name):
    return json.loads((FRAMES / name).read_text())


def rest_answer(name):
    return json.loads(frame_file(name)["raw"])


RING_READ = {"type": "ring", "action": "read"}
"""The sentinel: answered to its sender only, so it proves that nothing came before it."""


def is_ring_read(f):
    return set(f) == {"type", "action", "ring"} and f["type"] == "ring"


def is_update(action=None):
    return lambda f: f.get("action") == "update" and (action is None or f["request"]["action"] == action)


def div_text(forms, ring, divid):
    path = forms / f"ring{ring:02d}" / f"div.{divid}.txt"
    return path.read_text() if path.exists() else ""


class Scorer:
    """Sends a judge's score the way one transport does and returns what the sender gets."""

    def __init__(self, transport, rest, peer):
        self.transport, self.rest, self.peer = transport, rest, peer

    async def score(self, ring, judge, value):
        if self.transport == "rest":
            return self.rest.get(f"/test/{ring}/{judge}/{round(value * 10)}")
        await self.peer.send({"type": "division", "action": "score", "judge": judge, "score": value})
        return await self.peer.expect(is_update("score"))

    async def athlete(self, forms, ring, divid, row, then):
        """One athlete's scores, then wait until the autopilot has done `then` (a text in the file)."""
        answers = [await self.score(ring, j, v) for j, v in enumerate(row)]
        await asyncio.to_thread(wait_until, lambda: then in div_text(forms, ring, divid), 15, then)
        return answers


def post(rest, ring, divid, description, names, judges=3):
    return rest.post(f"/test/{ring}/{divid}", {"name": divid, "header": {"judges": judges, "description": description},
                                               "athletes": names})


# -- conformance checklist 1, 2, 3, 13 ----------------------------------------------------------


def test_http_side_status_unknown_and_cors(freescore, tmp_path):
    fs, _, rest = start(freescore, tmp_path)
    for base in (fs.url(1), fs.url(0) + "/grassroots/webservice"):
        r = requests.get(base + "/status", timeout=5)
        assert (r.status_code, r.text, r.headers["access-control-allow-origin"]) == (200, "OK", CORS)
        assert r.headers["content-type"] == "text/html;charset=UTF-8"
    r = requests.get(fs.url(1) + "/nope/x", timeout=5)
    assert (r.status_code, r.json(), r.headers["access-control-allow-origin"]) == (
        200, rest_answer("http-unknown.json"), CORS)
    same_json(rest.get("/test/1/8.3"), rest_answer("rest-dot-in-score.json"))
    assert requests.get(fs.url(0) + "/grassroots/status", timeout=5).text == "OK"
    r = requests.options(fs.url(1) + "/test/1/0/83", timeout=5)
    assert (r.status_code, r.headers["access-control-allow-origin"]) == (200, CORS)
    same_json(rest.get("/test/1/judges"), rest_answer("rest-judges-empty-ring.json"))
    same_json(rest.get("/test/9/judges"), {"division": None, "judges": None})  # upstream: HTTP 500 HTML
    for path in ("/test/1/0/83", "/test/1/athlete/next", "/test/1/display", "/test/1/division/next"):
        assert "error" in rest.get(path)  # an empty ring answers JSON


def test_upgrade_paths_and_traversal(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    (forms / "staging").mkdir()

    async def scenario():
        for base in (fs.url(0, "ws"), fs.url(1, "ws")):
            for path in ("/grassroots/test/1", "/grassroots/test/staging", "/grassroots/request/test/2"):
                peer = await Peer.connect(base, path)
                await peer.sentinel(RING_READ, is_ring_read)  # nothing is sent on connect
                await peer.close()
            await assert_refused(base, ("/grassroots/test/1/observer", "/grassroots/..%2F..%2Fetc/1",
                                        "/grassroots/test/..", "/grassroots/test/0", "/grassroots/nosuchdb/1",
                                        "/grassroots/.hidden/1"))

    asyncio.run(scenario())
    for path in ("/..%2F..%2Fetc/1/judges", "/test/..%2Fx/judges"):
        assert rest.get(path) == {"error": "FreeScore Grassroots: Unknown command"}
    assert rest.post("/test/1/..x", {"athletes": []}) == {"error": "FreeScore Grassroots: Unknown command"}
    assert rest.post("/te$t/1/p01", {"athletes": []}) == {"error": "Invalid db 'te$t'"}
    assert not any(p.name.startswith("div.") for p in (tmp_path / "data").rglob("*") if p.parent.name != "ring01")


def test_ring_read_answers_the_sender_only(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)

    async def scenario():
        a = await Peer.connect(fs.url(1, "ws"), "/grassroots/test/1")
        b = await Peer.connect(fs.url(1, "ws"), "/grassroots/test/1")
        await a.send({"type": "ring", "action": "read"})
        got = await a.next()
        expected = frame_file("ring-read-reply-empty-ring.json")
        folder = str(forms / "ring01")
        expected["ring"].update(file=folder + "/progress.txt", path=folder)
        same_json(got, expected)
        await b.sentinel(RING_READ, is_ring_read)  # a's read was not sent to b
        post(rest, 1, "p01", "8-9yo Beginner", ["Ana LIME", "Ben COVE", "Cal DUNE", "Dee FROST"])
        await a.send({"type": "ring", "action": "read"})
        got = await a.next()
        upstream_ring = frame_file("ring-read-reply.json")["ring"]
        assert got["ring"]["current"] == "p01" and set(got) == {"type", "action", "ring"}
        same_json(got["ring"]["divisions"][0], as_replacement(upstream_ring["divisions"][0], str(tmp_path / "data")))
        for p in (a, b):
            await p.close()

    asyncio.run(scenario())


# -- checklist 4 and upstream bug 1: every connection gets broadcasts, cookie or not -------------


def test_division_read_reaches_every_connection_with_or_without_cookies(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    post(rest, 1, "p01", "8-9yo Beginner", ["Ana LIME", "Ben COVE", "Cal DUNE", "Dee FROST"])

    async def scenario():
        base = fs.url(1, "ws")
        same_cookie = {"additional_headers": {"Cookie": "freescore-session=abc"}}
        peers = [await Peer.connect(base, "/grassroots/test/1"), await Peer.connect(base, "/grassroots/test/1"),
                 await Peer.connect(base, "/grassroots/test/1", **same_cookie),
                 await Peer.connect(base, "/grassroots/test/1", **same_cookie)]
        other = await Peer.connect(base, "/grassroots/test/2")
        digests = []
        for sender in (peers[0], peers[3]):
            await sender.send({"type": "division", "action": "read"})
            frames = [await p.expect(is_update("read")) for p in peers]
            assert all(f == frames[0] for f in frames)
            f = frames[0]
            assert f["request"] == {"type": "division", "action": "read", "ring": 1, "tournament": "test"}
            body = json.dumps(f["division"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            assert f["digest"] == hashlib.sha1(body.encode()).hexdigest()
            assert set(f) == {"type", "action", "digest", "division", "request"}
            digests.append(f["digest"])
        assert digests[0] == digests[1]
        upstream_frame = frame_file("division-read-reply.json")
        same_json(f["division"], as_replacement(upstream_frame["division"], str(tmp_path / "data")))
        await other.sentinel(RING_READ, is_ring_read)  # ring 1's reads did not reach ring 2
        await peers[1].close()  # a closed connection leaves its ring; the others still get everything
        await peers[0].send({"type": "division", "action": "read"})
        for p in (peers[0], peers[2], peers[3]):
            await p.expect(is_update("read"))
        for p in (peers[0], peers[2], peers[3], other):
            await p.close()

    asyncio.run(scenario())


# -- checklist 5, 6, 7: the worked examples over REST and WebSocket -----------------------------------


def run_example(freescore, tmp_path, transport, example):
    fs, forms, rest = start(freescore, tmp_path)

    async def scenario():
        peer = await Peer.connect(fs.url(1, "ws"), f"/grassroots/test/{example.ring}")
        await example(Scorer(transport, rest, peer), rest, forms, peer)
        await peer.close()

    asyncio.run(scenario())


async def example_20_1(s, rest, forms, peer):
    assert post(rest, 1, "p01", "8-9yo Beginner", ["Ana LIME", "Ben COVE", "Cal DUNE", "Dee FROST"]) == {
        "division": "p01", "status": "saved"}
    saved = div_text(forms, 1, "p01")
    assert post(rest, 1, "p01", "x", []) == json.loads(frame_file("rest-post-exists.json")["answer"])
    assert div_text(forms, 1, "p01") == saved  # `exists` changes nothing
    assert "# current=0\n# round=fin\n" in div_text(forms, 1, "p01")
    same_json(rest.get("/test/1/judges"), rest_answer("rest-judges.json"))
    answers = await s.athlete(forms, 1, "p01", [8.3, 8.5, 8.4], "# current=1")
    if s.transport == "rest":
        same_json(answers[0], {**rest_answer("rest-score-answer.json"), "athlete": 0})
    await asyncio.to_thread(wait_until, lambda: div_text(forms, 1, "p01") == upstream(
        "ring01/div.p01.1-athlete0-after-autopilot.txt"))
    await s.athlete(forms, 1, "p01", [8.6, 8.6, 8.5], "# current=2")
    await s.athlete(forms, 1, "p01", [8.0, 8.2, 8.1], "# current=3")
    await asyncio.to_thread(wait_until, lambda: div_text(forms, 1, "p01") == upstream(
        "ring01/div.p01.3-athlete2-after-autopilot.txt"))
    await s.athlete(forms, 1, "p01", [8.4, 8.4, 8.6], "# state=display")
    assert div_text(forms, 1, "p01") == upstream("ring01/div.p01.9-final.txt", drop=("# pending=3",))
    await peer.send({"type": "division", "action": "read"})
    final = await peer.expect(is_update("read"))
    expected = as_replacement(frame_file("division-read-p01-final.json")["division"], str(forms.parent.parent))
    same_json(final["division"], expected)
example_20_1.ring = 1


async def example_20_2(s, rest, forms, peer):
    post(rest, 2, "p02", "10-11yo Intermediate", ["Eli MOSS", "Fay REED", "Gus TERN"], judges=5)
    await s.athlete(forms, 2, "p02", [8.1, 8.4, 8.0, 8.6, 8.2], "# current=1")
    await s.athlete(forms, 2, "p02", [8.2] * 5, "# current=2")
    await s.athlete(forms, 2, "p02", [8.0, 8.2, 8.2, 8.2, 8.4], "# state=display")
    assert div_text(forms, 2, "p02") == upstream("ring02/div.p02.9-final.txt", drop=("# pending=2",))
    divisions = rest.get("/test/2/division/list")["divisions"]
    expected = as_replacement(frame_file("division-read-p02-final.json")["division"], str(forms.parent.parent))
    same_json(divisions[0], expected)
example_20_2.ring = 2


async def example_20_3(s, rest, forms, peer):
    post(rest, 3, "p03", "12-14yo Advanced", ["Hal BRIM", "Ivy COLT", "Jon DALE"])
    await s.athlete(forms, 3, "p03", [8.5] * 3, "# current=1")
    await s.athlete(forms, 3, "p03", [8.4, 8.6, 8.5], "# current=2")
    last = await s.athlete(forms, 3, "p03", [8.0] * 3, "# state=tiebreaker")
    if s.transport == "rest":
        same_json(last[-1], {"athlete": 0, "judge": 3, "score": 8.0})
    tied = upstream("ring03/div.p03.9-final.txt", drop=("# pending=2", "# placements=0,1"),
                    add=(("# tied=1:0,1", "# placements=0,1,2"),))
    assert div_text(forms, 3, "p03") == tied
    same_json(rest.get("/test/3/judges"), {"division": "p03", "judges": 3})
    same_json(rest.get("/test/3/0/tb/blue"), {**rest_answer("rest-tb-vote-answer.json"), "athlete": 0})
    text = div_text(forms, 3, "p03")
    assert "Hal BRIM\t\t8.5\t8.5\t8.5\t1\t-\t-\n" in text and "Ivy COLT\t\t8.4\t8.6\t8.5\t0\t-\t-\n" in text
    assert rest.get("/test/3/1/tb/red")["tiebraker"] == "red"
    assert rest.get("/test/3/2/tb/blue")["judge"] == 3
    text = div_text(forms, 3, "p03")
    assert "Hal BRIM\t\t8.5\t8.5\t8.5\t1\t0\t1\n" in text and "Ivy COLT\t\t8.4\t8.6\t8.5\t0\t1\t0\n" in text
    assert "# tied" not in text and "# placements=0,1,2\n" in text and "# state=tiebreaker\n" in text
    await peer.send({"type": "division", "action": "read"})
    div = (await peer.expect(is_update("read")))["division"]
    assert "tied" not in div and div["placements"] == [0, 1, 2] and div["athletes"][0]["notes"] == "TB"
    assert (div["athletes"][0]["tb"], div["athletes"][1]["tb"]) == (2, 1)
    same_json(rest.get("/test/3/display"), rest_answer("rest-display-from-tiebreaker.json"))
example_20_3.ring = 3


async def example_20_4(s, rest, forms, peer):
    post(rest, 5, "p05", "WebSocket flow", ["Oli GUM", "Pat HAZ", "Quin IVY"])
    data = str(forms.parent.parent)

    def check(frame, name):
        up = frame_file(name)
        same_json(frame["request"], up["request"])
        same_json(frame["division"], as_replacement(up["division"], data))

    await peer.send({"type": "division", "action": "award penalty", "penalty": {"bounds": 0.3, "restart": 0.6}})
    check(await peer.expect(is_update("award penalty")), "ws-award-penalty-broadcast.json")
    assert div_text(forms, 5, "p05") == upstream("ring05/div.p05.1-after-penalty.txt", drop=("# current=",),
                                                 add=(("# state=display", "# current=0"),))
    for j, v in enumerate([8.3, 8.5, 8.4]):
        answer = await s.score(5, j, v)
        if s.transport == "ws":
            check(answer, f"ws-score-broadcast-judge{j}.json")
    if s.transport == "ws":
        check(await peer.expect(is_update("score-display")), "ws-autopilot-score-display.json")
        check(await peer.expect(is_update("leaderboard-display")), "ws-autopilot-leaderboard-display-t08.json")
        check(await peer.expect(is_update("navigate")), "ws-autopilot-navigate-t13.json")
        check(await peer.expect(is_update("navigate")), "ws-autopilot-navigate-t17.json")
    await asyncio.to_thread(wait_until, lambda: div_text(forms, 5, "p05") == upstream(
        "ring05/div.p05.3-after-autopilot.txt"))
    await peer.send({"type": "division", "action": "disqualify"})
    check(await peer.expect(is_update("disqualify")), "ws-disqualify-frame0.json")
    check(await peer.expect(is_update("score-display")), "ws-disqualify-frame1.json")
    assert div_text(forms, 5, "p05") == upstream("ring05/div.p05.4-after-dsq.txt")
    await peer.expect(lambda f: f.get("request", {}).get("athlete") == 2)  # the autopilot moves on to Quin
    await peer.expect(lambda f: f.get("request", {}).get("athlete") == 2)
    await peer.send({"type": "division", "action": "navigate", "target": {"destination": "athlete", "id": "2"}})
    check(await peer.expect(is_update("navigate")), "ws-navigate-athlete.json")
    await peer.send({"type": "division", "action": "display"})
    check(await peer.expect(is_update("display")), "ws-display.json")
    assert div_text(forms, 5, "p05") == upstream("ring05/div.p05.5-after-navigate-display.txt")
example_20_4.ring = 5


async def example_20_5(s, rest, forms, peer):
    post(rest, 6, "p06", "Clear test", ["Max ELM", "Ned FIR"])
    await s.score(6, 0, 8.3)
    await s.score(6, 1, 8.5)
    clear = await s.score(6, 0, -1.0)
    if s.transport == "rest":
        same_json(clear, {**rest_answer("rest-clear-answer.json"), "athlete": 0})
    assert "Max ELM\t\t-\t8.5\t-\t-\t-\t-\n" in div_text(forms, 6, "p06")
    await s.score(6, 2, 8.4)
    assert "Max ELM\t\t-\t8.5\t8.4\t-\t-\t-\n" in div_text(forms, 6, "p06")
    same_json(rest.get("/test/6/display"), rest_answer("rest-display.json"))
    listed = rest.get("/test/6/division/list")["divisions"][0]
    assert listed["athletes"][0]["scores"] == ["-", 8.5, 8.4] and listed["athletes"][0]["score"] == 16.9
example_20_5.ring = 6


@pytest.mark.parametrize("transport", ["rest", "ws"])
@pytest.mark.parametrize("example", [example_20_1, example_20_2, example_20_3, example_20_4, example_20_5],
                         ids=lambda e: e.__name__)
def test_worked_example(freescore, tmp_path, transport, example):
    run_example(freescore, tmp_path, transport, example)


def test_division_next_and_previous_wrap_and_write_progress(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    for divid in ("p01", "p02", "p03"):
        post(rest, 1, divid, divid, ["Ana LIME"])
    progress = forms / "ring01" / "progress.txt"
    for path, current in (("next", "p02"), ("next", "p03"), ("next", "p01"), ("previous", "p03")):
        same_json(rest.get(f"/test/1/division/{path}"), {"current": current})
        assert progress.read_text() == f"# current={current}\n"
    same_json(rest.get("/test/1/judges"), {"division": "p03", "judges": 3})
    same_json(rest.get("/test/1/athlete/previous"), {"current": 0, "state": "score"})


# -- checklist 10, upstream bug 2: the autopilot --------------------------------------------------


def test_rest_autopilot_steps_and_manual_navigation_cancels(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path, times=(0.0, 0.3, 60.0, 61.0))
    post(rest, 4, "p04", "Stale autopilot", ["Kim ASH", "Lou BAY", "Mo CAY"])
    for j, v in enumerate([80, 81, 82]):
        rest.get(f"/test/4/{j}/{v}")
    wait_until(lambda: "# state=score\n" in div_text(forms, 4, "p04"), what="score step")
    wait_until(lambda: "# state=display\n" in div_text(forms, 4, "p04"), what="leaderboard step")
    # cancels the autopilot (that its steps never come: tests/grassroots/test_autopilot_node.py)
    same_json(rest.get("/test/4/athlete/next"), rest_answer("rest-athlete-next.json"))
    same_json(rest.get("/test/4/0/77"), {"athlete": 1, "judge": 1, "score": 7.7})
    text = div_text(forms, 4, "p04")
    assert "Lou BAY\t\t7.7\t-\t-\t-\t-\t-\n" in text and "# current=1\n" in text


def test_autopilot_never_wipes_a_score_entered_during_its_pause(freescore, tmp_path):
    # Kim completes at C: next athlete at C+0.5, the last step would be due at C+60, so Lou's first
    # score surely lands inside that pause. That the cancelled last step never writes a stale copy
    # over Lou's scores is proven on a test clock: tests/grassroots/test_autopilot_node.py.
    fs, forms, rest = start(freescore, tmp_path, times=(0.0, 0.5, 0.5, 60.0))
    post(rest, 4, "p04", "Stale autopilot", ["Kim ASH", "Lou BAY"])
    for j, v in enumerate([80, 81, 82]):
        rest.get(f"/test/4/{j}/{v}")
    wait_until(lambda: "# current=1\n" in div_text(forms, 4, "p04"), what="next athlete step")
    rest.get("/test/4/0/77")  # inside the pause before the last step: upstream's stale copy wiped it (ring04)
    assert div_text(forms, 4, "p04") == upstream("ring04/div.p04.1-next-athlete-scored-during-autopilot.txt")
    rest.get("/test/4/1/78")
    rest.get("/test/4/2/79")
    wait_until(lambda: "# state=display\n" in div_text(forms, 4, "p04"), what="Lou's leaderboard step")
    text = div_text(forms, 4, "p04")
    assert "Lou BAY\t\t7.7\t7.8\t7.9\t-\t-\t-\n" in text and "# placements=0,1\n" in text


def test_ws_clients_see_rest_changes_only_through_the_files_and_sse(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    post(rest, 1, "p01", "x", ["A", "B"])

    async def scenario():
        peer = await Peer.connect(fs.url(1, "ws"), "/grassroots/test/1")
        rest.get("/test/1/0/83")
        await peer.sentinel(RING_READ, is_ring_read)  # as upstream: REST changes are not broadcast (§7 note 5)
        await peer.close()

    asyncio.run(scenario())


# -- checklist 12, upstream bug 3: files changed by others, atomic writes before any broadcast ------------


def test_file_changed_on_disk_is_seen_and_no_reader_sees_a_partial_file(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    post(rest, 1, "p01", "x", [f"Athlete {i}" for i in range(40)])
    path = forms / "ring01" / "div.p01.txt"
    path.write_text(path.read_text().replace("# description=x", "# description=edited by PHP"))
    assert rest.get("/test/1/division/list")["divisions"][0]["description"] == "edited by PHP"
    stop = threading.Event()
    bad: list[str] = []

    def reader():
        while not stop.is_set():
            text = path.read_text()
            if not (text.startswith("# state=") and text.endswith("\n") and text.count("\nAthlete ") == 40):
                bad.append(text)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(60):
            rest.get(f"/test/1/{i % 3}/{80 + i % 10}")
    finally:
        stop.set()
        t.join()
    assert bad == []

    async def scenario():
        peer = await Peer.connect(fs.url(1, "ws"), "/grassroots/test/1")
        for v in (8.1, 8.2, 8.3):
            await peer.send({"type": "division", "action": "score", "judge": 1, "score": v})
            frame = await peer.expect(is_update("score"))
            on_disk = path.read_text()  # the frame arrived: the file already says so
            assert frame["division"]["athletes"][frame["division"]["current"]]["scores"][1] == v
            current = frame["division"]["current"]
            line = next(ln for ln in on_disk.splitlines() if ln.startswith(f"Athlete {current}\t"))
            assert line.split("\t")[3] == str(v)
        await peer.close()

    asyncio.run(scenario())


# -- bad input gets the service's error form ------------------------------------------------------------------


def test_bad_input_gets_error_frames_or_a_clean_close(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path, max_message=4096)
    post(rest, 1, "p01", "x", ["A", "B"])
    before = div_text(forms, 1, "p01")

    async def scenario():
        peer = await Peer.connect(fs.url(1, "ws"), "/grassroots/test/1")
        for bad, message in [
            ("not json", "Invalid JSON"), ("[1,2]", "Invalid request: not a JSON object"),
            ({"type": "division"}, "Invalid request: 'action' must be a non-empty string"),
            ({"type": "division", "action": "score", "judge": 7, "score": 8}, "Invalid judge '7'"),
            ({"type": "division", "action": "score", "judge": 0, "score": "high"}, "Invalid score 'high'"),
            ({"type": "division", "action": "score", "judge": True, "score": 8}, "Invalid judge 'True'"),
            ({"type": "division", "action": "navigate", "target": {"destination": "athlete", "id": 5}},
             "Invalid athlete '5'"),
            ({"type": "division", "action": "navigate", "target": {"destination": "division", "id": "../../x"}},
             "Invalid division '../../x'"),
            (b"\x00\x01", "Invalid request: binary frames are not supported"),
        ]:
            await peer.send(bad)
            f = await peer.next()
            assert set(f) == {"error"} and f["error"].startswith(message), (bad, f)
        await peer.send({"type": "division", "action": "nonsense"})
        await peer.send({"type": "nonsense", "action": "read"})
        await peer.sentinel(RING_READ, is_ring_read)  # unknown requests: silence
        await peer.send("x" * 10000)
        await peer._reader
        assert peer.ws.close_code == 1009
        ok = await Peer.connect(fs.url(1, "ws"), "/grassroots/test/1")  # the service still runs
        await ok.send({"type": "division", "action": "read"})
        await ok.expect(is_update("read"))
        await ok.close()

    asyncio.run(scenario())
    assert div_text(forms, 1, "p01") == before
    for path, message in [("/test/1/5/83", "Invalid judge '5'"), ("/test/1/0/999x", "Invalid score '999x'"),
                          ("/test/1/0/vote/blue", "Division p01 is not single elimination"),
                          ("/test/1/0/tb/blue", "No tie to break in division p01")]:
        assert rest.get(path) == {"error": message}
    r = requests.post(fs.url(1) + "/test/1/p02", data=b"{oops", timeout=5)
    assert r.status_code == 200 and r.json() == {"error": "Invalid division: not JSON"}
    assert div_text(forms, 1, "p01") == before and not (forms / "ring01" / "div.p02.txt").exists()


# -- SSE (§7.4) ----------------------------------------------------------------------------------------------------


def test_sse_sees_every_change_once_and_resumes_with_last_event_id(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path, sse_heartbeat=0.5)
    post(rest, 1, "p01", "x", ["Ana LIME", "Ben COVE"])
    sse = SseClient(fs.port(1), SSE + "?tournament=test&ring=1")
    sse.wait(lambda c: len(c.events) == 1, what="the state on connect")
    assert sse.status == 200 and sse.headers["content-type"] == "text/event-stream"
    assert sse.headers["cache-control"] == "no-cache" and sse.headers["access-control-allow-origin"] == CORS
    first = sse.events[0]["data"]
    assert first["current"] == "p01" and first["divisions"][0]["athletes"][0]["name"] == "Ana LIME"
    rest.get("/test/2/0/83")  # another ring: not this stream's change
    changes = ["/test/1/0/83", "/test/1/1/85", "/test/1/display", "/test/1/athlete/next", "/test/1/athlete/previous"]
    for path in changes:
        rest.get(path)
    sse.wait(lambda c: len(c.events) == 1 + len(changes), what="one event per change")
    sse.wait(lambda c: c.comments >= 2, what="heartbeats")
    assert len(sse.events) == 1 + len(changes)  # each change once, no repeats on the heartbeats
    ids = [e["id"] for e in sse.events]
    assert ids == sorted(set(ids))
    scores = [e["data"]["divisions"][0]["athletes"][0]["scores"] for e in sse.events]
    assert scores[1:3] == [[8.3, "-", "-"], [8.3, 8.5, "-"]]
    assert [e["data"]["divisions"][0]["current"] for e in sse.events[-2:]] == [1, 0]
    sse.close()
    seen = sse.events[2]["id"]
    rest.get("/test/1/display")  # while disconnected
    again = SseClient(fs.port(1), SSE + "?tournament=test", last_event_id=seen, cookie="ring=1")
    again.wait(lambda c: len(c.events) == 4, what="the missed events")
    assert [e["id"] for e in again.events[:-1]] == ids[3:]
    assert again.events[-1]["data"]["divisions"][0]["state"] == "display"
    again.close()
    stale = SseClient(fs.port(1), SSE + "?tournament=test&ring=1", last_event_id=1)
    stale.wait(lambda c: len(c.events) == 1, what="the current state for an unknown id")
    assert stale.events[0]["id"] == again.events[-1]["id"]
    path = forms / "ring01" / "div.p01.txt"
    path.write_text(path.read_text().replace("# description=x", "# description=from PHP"))
    stale.wait(lambda c: len(c.events) == 2, what="a change another program wrote")
    assert stale.events[1]["data"]["divisions"][0]["description"] == "from PHP"
    stale.close()
    for query, status in (("?tournament=test&ring=0", 400), ("?tournament=..&ring=1", 400), ("?ring=1", 400),
                          ("?tournament=nosuch&ring=1", 404)):
        r = requests.get(fs.url(1) + SSE + query, timeout=5)
        assert r.status_code == status and "error" in r.json()


def test_sse_streams_websocket_changes_and_autopilot_steps_each_once(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    post(rest, 1, "p01", "x", ["Ana LIME", "Ben COVE"])
    sse = SseClient(fs.port(0), SSE + "?tournament=test&ring=1")  # the shared listener serves it too
    sse.wait(lambda c: len(c.events) == 1, what="the state on connect")

    async def scenario():
        peer = await Peer.connect(fs.url(1, "ws"), "/grassroots/test/1")
        for j, v in enumerate([8.3, 8.5, 8.4]):
            await peer.send({"type": "division", "action": "score", "judge": j, "score": v})
            await peer.expect(is_update("score"))
        await peer.expect(is_update("navigate"))
        await peer.expect(is_update("navigate"))  # the autopilot's last step
        await peer.close()

    asyncio.run(scenario())

    def div(e):
        return e["data"]["divisions"][0]

    sse.wait(lambda c: div(c.events[-1])["current"] == 1, what="the autopilot's next athlete")
    datas = [json.dumps(e["data"], sort_keys=True) for e in sse.events]
    assert all(a != b for a, b in zip(datas, datas[1:], strict=False))  # a state is streamed once
    scores = [div(e)["athletes"][0]["scores"] for e in sse.events]
    assert scores[1:4] == [[8.3, "-", "-"], [8.3, 8.5, "-"], [8.3, 8.5, 8.4]]
    states = [(div(e)["state"], div(e)["current"]) for e in sse.events[3:]]
    assert ("display", 0) in states and states[-1] == ("score", 1)
    last = div(sse.events[-1])
    assert f"# state={last['state']}\n# current={last['current']}\n" in div_text(forms, 1, "p01")
    sse.close()


def test_tablet_clear_of_a_tiebreaker_clears_that_judge_only(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    post(rest, 1, "p01", "three-way", ["Ann A", "Bea B", "Cy C"])
    for athlete in range(3):
        for j in range(3):
            rest.get(f"/test/1/{j}/85")
        if athlete < 2:
            wait_until(lambda a=athlete: f"# current={a + 1}\n" in div_text(forms, 1, "p01"), what="next athlete")
    wait_until(lambda: "# tied=1:0,1,2\n" in div_text(forms, 1, "p01"), what="the three-way tie")
    text = div_text(forms, 1, "p01")
    assert "# state=tiebreaker\n" in text and "# current=0\n" in text and "# round=tb\n" in text
    same_json(rest.get("/test/1/0/tb/85"), {"athlete": 0, "judge": 1, "tiebraker": 8.5})
    rest.get("/test/1/1/tb/86")
    assert "Ann A\t\t8.5\t8.5\t8.5\t8.5\t8.6\t-\n" in div_text(forms, 1, "p01")
    same_json(rest.get("/test/1/0/tb/-10"), {"athlete": 0, "judge": 1, "tiebraker": -1.0})  # the tablet's Clear
    text = div_text(forms, 1, "p01")
    assert "Ann A\t\t8.5\t8.5\t8.5\t-\t8.6\t-\n" in text  # judge 1's vote stays in its own column
    assert "# tied=1:0,1,2\n" in text
    listed = rest.get("/test/1/division/list")["divisions"][0]["athletes"][0]
    assert listed["tiebreakers"] == ["-", 8.6, "-"]
