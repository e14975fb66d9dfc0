"""`twistd freescore` without -n: daemonizes, writes its pid file, stops on SIGTERM."""

import os
import re
import signal
import subprocess
import sys
import time

import requests

from harness import TWISTD, env


def test_daemon_mode_serves_and_stops(tmp_path):
    config = tmp_path / "freescore.toml"
    config.write_text('[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n')
    pidfile, logfile = tmp_path / "twistd.pid", tmp_path / "twistd.log"
    started = subprocess.run(
        [sys.executable, "-c", TWISTD, f"--pidfile={pidfile}", f"--logfile={logfile}", "freescore",
         "--config", str(config)],
        env=env(), cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 20
    url = None
    while time.monotonic() < deadline and url is None:
        if logfile.exists():
            m = re.search(r"freescore: listening on (\S+)", logfile.read_text())
            url = m.group(1) if m else None
        if url is None:
            time.sleep(0.1)
    assert url, logfile.read_text() if logfile.exists() else "no log file"
    pid = int(pidfile.read_text())
    try:
        assert requests.get(url + "status", timeout=5).text == "OK"
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and pidfile.exists():
        time.sleep(0.1)
    assert not pidfile.exists(), "daemon did not stop and remove its pid file"
