"""Wire shape: freescore's frames carry the fields of the captured upstream frames, with the same JSON types.

Documented exceptions (see fixtures/frames/README.md and the spec): `request.ring` and `ring.name` are
strings; numbers where upstream sends numeric strings; booleans where upstream sends 1/""; upstream's
leaked `judge` index inside stored scores, its all-null `penalty` objects and the disconnect's `sessid`
are not sent.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "worldclass"))
from wc_client import FIXTURES, Peer, config, copy_fixtures, is_update  # noqa: E402

pytestmark = pytest.mark.integration
FRAMES = FIXTURES / "frames"
FLAGS = {"complete", "started"}
NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")


def upstream(name: str) -> dict[str, Any]:
    return json.loads((FRAMES / name).read_text())


def kind(value: Any, key: str) -> str:
    if key in FLAGS and value in (1, 0, "", True, False):
        return "flag"
    if isinstance(value, bool):
        return "bool"
    numeric_text = isinstance(value, str) and NUMERIC.match(value) and key not in ("cid", "id", "digest")
    if isinstance(value, (int, float)) or numeric_text:
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def skipped(path: str, key: str, up: Any) -> bool:
    if key == "judge" and re.search(r"\.judge\[\d+\]$", path):
        return True  # upstream leaks the request's judge index into the stored score
    if key == "penalty" and isinstance(up, dict) and all(v is None for v in up.values()):
        return True  # upstream's empty penalty object; freescore sends penalty only when set
    if key == "sessid" and path.endswith(".user"):
        return True  # never send the session id (spec §17.5)
    return False


def compare(up: Any, ours: Any, path: str = "$", key: str = "", errors: list[str] | None = None) -> list[str]:
    errors = [] if errors is None else errors
    if isinstance(up, dict):
        if not isinstance(ours, dict):
            errors.append(f"{path}: object expected, got {ours!r:.60}")
            return errors
        for k, v in up.items():
            if skipped(path, k, v):
                continue
            if k not in ours:
                errors.append(f"{path}.{k}: missing")
                continue
            compare(v, ours[k], f"{path}.{k}", k, errors)
    elif isinstance(up, list):
        if not isinstance(ours, list):
            errors.append(f"{path}: list expected")
            return errors
        if len(up) != len(ours) and key != "users":  # who was connected differs by capture
            errors.append(f"{path}: {len(up)} items upstream, {len(ours)} here")
        for i, (u, o) in enumerate(zip(up, ours, strict=False)):
            compare(u, o, f"{path}[{i}]", key, errors)
    elif kind(up, key) != kind(ours, key):
        errors.append(f"{path}: upstream {kind(up, key)} {up!r}, here {kind(ours, key)} {ours!r}")
    return errors


def test_compare_catches_differences():
    assert compare({"a": 1, "b": {"c": "x"}}, {"a": "2", "b": {}}) == ["$.b.c: missing"]
    assert compare({"complete": ""}, {"complete": False}) == []
    assert compare({"ring": 1}, {"ring": "staging"})


def test_frames_match_upstream_shapes(freescore, tmp_path):
    copy_fixtures(tmp_path)
    fs = freescore(config(ping_interval=0.5))
    base = fs.url(0, "ws")

    async def scenario():
        judges = [await Peer.connect(base, f"/worldclass/test/1/judge{j}") for j in range(5)]
        obs = await Peer.connect(base, "/worldclass/test/1/observer")
        await obs.send({"type": "division", "action": "read"})
        read = await obs.expect(is_update("division", "read"))
        assert compare(upstream("division-read-reply.json"), read) == []
        assert isinstance(read["request"]["ring"], str) and read["division"]["ring"] == 1

        await obs.send({"type": "ring", "action": "read"})
        ring = await obs.expect(is_update("ring", "read"))
        # the documented exception (the ring is the URL string here, an int upstream) passes the
        # comparison because "1" is numeric text; check the type outright
        assert compare(upstream("ring-read-reply.json"), ring) == []
        assert ring["ring"]["name"] == "1" and ring["request"]["ring"] == "1"

        values = {"major": "0.3", "minor": "0.6", "rhythm": "1.5", "power": "1.4", "ki": "1.3"}
        frames = {}
        for j, peer in enumerate(judges):
            await peer.send({"type": "division", "action": "score", "judge": j, "score": {"judge": j, **values}})
            frames[j] = await obs.expect(lambda f, j=j: is_update("division", "score")(f)
                                         and f["request"]["judge"] == j)
        assert compare(upstream("score-broadcast-judge0.json"), frames[0]) == []
        assert compare(upstream("score-broadcast-judge4.json"), frames[4]) == []
        assert frames[4]["request"]["score"]["major"] == "0.3"  # echoed as sent
        board = await obs.expect(is_update("division", "scoreboard"))
        assert compare(upstream("autopilot-scoreboard.json"), board) == []
        nxt = await obs.expect(is_update("division", "next"))
        errors = compare(upstream("autopilot-next.json"), nxt)
        assert errors == []
        assert nxt["division"]["current"] == 1

        ping = await obs.expect(lambda f: f.get("type") == "server", what="ping")
        assert compare(upstream("server-ping.json"), ping) == []
        assert ping["ring"] == 1 and ping["gid"] == "test-ring01" and ping["role"] == "observer"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ping["server"]["timestamp"])
        await obs.send({"type": "client", "action": "pong", "server": {"ping": ping["server"]},
                        "client": {"pong": {"timestamp": ping["server"]["timestamp"]}}})
        pong = await obs.expect(lambda f: is_update("users")(f) and f["request"].get("status", {}).get("cid")
                                == ping["cid"], what="users update after pong")
        assert compare(upstream("users-update-after-pong.json"), pong) == []
        assert pong["request"]["ring"] is None and pong["request"]["status"]["health"] == "strong"

        await obs.send({"type": "server", "action": "stop ping"})
        stopped = await obs.expect(lambda f: is_update("users")(f)
                                   and f["request"].get("status", {}).get("health") == "n/a")
        me = [u for u in stopped["users"] if u["cid"] == ping["cid"]]
        assert me[0]["health"] == "n/a"

        await judges[4].close()
        gone = await obs.expect(lambda f: is_update("users")(f) and "user" in f["request"])
        assert compare(upstream("users-update-disconnect.json"), gone) == []
        assert gone["request"]["user"]["role"] == "judge4" and "sessid" not in gone["request"]["user"]

        await obs.send({"type": "division", "action": "judge query"})
        reply = await obs.expect(lambda f: f.get("action") == "judges")
        assert [j["judge"] for j in reply["judges"]] == [0, 1, 2, 3]
        assert set(reply["judges"][0]) == {"judge", "cid", "health"}
        for p in [*judges[:4], obs]:
            await p.close()

    asyncio.run(scenario())
