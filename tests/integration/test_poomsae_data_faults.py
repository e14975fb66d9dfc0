"""The data directory as tournament operators leave it, under one real `twistd freescore` serving
worldclass, freestyle and grassroots from one data root.

Division files edited by hand (a Windows editor's UTF-8 BOM, an old editor's Latin-1 name, a
progress.txt that is not UTF-8) are read, not dropped, and written back as UTF-8; a file that
cannot be read at all is named in the log once, not on every request. A write the rules make at
once (progress.txt on navigation, a division moved to another ring) that the disk refuses answers
the requester with the save error of the FreeScore layer (no traceback, no server path), leaves the
other rings working, and works again once the disk does; a ring "folder" that is a file reads as a
ring without divisions.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from freescore.poomsae.store import MAX_DIVISION_BYTES

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "worldclass"))
from wc_client import FIXTURES, Peer, is_error, score  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from harness import run_twistd  # noqa: E402

pytestmark = pytest.mark.integration

FREESTYLE = HERE.parent / "freestyle" / "fixtures" / "forms-freestyle" / "before"
GRASSROOTS = HERE.parent / "grassroots" / "fixtures" / "forms-grassroots"
REST = "/grassroots/webservice"  # the tablet's REST routes on the shared listener
SAVE_ERROR = "Error while processing request: could not save the changes to tournament 'test': "
FREESTYLE_SCORE = {"type": "division", "action": "score", "judge": 0, "score": {
    "technical": {"mft1": "0.8", "mft2": "0.7", "mft3": "0.6", "mft4": "0.7", "mft5": "0.5", "basic": "0.8"},
    "presentation": {"creativity": "0.8", "harmony": "0.7", "energy": "0.9", "choreography": "0.8"},
    "deductions": {"stances": {"hakdari": True, "beomseogi": True, "dwigubi": True}, "minor": 0.2, "major": 0.3}}}
CONFIG = """[[listen]]
name = "main"
endpoint = "tcp:0:interface=127.0.0.1"

[worldclass]
data = "data"
scoreboard_delay = 30.0
leaderboard_delay = 30.0

[freestyle]
data = "data"

[grassroots]
data = "data"
autopilot = [30.0, 30.0, 30.0, 30.0]
"""


def data_root(tmp_path: Path) -> Path:
    """Tournament `test` for the three services: worldclass's and freestyle's fixtures, a grassroots division."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "forms-worldclass", data / "test" / "forms-worldclass")
    shutil.copytree(FREESTYLE, data / "test" / "forms-freestyle")
    for ring in (1, 2):
        folder = data / "test" / "forms-grassroots" / f"ring{ring:02d}"
        folder.mkdir(parents=True)
        shutil.copy(GRASSROOTS / "ring01" / "div.p01.0-after-post.txt", folder / "div.p01.txt")
    return data


