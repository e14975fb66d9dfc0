"""worldclass against a real `twistd freescore` on a copy of the upstream fixtures, driven with `websockets`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
import requests
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "worldclass"))
from wc_client import Peer, assert_refused, config, copy_fixtures, is_error, is_update, score, snapshot  # noqa: E402

from freescore.worldclass.divfile import parse_division, parse_progress  # noqa: E402
from freescore.worldclass.scoring import compute  # noqa: E402

pytestmark = pytest.mark.integration


def start(freescore, tmp_path, **overrides):
    forms = copy_fixtures(tmp_path)
    fs = freescore(config(**overrides))
    return fs, forms


def test_http_side(freescore, tmp_path):
    fs, _ = start(freescore, tmp_path)
    r = requests.get(fs.url() + "/worldclass/status", timeout=5)
    assert r.status_code == 200 and r.text == "OK"
    assert r.headers["access-control-allow-origin"] == "http://localhost:8073"
    r = requests.get(fs.url() + "/worldclass/foo/bar", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "FreeScore Worldclass Service Error: Unknown command: worldclass/foo/bar"}
    assert r.headers["access-control-allow-origin"] == "http://localhost:8073"
    r = requests.post(fs.url() + "/worldclass/webservice/x", timeout=5)
    assert r.json()["error"].endswith("Unknown command: worldclass/webservice/x")
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


def test_upgrade_paths(freescore, tmp_path):
    fs, _ = start(freescore, tmp_path)
    base = fs.url(0, "ws")

    async def scenario():
        for path in ("/worldclass/test/1/judge1", "/worldclass/request/test/1/judge1",
                     "/worldclass/test/staging/computer+operator"):
            peer = await Peer.connect(base, path)
            # the client speaks first (a users update about the previous peer leaving may still arrive)
            await peer.sentinel({"type": "ring", "action": "read"}, is_update("ring", "read"),
                                skip=lambda f: f.get("type") == "users")
            await peer.close()
        await assert_refused(base, ("/worldclass/test/x/judge1", "/worldclass/..%2F..%2Fetc/1/judge1",
                                    "/worldclass/test/01/j", "/worldclass/test/1000/judge1",
                                    "/worldclass/.hidden/1/judge1"))

    asyncio.run(scenario())


def test_read_digest_rings_and_fixture_totals(freescore, tmp_path):
    fs, forms = start(freescore, tmp_path)
    base = fs.url(0, "ws")

    async def scenario():
        obs1 = await Peer.connect(base, "/worldclass/test/1/observer")
        j0 = await Peer.connect(base, "/worldclass/test/1/judge0")
        obs2 = await Peer.connect(base, "/worldclass/test/2/observer")
        await obs1.send({"type": "division", "action": "read"})
        first = await obs1.expect(is_update("division", "read"))
        await j0.expect(is_update("division", "read"))  # every ring member gets it
        assert first["request"]["ring"] == "1" and first["division"]["ring"] == 1
        assert first["division"]["name"] == "p01" and first["request"]["tournament"] == "test"
        assert first["request"]["from"]["role"] == "observer"
        await obs1.send({"type": "division", "action": "read"})
        second = await obs1.expect(is_update("division", "read"))
        assert second["digest"] == first["digest"]
        assert [u["role"] for u in second["users"]] == ["Judge0", "Observer"]
        for u in second["users"]:
            assert u["health"] == "strong" and len(u["cid"]) == 5 and u["cid"][0] == "-"
        await j0.send(score(0, 0.3, 0.6, 1.5, 1.4, 1.3))
        scored = await obs1.expect(is_update("division", "score"))
        assert scored["digest"] != first["digest"]
        judge = scored["division"]["athletes"][0]["scores"]["prelim"]["forms"][0]["judge"][0]
        assert judge["major"] == 0.3 and judge["ki"] == 1.3 and judge["accuracy"] == 3.1
        assert judge["presentation"] == 4.2
        # ring 2 saw none of it; its own read shows the fixture's finals total
        await obs2.send({"type": "division", "action": "read"})
        r2 = await obs2.expect(is_update("division"))
        assert [f for f in obs2.frames if f is not r2 and f.get("type") == "division"] == []
        assert r2["division"]["athletes"][0]["scores"]["finals"]["forms"][0]["adjusted"]["total"] == 6.466
        assert r2["request"]["ring"] == "2"
        # ring read: own divisions then staging; name is the URL string
        await obs1.send({"type": "ring", "action": "read"})
        ring = await obs1.expect(is_update("ring", "read"))
        assert ring["ring"]["name"] == "1" and ring["ring"]["current"] == "p01"
        assert [d["name"] for d in ring["ring"]["divisions"]] == ["p01", "p02", "p03", "p04"]
        # a division file edited on disk by another program is seen by the next request
        p03 = forms / "ring01" / "div.p03.txt"
        p03.write_text(p03.read_text().replace("Female Cadets", "Female Cadets (edited)"))
        await obs1.send({"type": "division", "action": "read", "divid": "p03"})
        edited = await obs1.expect(is_update("division", "read"))
        assert edited["division"]["description"] == "Female Cadets (edited)"
        for p in (obs1, j0, obs2):
            await p.close()

    asyncio.run(scenario())


def marks_for(athlete: int) -> tuple[float, float, float, float, float]:
    """Marks that rise strictly with the athlete id, in 0.1 steps (athlete 21 is best)."""
    rhythm = 0.5 + 0.1 * min(athlete, 15)
    power = 0.5 + 0.1 * max(0, athlete - 15)
    return (0.0, 0.3, round(rhythm, 1), round(power, 1), 1.0)


def test_play_prelim_semfin_finals(freescore, tmp_path):
    fs, forms = start(freescore, tmp_path)
    base = fs.url(0, "ws")

    async def scenario():
        judges = [await Peer.connect(base, f"/worldclass/test/1/judge{j}") for j in range(5)]
        operator = await Peer.connect(base, "/worldclass/test/1/computer+operator")
        displays = [await Peer.connect(base, "/worldclass/test/1/observer") for _ in range(2)]
        await operator.send({"type": "division", "action": "read"})
        state = (await displays[0].expect(is_update("division", "read")))["division"]
        digests = [None]
        leaderboards = 0
        performed = {"prelim": [], "semfin": [], "finals": []}
        steps = 0
        while True:
            rnd, current, form = state["round"], state["current"], state["form"]
            performed[rnd].append((current, form))
            marks = marks_for(current)
            for j, peer in enumerate(judges):
                await peer.send(score(j, *marks))
            for d in displays:
                await d.expect(lambda f: is_update("division", "score")(f)
                               and f["request"]["score"]["judge"] == 4, what="last score")
            board = await displays[0].expect(is_update("division", "scoreboard"), what="scoreboard")
            assert board["type"] == "division" and board["division"]["autopilot"] == "on"
            order = board["division"]["order"][rnd]
            position = order.index(current) + 1
            last_form = form == len(board["division"]["forms"][rnd]) - 1
            if last_form and (position % 2 == 0 or position == len(order)):
                shown = await displays[0].expect(is_update("division", "leaderboard"), what="leaderboard")
                assert shown["type"] == "division" and shown["division"]["state"] == "display"
                leaderboards += 1
            nxt = await displays[0].expect(is_update("division", "next"), what="autopilot next")
            await displays[1].expect(is_update("division", "next"), what="autopilot next on display 2")
            assert nxt["digest"] != digests[-1]
            digests.append(nxt["digest"])
            state = nxt["division"]
            assert state["state"] == "score" and state["autopilot"] == "off"
            steps += 1
            if rnd == "finals" and (state["round"], state["current"], state["form"]) == (rnd, current, form):
                break  # last form of the last finalist: autopilot stays put
            assert steps < 60
        # leaderboard only after an even position or the last athlete (last form): none skipped, none extra
        assert leaderboards == 11 + 6 + 4
        assert sum(f.get("request", {}).get("action") == "leaderboard" for f in displays[0].frames) == leaderboards
        assert len(performed["prelim"]) == 22
        assert len(state["order"]["semfin"]) == 11
        assert sorted(state["order"]["semfin"]) == list(range(11, 22))
        assert len(performed["semfin"]) == 11
        assert state["order"]["finals"] == list(range(14, 22))  # top 8 of semfin, best last
        assert performed["finals"] == [(a, f) for a in range(14, 22) for f in (0, 1)]
        assert state["placement"]["finals"] == list(range(21, 13, -1))
        assert state["pending"]["finals"] == []
        # the judges' users view: 8 clients, sorted by raw role then cid, all strong
        users = nxt["users"]
        assert [u["role"] for u in users] == ["Computer Operator", "Judge0", "Judge1", "Judge2", "Judge3",
                                              "Judge4", "Observer", "Observer"]
        assert {u["health"] for u in users} == {"strong"}
        # what is on disk is what was broadcast
        div = parse_division((forms / "ring01" / "div.p01.txt").read_text(), "p01")
        assert div.order["semfin"] == state["order"]["semfin"] and div.order["finals"] == state["order"]["finals"]
        res = compute(div)
        assert res.placement["finals"] == state["placement"]["finals"]
        best = state["athletes"][21]["scores"]["finals"]
        assert res.rounds["finals"][21].adjusted_total == best["adjusted"]["total"]
        # a judge leaving: the rest get a users update without any session id
        await judges[4].close()
        gone = await displays[0].expect(is_update("users"), what="disconnect update")
        assert gone["request"]["user"]["action"] == "disconnect" and "sessid" not in gone["request"]["user"]
        assert len(gone["users"]) == 7
        for p in [*judges[:4], operator, *displays]:
            await p.close()

    asyncio.run(scenario())


def test_autopilot_cancelled_by_navigation(freescore, tmp_path):
    fs, forms = start(freescore, tmp_path, scoreboard_delay=3.0, leaderboard_delay=3.0)
    base = fs.url(0, "ws")

    async def scenario():
        judges = [await Peer.connect(base, f"/worldclass/test/1/judge{j}") for j in range(5)]
        operator = await Peer.connect(base, "/worldclass/test/1/computer+operator")
        for j, peer in enumerate(judges):
            await peer.send(score(j, 0.3, 0.6, 1.5, 1.4, 1.3))
        await operator.expect(is_update("division", "scoreboard"))
        # the operator moves on by hand during the pause
        await operator.send({"type": "division", "action": "navigate",
                             "target": {"destination": "athlete", "index": "5"}})
        manual = await operator.expect(is_update("division", "navigate"))
        assert manual["division"]["current"] == 5
        div = parse_division((forms / "ring01" / "div.p01.txt").read_text(), "p01")
        assert div.current == 5 and div.autopilot == "off"
        # athlete next walks order[round], not ids; its answer is the next frame (that the cancelled
        # steps never come is proven on a test clock: tests/worldclass/test_autopilot_node.py)
        moved = await operator.sentinel({"type": "division", "action": "athlete next"},
                                        is_update("division", "athlete next"))
        assert moved["division"]["current"] == 6
        for p in [*judges, operator]:
            await p.close()

    asyncio.run(scenario())


def test_bad_input_gets_errors_and_changes_nothing(freescore, tmp_path):
    fs, forms = start(freescore, tmp_path)
    base = fs.url(0, "ws")
    before = snapshot(tmp_path / "data")

    async def scenario():
        peer = await Peer.connect(base, "/worldclass/test/1/judge1")
        bad = [
            "not json",
            "[1, 2]",
            json.dumps({"type": "division"}),
            json.dumps({"type": 3, "action": "read"}),
            json.dumps({"type": "division", "action": "fly"}),
            json.dumps({"type": "nope", "action": "read"}),
            json.dumps({"type": "division", "action": "score"}),
            json.dumps({"type": "division", "action": "score", "score": "x"}),
            json.dumps({"type": "division", "action": "score", "score": {"judge": 9, "major": "0.3"}}),
            json.dumps({"type": "division", "action": "score", "score": {"judge": 1, "major": "abc"}}),
            json.dumps({"type": "division", "action": "score", "score": {"judge": 1, "rhythm": "7"}}),
            json.dumps({"type": "division", "action": "read", "divid": "../../../etc/passwd"}),
            json.dumps({"type": "division", "action": "read", "divid": "nosuch"}),
            json.dumps({"type": "ring", "action": "transfer", "name": "../p01", "transfer": 2}),
            json.dumps({"type": "ring", "action": "transfer", "name": "p01", "transfer": "../../x"}),
            json.dumps({"type": "ring", "action": "division delete", "divid": "../ring02/div.p10"}),
            json.dumps({"type": "division", "action": "navigate", "target": {"destination": "athlete",
                                                                            "index": "x"}}),
            json.dumps({"type": "division", "action": "restore", "version": "9.9"}),
            json.dumps({"type": "division", "action": "write", "division": {"name": "../../evil"}}),
            json.dumps({"type": "division", "action": "award punitive", "decision": "banish"}),
        ]
        for frame in bad:
            await peer.send(frame)
            err = await peer.expect(lambda f: "error" in f, what=f"error for {frame}")
            assert "type" not in err, frame
        await peer.send(b"\x00\x01binary")
        assert is_error(await peer.expect(lambda f: "error" in f))
        await peer.send({"type": "division", "action": "read"})
        ok = await peer.expect(is_update("division", "read"))
        assert ok["division"]["name"] == "p01"
        # silent requests, as upstream
        await peer.send({"type": "ring", "action": "register device"})
        await peer.send({"type": "division", "action": "read"})
        assert (await peer.next())["type"] == "division"
        await peer.close()

    asyncio.run(scenario())
    after = snapshot(tmp_path / "data")
    assert after == before
    assert fs.proc.poll() is None
    assert requests.get(fs.url() + "/worldclass/status", timeout=5).text == "OK"


def test_ring_operations_write_and_navigate(freescore, tmp_path):
    fs, forms = start(freescore, tmp_path)
    (forms / "staging").mkdir()
    base = fs.url(0, "ws")

    async def scenario():
        op = await Peer.connect(base, "/worldclass/test/1/computer+operator")
        new = {"name": "p05", "description": "Staged", "judges": 3, "forms": {"finals": ["Koryo", "Keumgang"]},
               "athletes": [{"name": "Ann"}, {"name": "Bo"}], "junk": "dropped"}
        stage = await Peer.connect(base, "/worldclass/test/staging/computer+operator")
        await stage.send({"type": "division", "action": "write", "division": new})
        assert (await stage.expect(lambda f: f.get("action") == "write ok"))["division"]["name"] == "p05"
        await stage.send({"type": "division", "action": "write", "division": new})
        assert (await stage.expect(lambda f: f.get("action") in ("write ok", "write error")))["action"] == \
            "write error"
        text = (forms / "staging" / "div.p05.txt").read_text()
        assert "# forms=finals:Koryo,Keumgang\n" in text and "\nAnn\nBo\n" in text
        await op.send({"type": "ring", "action": "read"})
        ring = await op.expect(is_update("ring", "read"))
        assert [d["name"] for d in ring["ring"]["divisions"]] == ["p01", "p02", "p03", "p04", "p05"]
        await op.send({"type": "division", "action": "read", "divid": "p05"})  # staging divid: found
        assert (await op.expect(is_update("division", "read")))["division"]["ring"] == "staging"
        await op.send({"type": "division", "action": "navigate", "target": {"destination": "division",
                                                                          "divid": "p05"}})
        moved = await op.expect(is_update("ring", "navigate"))
        assert moved["ring"]["current"] == "p05"
        assert (forms / "ring01" / "div.p05.txt").exists() and not (forms / "staging" / "div.p05.txt").exists()
        assert parse_progress((forms / "ring01" / "progress.txt").read_text())["current"] == "p05"
        ring2 = await Peer.connect(base, "/worldclass/test/2/computer+operator")
        await op.send({"type": "ring", "action": "transfer", "name": "p05", "transfer": 2})
        moved = await op.expect(is_update("ring", "transfer"))
        assert moved["ring"]["current"] != "p05" and (forms / "ring02" / "div.p05.txt").exists()
        arrived = await ring2.expect(is_update("ring", "transfer"))
        assert arrived["request"]["ring"] == "2" and "p05" in [d["name"] for d in arrived["ring"]["divisions"]]
        await ring2.close()
        await op.send({"type": "ring", "action": "division next"})
        assert (await op.expect(is_update("ring", "division next")))["ring"]["current"] in ("p01", "p02")
        await op.send({"type": "division", "action": "history", "divid": "p01"})
        await op.send({"type": "division", "action": "judge query"})
        judges = await op.expect(lambda f: f.get("action") == "judges")
        assert judges == {"type": "division", "action": "judges", "judges": []}
        await op.send({"type": "tournament", "action": "read"})
        t = await op.expect(lambda f: f.get("type") == "tournament")
        assert {d["name"] for d in t["divisions"]} == {"p01", "p02", "p03", "p04", "p05", "p10"}
        for p in (op, stage):
            await p.close()

    asyncio.run(scenario())


def test_history_and_restore(freescore, tmp_path):
    fs, forms = start(freescore, tmp_path)
    base = fs.url(0, "ws")

    async def scenario():
        j = await Peer.connect(base, "/worldclass/test/2/judge1")
        await j.send(score(1, 0.0, 0.0, 2.0, 2.0, 2.0))
        changed = await j.expect(is_update("division", "score"))
        assert changed["division"]["athletes"][0]["scores"]["finals"]["forms"][0]["judge"][1]["rhythm"] == 2.0
        await j.send({"type": "division", "action": "history"})
        hist = (await j.expect(is_update("division", "history")))["division"]["history"]
        # 1.1 is the file as it was; then the score (and any autopilot step it armed), newest first
        assert [h["number"] for h in hist] == [f"1.{n}" for n in range(len(hist), 0, -1)]
        assert hist[-1]["description"] == "Black Belt Team/Pairs World Class"
        assert hist[-2]["description"] == "judge 1 score"
        await j.send({"type": "division", "action": "restore", "version": "1.1", "divid": "p10"})
        restored = await j.expect(is_update("division", "restore"))
        total = restored["division"]["athletes"][0]["scores"]["finals"]["forms"][0]["adjusted"]["total"]
        assert total == 6.466
        assert "\tfinals\tf1\tj1\t0.0\t1.5\t1.2\t1.2\t1.4\n" in (forms / "ring02" / "div.p10.txt").read_text()
        await j.close()

    asyncio.run(scenario())


def test_session_check(freescore, tmp_path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    (sessions / "sess_goodsession1").write_bytes(b'is_auth|b:1;ring|s:1:"1";')
    (sessions / "sess_stagingsess").write_bytes(b'is_auth|b:1;ring|s:7:"staging";')
    (sessions / "sess_otherring01").write_bytes(b'is_auth|b:1;ring|s:1:"2";')
    fs, _ = start(freescore, tmp_path, sessions="sessions")
    base = fs.url(0, "ws")

    async def scenario():
        for cookie, allowed in ((None, False), ("goodsession1", True), ("stagingsess", True),
                                ("otherring01", False)):
            headers = {"Cookie": f"freescore-session={cookie}"} if cookie else {}
            peer = Peer(await websockets.connect(base + "/worldclass/test/1/judge2", additional_headers=headers),
                        "j2")
            await peer.send({"type": "division", "action": "read"})
            frame = await peer.expect(lambda f: "error" in f or f.get("type") == "division")
            if allowed:
                assert frame["type"] == "division"
            else:
                assert frame["error"].startswith("Unauthorized user Judge 2 (") and frame["error"].endswith(
                    "in ring 1")
            await peer.close()

    asyncio.run(scenario())


def test_redis_hub_is_refused(tmp_path):
    from harness import run_twistd

    (tmp_path / "fs.toml").write_text(
        '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[hub]\nbackend = "redis"\n[worldclass]\n')
    result = run_twistd(tmp_path / "fs.toml")
    assert result.returncode != 0
    assert "hub.backend: worldclass is single-node" in result.stdout + result.stderr


def test_concurrent_scores_survive_kill_9(freescore, tmp_path):
    import signal

    fs, forms = start(freescore, tmp_path, scoreboard_delay=30.0)
    base = fs.url(0, "ws")

    async def scenario():
        judges = [await Peer.connect(base, f"/worldclass/test/1/judge{j}") for j in range(5)]
        marks = [(0.3, 0.6, 1.5, 1.4, 1.3), (0.0, 0.5, 1.6, 1.5, 1.4), (0.6, 0.6, 1.2, 1.2, 1.2),
                 (0.3, 0.3, 1.5, 1.5, 1.5), (0.3, 0.4, 1.4, 1.4, 1.4)]
        await asyncio.gather(*(p.send(score(j, *marks[j])) for j, p in enumerate(judges)))
        last = None
        for _ in range(5):
            last = await judges[0].expect(is_update("division", "score"))
        fs.signal(signal.SIGKILL)  # right after the last broadcast
        form = last["division"]["athletes"][0]["scores"]["prelim"]["forms"][0]
        assert form["complete"] is True
        return form["adjusted"]

    adjusted = asyncio.run(scenario())
    assert adjusted == {"accuracy": 3.267, "presentation": 4.3, "total": 7.567}
    fs.proc.wait(10)
    again = freescore(config())

    async def reread():
        peer = await Peer.connect(again.url(0, "ws"), "/worldclass/test/1/observer")
        await peer.send({"type": "division", "action": "read"})
        frame = await peer.expect(is_update("division", "read"))
        await peer.close()
        return frame["division"]["athletes"][0]["scores"]["prelim"]["forms"][0]["adjusted"]

    assert asyncio.run(reread()) == adjusted


def test_own_listener_as_upstream(freescore, tmp_path):
    copy_fixtures(tmp_path)
    fs = freescore(
        '[[listen]]\nname = "main"\nendpoint = "tcp:0:interface=127.0.0.1"\n\n'
        '[[listen]]\nname = "worldclass"\nendpoint = "tcp:0:interface=127.0.0.1"\n\n'
        '[worldclass]\ndata = "data"\nlisten = ["worldclass"]\ncors_origin = "http://localhost:8073"\n'
    )
    r = requests.get(fs.url(1) + "/some/thing", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"error": "FreeScore Worldclass Service Error: Unknown command: some/thing"}
    assert r.headers["access-control-allow-origin"] == "http://localhost:8073"
    assert requests.get(fs.url(1) + "/status", timeout=5).text == "OK"
    assert requests.get(fs.url(1) + "/worldclass/status", timeout=5).text == "OK"
    assert requests.get(fs.url(0) + "/worldclass/status", timeout=5).status_code == 404

    async def scenario():
        peer = await Peer.connect(fs.url(1, "ws"), "/worldclass/test/2/observer")
        await peer.send({"type": "division", "action": "read"})
        assert (await peer.expect(is_update("division", "read")))["division"]["name"] == "p10"
        await peer.close()

    asyncio.run(scenario())


def test_oversize_message_closes_cleanly(freescore, tmp_path):
    fs, _ = start(freescore, tmp_path, max_message=4096)

    async def scenario():
        peer = await Peer.connect(fs.url(0, "ws"), "/worldclass/test/1/judge0")
        await peer.send(json.dumps({"type": "division", "action": "read", "pad": "x" * 10000}))
        await peer._reader
        assert peer.ws.close_code == 1009
        again = await Peer.connect(fs.url(0, "ws"), "/worldclass/test/1/judge0")
        await again.send({"type": "division", "action": "read"})
        assert (await again.expect(is_update("division", "read")))["division"]["name"] == "p01"
        await again.close()

    asyncio.run(scenario())


def test_idle_connection_is_closed(freescore, tmp_path):
    fs, _ = start(freescore, tmp_path, inactivity_timeout=0.5)

    async def scenario():
        idle = await Peer.connect(fs.url(0, "ws"), "/worldclass/test/1/observer")
        await asyncio.wait_for(idle._reader, 10)
        assert idle.ws.close_code == 1000

    asyncio.run(scenario())
