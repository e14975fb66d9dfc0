"""Hostile but legal JSON in what worldclass, freestyle and grassroots read, on one real `twistd freescore`.

A browser's JSON.parse refuses NaN and Infinity, so a value that would go out as one (NaN, Infinity,
1e999 from a page or a data file) never does: a request is answered with the error frame, a data file
holding one reads as damaged. A lone surrogate escape (`"\\ud800"`, which JSON.stringify writes) in a
data file or a page's schedule is kept and goes out escaped, as it came in.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets

from harness import FreescoreProcess, browser_parse

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parent.parent
CONFIG = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n' + "".join(
    f'[{name}]\ndata = "data"\ncors_origin = "*"\n\n' for name in ("worldclass", "freestyle", "grassroots"))
WORLDCLASS, FREESTYLE, GRASSROOTS = "/worldclass/test/1/computer+operator", "/freestyle/test/1/computer+operator", \
    "/grassroots/test/1"
OUT_OF_RANGE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "[" * 300 + "]" * 300]
"""What Python reads and would write back as NaN or Infinity; nesting that was copied and encoded again deeper."""


def strings_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {s for v in value.values() for s in strings_in(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings_in(v)}
    return {value} if isinstance(value, str) else set()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "test"
    shutil.copytree(TESTS / "worldclass" / "fixtures" / "forms-worldclass", root / "forms-worldclass")
    shutil.copytree(TESTS / "freestyle" / "fixtures" / "forms-freestyle" / "before", root / "forms-freestyle")
    (root / "forms-grassroots" / "ring01").mkdir(parents=True)
    return tmp_path / "data"


async def ask(base: str, path: str, texts: list[str]) -> list[Any]:
    """Each request's one answer, as a browser parses it."""
    answers = []
    async with websockets.connect(base + path, max_size=None) as ws:
        for text in texts:
            await ws.send(text)
            answers.append(browser_parse(await asyncio.wait_for(ws.recv(), 10)))
    return answers


def assert_no_traceback(fs: FreescoreProcess) -> None:
    assert fs.proc is not None and fs.proc.poll() is None
    log = fs.log()
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]


def test_a_value_json_parse_refuses_or_deep_nesting_in_a_request_gets_the_error_frame_and_changes_no_file(
        data, freescore):
    """They were taken: error frames echoed NaN, `draws write` and `division write` stored it (a freestyle
    file that no longer read), and a division 500 levels deep failed its copy with a traceback."""
    fs = freescore(CONFIG)
    before = snapshot(data)
    cases = {
        WORLDCLASS: ['{"type":"division","action":"fly","x":%s}', '{"type":"tournament","action":"draws write",'
                     '"draws":{"a":%s}}', '{"type":"division","action":"write","division":{"name":"x1",'
                     '"athletes":[{"name":"A","info":{"k":%s}}],"tags":%s}}'],
        FREESTYLE: ['{"type":"division","action":"fly","x":%s}', '{"type":"division","action":"write","division":'
                    '{"name":"fs09","judges":3,"athletes":[{"name":"A","x":%s}]}}'],
        GRASSROOTS: ['{"type":"division","action":"read","x":%s}'],
    }
    for path, templates in cases.items():
        texts = [t.replace("%s", value) for t in templates for value in [*OUT_OF_RANGE, "[" * 500 + "]" * 500]]
        for request, answer in zip(texts, asyncio.run(ask(fs.url(0, "ws"), path, texts)), strict=True):
            assert answer.get("error", "").startswith("Invalid JSON") and "type" not in answer, (request[:80], answer)
    assert snapshot(data) == before
    assert_no_traceback(fs)


