"""`twistd freescore` with no --config: the embedded default, from an empty folder, with the demo tournament."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from freescore import embedded
from harness import LOOPBACK_ANY_PORT, TWISTD, FreescoreProcess, env

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "worldclass"))
from wc_client import read_demo  # noqa: E402

pytestmark = pytest.mark.integration


def test_no_config_serves_every_service_and_the_demo_tournament(tmp_path):
    with FreescoreProcess(None, tmp_path, argv=[sys.executable, "-c", TWISTD, "-n", "--pidfile=", "freescore",
                                                "--listen", LOOPBACK_ANY_PORT]) as fs:
        data = tmp_path / embedded.DATA_DIR
        assert fs.lines[0].endswith(f"running the embedded default (twistd freescore --print-config shows it), "
                                    f"data in {data}"), fs.lines[:3]
        assert requests.get(fs.url() + "/status", timeout=5).text == "OK"
        fs.wait_log(r"services clicker, fedmsg, gateway, events, worldclass, grassroots, freestyle on 1 listener")
        ring, division = asyncio.run(read_demo(fs.url(0, "ws")))
    assert ring["request"]["tournament"] == "demo" and ring["ring"]["current"] == "p01"
    assert [d["name"] for d in ring["ring"]["divisions"]] == ["p01", "p02", "p03"]
    assert [a["name"] for a in ring["ring"]["divisions"][0]["athletes"]][:2] == ["Tomas Ferreira", "Kenji Watanabe"]
    assert division["division"]["name"] == "p04" and division["division"]["description"] == "Female Seniors"
    assert (data / "worldclass" / "demo" / "forms-worldclass" / "ring02" / "div.p05.txt").is_file()
    assert (data / "clicker").is_dir()


def test_print_config_and_option_errors(tmp_path):
    def twistd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "freescore", *args], env=env(),
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)

    printed = twistd("--print-config")
    assert printed.returncode == 0 and printed.stdout == embedded.text()
    both = twistd("--config", "x.toml", "--listen", LOOPBACK_ANY_PORT)
    assert both.returncode == 1 and "with --config, give the [[listen]] tables in the file" in both.stdout
    open_to_all = twistd("--listen", "tcp:0")
    assert open_to_all.returncode == 2 and "only be on loopback listeners" in open_to_all.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
