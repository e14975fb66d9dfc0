"""Hostile requests against worldclass (se/sbs brackets) and freestyle on one real `twistd freescore`.

Every field of a score request (and of the bracket requests that take an athlete, a judge or an index)
gets each wrong type in turn; every answer must be the service's error frame to the sender before the
next request is answered, and at the end no file of the data folder has changed, the process runs and
its log holds no traceback. Malformed frames and unknown commands get the same error form, an oversize
message a 1009 close, and path escapes in division ids and upgrade paths are refused.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "worldclass"))
from wc_client import FIXTURES, Peer, assert_refused, snapshot  # noqa: E402

pytestmark = pytest.mark.integration

# wrong in every field they are put in (an object or a list in place of one is left out: unknown keys are ignored)
WRONG: list[Any] = ["x", "NaN", "1e999", -1, 10**30, True, [], [1], {"a": 1}]
MARKS = {"major": "0.3", "minor": "0.3", "rhythm": "1.5", "power": "1.5", "ki": "1.5"}
SE_SCORE = {"type": "division", "action": "score", "score": {"judge": 0, **MARKS}}
SBS_SCORE = {"type": "division", "action": "score", "judge": 0,
             "score": {"divid": "sbs2", "match": 1, "form": 0, "chung": {"index": 0, **MARKS},
                       "hong": {"index": 1, **MARKS}}}
BRACKET = [{"type": "division", "action": "award min score", "athlete_id": 0},
           {"type": "division", "action": "award punitive", "decision": "withdraw", "athlete_id": 0},
           {"type": "division", "action": "clear judge score", "judge": 2, "index": [0, 1]},
           {"type": "division", "action": "navigate", "target": {"destination": "athlete", "index": 1}}]
FREESTYLE_SCORE = {"type": "division", "action": "score", "judge": 0, "score": {
    "technical": {"mft1": "0.8", "mft2": "0.7", "mft3": "0.6", "mft4": "0.7", "mft5": "0.5", "basic": "0.8"},
    "presentation": {"creativity": "0.8", "harmony": "0.7", "energy": "0.9", "choreography": "0.8"},
    "deductions": {"stances": {"hakdari": True, "beomseogi": True, "dwigubi": True}, "minor": 0.2, "major": 0.3}}}
FREESTYLE = [
    {"type": "division", "action": "award penalty", "athlete_id": 0,
     "penalty": {"bounds": 0.3, "timelimit": 0, "restart": 0, "misconduct": 1}},
    {"type": "division", "action": "award punitive", "decision": "withdraw", "athlete_id": 1},
    {"type": "division", "action": "navigate", "target": {"destination": "athlete", "index": "1"}},
    {"type": "ring", "action": "transfer", "name": "fs01", "transfer": 2},
    {"type": "division", "action": "write", "division": {"name": "fs09", "judges": 3, "ring": 1,
                                                         "athletes": [{"name": "Ines Varga"}]}}]
# not JSON objects, unknown commands, hostile nesting, binary frames
MALFORMED: list[str | bytes] = [
    "not json", "{", "[1, 2]", '"x"', "null", "1e999", '{"type": "division"}', '{"action": "read"}',
    '{"type": "division", "action": "fly"}', '{"type": "nope", "action": "read"}', '{"type": [], "action": {}}',
    "[" * 100000, '{"a":' * 100000, b"\x00\x01binary"]
# not checked on purpose: an SBS score's divid and form (upstream checks only the match, quirk 12);
# a new division's name and ring (any safe name is a name, and the connection's ring decides)
UNCHECKED = {"score.divid", "score.form", "division.name", "division.ring"}


def wrong_versions(request: dict[str, Any], values: list[Any] = WRONG) -> Iterator[tuple[str, dict[str, Any]]]:
    """`request` with one field at a time replaced by each wrong value (the path of the field with it)."""
    def walk(node: dict[str, Any], path: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, value in node.items():
            name = ".".join([*path, key])
            if isinstance(value, dict):
                yield from walk(value, [*path, key])
            if name in UNCHECKED:
                continue
            for wrong in values:
                if type(value) is type(wrong) and isinstance(value, (dict, list)):
                    continue
                if isinstance(value, bool) and isinstance(wrong, bool):
                    continue  # a stance flag is a boolean
                changed = copy.deepcopy(request)
                target = changed
                for part in path:
                    target = target[part]
                target[key] = wrong
                yield name, changed
    yield from walk(request, [])


def test_wrong_types_in_every_field_get_the_error_frame_and_change_no_file(freescore, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "forms-worldclass-methods" / "before", data / "methods" / "forms-worldclass")
    shutil.copytree(HERE.parent / "freestyle" / "fixtures" / "forms-freestyle" / "before",
                    data / "test" / "forms-freestyle")
    fs = freescore('[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[worldclass]\ndata = "data"\n'
                   'cors_origin = "*"\n\n[freestyle]\ndata = "data"\ncors_origin = "*"\n')
    before = snapshot(data)
    bracket = [v for r in BRACKET for v in wrong_versions(r)]
    cases = {
        "/worldclass/methods/1/computer+operator": [*wrong_versions(SE_SCORE), *bracket],
        "/worldclass/methods/2/computer+operator": [*wrong_versions(SBS_SCORE), *bracket],
        "/freestyle/test/1/computer+operator": [*wrong_versions(FREESTYLE_SCORE),
                                                *(v for r in FREESTYLE for v in wrong_versions(r))],
    }
    assert all(len(c) > 50 for c in cases.values())

    async def scenario() -> None:
        for path, versions in cases.items():
            peer = await Peer.connect(fs.url(0, "ws"), path)
            for field, request in versions:
                await peer.send(request)
                answer = await peer.next()
                # the error form: the text, and (worldclass, as upstream) the request it answers; never an update
                assert isinstance(answer.get("error"), str) and "type" not in answer, (field, request, answer)
            for text in MALFORMED:
                await peer.send(text)
                answer = await peer.next()
                assert isinstance(answer.get("error"), str) and "type" not in answer, (text[:40], answer)
            for escape in ("../ring02/div.sbs2", "../../../etc/passwd", "..", "div/../../x"):
                await peer.send({"type": "division", "action": "read", "divid": escape})
                answer = await peer.next()
                assert "error" in answer and "type" not in answer, escape
            await peer.send({"type": "division", "action": "read"})  # the connection still works
            assert (await peer.next())["type"] == "division"
            await peer.close()
            oversize = await websockets.connect(fs.url(0, "ws") + path, max_size=None)
            await oversize.send("[" + " " * 2 * 1024 * 1024 + "]")
            await oversize.wait_closed()
            assert oversize.close_code == 1009, path
        await assert_refused(fs.url(0, "ws"), ["/worldclass/methods/../1/observer", "/worldclass/%2e%2e/1/observer",
                                               "/worldclass/methods/1/../../x", "/freestyle/%2e%2e/1/observer",
                                               "/freestyle/test/%2e%2e/observer", "/freestyle/..%2ftest/1/observer"])

    asyncio.run(scenario())
    assert snapshot(data) == before
    assert fs.proc.poll() is None
    log = fs.log()
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