def test_lone_surrogate_escapes_in_data_files_go_out_escaped_and_survive_a_save_and_nan_does_not_go_out(
        data, freescore):
    """A frame with one failed to encode (a traceback; worldclass answered nothing at all), and the
    freestyle file could not be written back. NaN in draws.json went out in every ring update."""
    forms = data / "test"
    (forms / "draws.json").write_text('{"x": [NaN, 1e999], "y": "ok"}')
    p01 = forms / "forms-worldclass" / "ring01" / "div.p01.txt"
    p01.write_text(p01.read_text().replace("# judges=5", '# judges=5\n# tags=["lone \\ud800"]', 1))
    fs01 = forms / "forms-freestyle" / "ring01" / "div.fs01.txt"
    fs01.write_text(fs01.read_text().replace('"Freestyle Female 18-30"', '"lone \\udc00"'))
    (forms / "forms-grassroots" / "ring01" / "div.g01.txt").write_text('# judges=3\nAnna\t\tclub=["lone \\ud83d"]\n')
    fs = freescore(CONFIG)
    base = fs.url(0, "ws")
    ring, division = asyncio.run(ask(base, WORLDCLASS, ['{"type":"ring","action":"read"}',
                                                         '{"type":"division","action":"read"}']))
    assert "lone \ud800" in strings_in(division["division"])
    assert "draws" not in ring["ring"]  # a draws.json with NaN reads as none
    freestyle, = asyncio.run(ask(base, FREESTYLE, ['{"type":"division","action":"read"}']))
    assert freestyle["division"]["description"] == "lone \udc00"
    grassroots, = asyncio.run(ask(base, GRASSROOTS, ['{"type":"division","action":"read"}']))
    assert "lone \ud83d" in strings_in(grassroots["division"])

    navigate = '{"type":"division","action":"navigate","target":{"destination":"athlete","index":1}}'
    for path, file in ((FREESTYLE, fs01), (WORLDCLASS, p01)):
        before = file.read_bytes()
        answer, = asyncio.run(ask(base, path, [navigate]))
        assert answer.get("action") == "update", answer
        assert file.read_bytes() != before  # saved, as UTF-8, the surrogate still escaped
        assert "\\u" in file.read_text(encoding="utf-8")
    assert json.loads(fs01.read_text(encoding="utf-8"))["description"] == "lone \udc00"
    assert '# tags=["lone \\ud800"]' in p01.read_text(encoding="utf-8")
    assert_no_traceback(fs)


def test_a_schedule_keeps_a_lone_surrogate_and_refuses_what_json_parse_refuses(data, freescore):
    """The schedule is a JSON string inside the request: its "\\ud800" failed the file's write with a
    traceback, and NaN or 1e999 were stored and sent to every staging page that read it."""
    fs = freescore(CONFIG)
    schedule = data / "test" / "forms-grassroots" / "schedule.json"

    def write(text: str) -> str:
        return json.dumps({"type": "schedule", "action": "write", "schedule": text})

    kept = json.dumps({"day": ["lone \ud800", {"\udc00": 1}]})  # JSON.stringify's form: escaped
    texts = [write(kept), '{"type":"schedule","action":"read"}',
                *(write(f'{{"day": {v}}}') for v in [*OUT_OF_RANGE, "[" * 2000 + "]" * 2000]),
                '{"type":"schedule","action":"read"}']
    answers = asyncio.run(ask(fs.url(0, "ws"), GRASSROOTS, texts))
    assert answers[0]["action"] == "update"
    assert answers[1]["schedule"] == answers[-1]["schedule"] == json.loads(kept)
    assert all(a == {"error": "Invalid schedule: not JSON"} for a in answers[2:-1]), answers[2:-1]
    assert json.loads(schedule.read_text(encoding="utf-8")) == json.loads(kept)
    assert_no_traceback(fs)


def test_the_division_editor_s_post_refuses_a_lone_surrogate_and_what_json_parse_refuses_and_writes_nothing(
        data, freescore):
    """A lone surrogate failed the save as if the disk had ('could not save ...: UnicodeEncodeError'),
    and NaN or 1e999 as a header value were stored as the words `nan` and `inf`."""
    fs = freescore(CONFIG)
    url = fs.url(0) + "/grassroots/webservice/test/1/p01"
    before = snapshot(data)
    for value in ['"lone \\ud800"', *OUT_OF_RANGE]:
        for body in (f'{{"header":{{"description":{value}}},"athletes":["A"]}}',
                     f'{{"header":{{"x":[{value}]}},"athletes":["A"]}}'):
            r = requests.post(url, data=body.encode(), timeout=10)
            assert r.status_code == 200
            expected = "a lone surrogate is not text" if "\\u" in value else "not JSON"
            assert browser_parse(r.text) == {"error": f"Invalid division: {expected}"}, body[:80]
    assert snapshot(data) == before
    assert_no_traceback(fs)