def hand_edit(path: Path, old: str, new: str) -> None:
    """What a Windows editor leaves: a BOM, and `new` in place of `old` in Latin-1."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_bytes(codecs.BOM_UTF8 + text.replace(old, new).encode("latin-1"))


def assert_written_as_utf8(path: Path, name: str) -> None:
    data = path.read_bytes()
    assert not data.startswith(codecs.BOM_UTF8) and name in data.decode("utf-8"), data[:200]


def assert_clean_log(log: str) -> None:
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]


def test_hand_edited_files_are_read_and_written_back_as_utf8(freescore, tmp_path):
    data = data_root(tmp_path)
    wc = data / "test" / "forms-worldclass" / "ring01" / "div.p01.txt"
    fs_div = data / "test" / "forms-freestyle" / "ring01" / "div.fs01.txt"
    gr = data / "test" / "forms-grassroots" / "ring01" / "div.p01.txt"
    hand_edit(wc, "Nicolaas Janz", "Nicolás Janz")
    hand_edit(fs_div, "Mira Castellane", "Mira Castellañe")
    hand_edit(gr, "Ana LIME", "Añá LIME")
    (data / "test" / "forms-worldclass" / "ring02" / "progress.txt").write_bytes(b"# current=p10\n# note=Sal\xf3n\n")
    (data / "test" / "forms-freestyle" / "ring01" / "div.broken.txt").write_text('{"athletes": [')
    with open(data / "test" / "forms-grassroots" / "ring01" / "div.huge.txt", "wb") as huge:
        huge.truncate(MAX_DIVISION_BYTES + 1)  # a stray file: sparse, so the test fills no disk
    fs = freescore(CONFIG)
    base = fs.url(0, "ws")

    async def scenario() -> None:
        judge = await Peer.connect(base, "/worldclass/test/1/judge0")
        await judge.send({"type": "division", "action": "read", "divid": "p01"})
        read = await judge.expect(lambda f: "division" in f or is_error(f))
        assert read["division"]["athletes"][0]["name"] == "Nicolás Janz", read
        await judge.send(score(0, 0.3, 0.3, 1.5, 1.5, 1.5))
        await judge.expect(lambda f: f.get("type") == "division" and f["request"]["action"] == "score")
        ring2 = await Peer.connect(base, "/worldclass/test/2/observer")
        await ring2.send({"type": "division", "action": "read"})  # its progress.txt is Latin-1
        assert (await ring2.expect(lambda f: "division" in f or is_error(f)))["division"]["name"] == "p10"

        tablet = await Peer.connect(base, "/freestyle/test/1/judge0")
        for _ in range(3):  # the broken file is read (and logged) once, not on every request
            await tablet.send({"type": "division", "action": "read"})
            read = await tablet.expect(lambda f: "division" in f or is_error(f))
            assert read["division"]["athletes"][0]["name"] == "Mira Castellañe", read
        await tablet.send(FREESTYLE_SCORE)
        await tablet.expect(lambda f: f.get("request", {}).get("action") == "score")

        coordinator = await Peer.connect(base, "/grassroots/test/1")
        for _ in range(2):  # the huge file is skipped (and logged) once, not on every request
            await coordinator.send({"type": "division", "action": "read"})
            read = await coordinator.expect(lambda f: "division" in f or is_error(f))
            assert read["division"]["athletes"][0]["name"] == "Añá LIME", read
        for peer in (judge, ring2, tablet, coordinator):
            await peer.close()

    asyncio.run(scenario())
    answer = requests.get(fs.url() + REST + "/test/1/0/83", timeout=10).json()  # the tablet's REST score
    assert "error" not in answer, answer
    for path, name in ((wc, "Nicolás Janz"), (fs_div, "Mira Castellañe"), (gr, "Añá LIME")):
        assert_written_as_utf8(path, name)
    log = fs.log()
    assert log.count("div.broken.txt: left out of its ring, the file cannot be read") == 1, log[-3000:]
    assert log.count(f"div.huge.txt: left out of its ring, the file cannot be read: {MAX_DIVISION_BYTES + 1} bytes, "
                     f"larger than a division file can be ({MAX_DIVISION_BYTES})") == 1, log[-3000:]
    assert_clean_log(log)


def test_a_refused_direct_write_answers_the_save_error_and_the_ring_recovers(freescore, tmp_path):
    data = data_root(tmp_path)
    blocked = [data / "test" / forms / "ring01" / "progress.txt"
               for forms in ("forms-worldclass", "forms-freestyle", "forms-grassroots")]
    for path in blocked:  # a folder where progress.txt goes: the rename onto it fails, even as root
        path.unlink(missing_ok=True)
        path.mkdir()
    (data / "test" / "forms-worldclass" / "ring03").write_text("a file where the ring folder goes")
    for forms in ("forms-worldclass", "forms-freestyle", "forms-grassroots"):
        (data / "test" / forms / "ring05").write_text("a file where the ring folder goes")
    fs = freescore(CONFIG)
    base = fs.url(0, "ws")
    navigate = {
        "/worldclass/test/1/computer+operator":
            {"type": "division", "action": "navigate", "target": {"destination": "division", "divid": "p03"}},
        "/freestyle/test/1/computer+operator":
            {"type": "division", "action": "navigate", "target": {"destination": "division", "divid": "fs01"}},
        "/grassroots/test/1": {"type": "division", "action": "navigate", "target": {"destination": "division",
                                                                                      "id": "p01"}},
    }

    async def attempt(path: str, request: dict) -> dict:
        peer = await Peer.connect(base, path)
        await peer.send(request)
        answer = await peer.expect(lambda f: f.get("type") != "users")
        await peer.close()
        return answer

    async def refused() -> None:
        for path, request in navigate.items():
            answer = await attempt(path, request)
            assert is_error(answer) and answer["error"] == SAVE_ERROR + "Is a directory\n", (path, answer)
            other = path.replace("/test/1", "/test/2")  # the ring next door is not affected
            assert not is_error(await attempt(other, {"type": "division", "action": "read"})), other
            no_folder = path.replace("/test/1", "/test/5")  # a file for a ring folder: a ring without divisions
            ring = await attempt(no_folder, {"type": "ring", "action": "read"})
            assert not is_error(ring) and ring["ring"]["divisions"] == [], (no_folder, ring)
        moved = await attempt("/worldclass/test/1/computer+operator",
                              {"type": "ring", "action": "transfer", "name": "p02", "transfer": 3})
        assert is_error(moved) and moved["error"].startswith(SAVE_ERROR), moved
        assert str(data) not in moved["error"]

    asyncio.run(refused())
    rest = requests.get(fs.url() + REST + "/test/1/division/next", timeout=10).json()
    assert rest == {"error": SAVE_ERROR + "Is a directory\n"}, rest
    assert (data / "test" / "forms-worldclass" / "ring01" / "div.p02.txt").is_file()  # nothing moved
    log = fs.log()
    assert_clean_log(log)
    assert f"-> '{blocked[0]}'" in log  # the operator's log names the file

    for path in blocked:
        path.rmdir()

    async def recovered() -> None:
        for path, request in navigate.items():
            answer = await attempt(path, request)
            assert not is_error(answer), (path, answer)

    asyncio.run(recovered())
    assert all(path.is_file() for path in blocked)
    assert_clean_log(fs.log())


@contextlib.contextmanager
def immutable(folder: Path) -> Iterator[None]:
    """`chattr +i`: no entry can be made in the folder, even by root (its subfolders stay writable)."""
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_data_root_that_cannot_be_written_is_one_config_line_or_served_without_the_demo(freescore, tmp_path):
    data = data_root(tmp_path)
    with immutable(data):
        config = tmp_path / "new-root.toml"
        config.write_text(CONFIG.replace('[worldclass]\ndata = "data"', '[worldclass]\ndata = "data/new"'))
        result = run_twistd(config)
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert result.returncode != 0 and len(lines) == 1, result.stdout + result.stderr
        assert lines[0] == f"freescore: {config}: worldclass.data: cannot be created: {data} is not a writable folder"
        assert "Traceback" not in result.stdout + result.stderr

        fs = freescore(CONFIG.replace("[worldclass]\n", "[worldclass]\ndemo = true\n"))
        fs.wait_log(rf"worldclass: demo tournament {data / 'demo'} cannot be written: \[Errno 1\] Operation not "
                    "permitted")
        base = fs.url(0, "ws")

        async def served() -> None:  # the tournaments in the root are served as ever, by every service
            judge = await Peer.connect(base, "/worldclass/test/1/judge0")
            await judge.send(score(0, 0.3, 0.3, 1.5, 1.5, 1.5))
            scored = await judge.expect(lambda f: "division" in f or is_error(f))
            assert not is_error(scored), scored
            coordinator = await Peer.connect(base, "/grassroots/test/1")
            await coordinator.send({"type": "division", "action": "read"})
            assert not is_error(await coordinator.expect(lambda f: "division" in f or is_error(f)))
            for peer in (judge, coordinator):
                await peer.close()

        asyncio.run(served())
        fs.stop()
    assert not (data / "demo").exists()
    assert_clean_log(fs.log())


def test_a_fifo_by_the_name_of_a_data_file_blocks_no_ring(freescore, tmp_path):
    """Reading a FIFO waits for a writer: by a data file's name it would have stopped every service."""
    data = data_root(tmp_path)
    wc = data / "test" / "forms-worldclass"
    (wc / "ring02" / "progress.txt").unlink()
    for fifo in (wc / "ring02" / "progress.txt", wc / "draws.json", wc / "ring01" / "div.p09.txt",
                 data / "test" / "forms-grassroots" / "schedule.json"):
        os.mkfifo(fifo)
    fs = freescore(CONFIG)
    base = fs.url(0, "ws")

    async def scenario() -> None:
        ring2 = await Peer.connect(base, "/worldclass/test/2/observer")
        await ring2.send({"type": "division", "action": "read"})  # progress.txt a FIFO: the first division
        assert (await ring2.expect(lambda f: "division" in f or is_error(f)))["division"]["name"] == "p10"
        ring1 = await Peer.connect(base, "/worldclass/test/1/observer")
        await ring1.send({"type": "ring", "action": "read"})  # draws.json and a division file FIFOs: left out
        ring = (await ring1.expect(lambda f: "ring" in f or is_error(f)))["ring"]
        assert "draws" not in ring and [d["name"] for d in ring["divisions"]] == ["p01", "p02", "p03", "p04"]
        coordinator = await Peer.connect(base, "/grassroots/test/1")
        await coordinator.send({"type": "schedule", "action": "read"})  # as a missing schedule
        assert (await coordinator.next())["error"].endswith("schedule.json' does not exist")
        for peer in (ring1, ring2, coordinator):
            await peer.close()

    asyncio.run(scenario())
    assert_clean_log(fs.log())
