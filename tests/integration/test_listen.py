"""Listening: a port that cannot be bound stops start-up (issue 12 item 2); a large listen backlog (issue 17 item 1)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness import TWISTD, env, run_twistd

needs_ss = pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) not installed; .ci/needs-http.sh")


@pytest.fixture
def taken_port():
    """A loopback port another socket listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_taken_port_stops_start_up_with_one_line_and_status_1(tmp_path, taken_port):
    config = tmp_path / "freescore.toml"
    config.write_text(f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[[listen]]
endpoint = "tcp:{taken_port}:interface=127.0.0.1"
""")
    result = run_twistd(config, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    failures = [line for line in output.splitlines() if "cannot listen" in line]
    assert len(failures) == 1, output
    assert f"tcp:{taken_port}:interface=127.0.0.1" in failures[0] and "in use" in failures[0]
    assert "freescore: ready" not in output
    assert "Traceback" not in output


def test_a_taken_port_stops_a_daemon_too(tmp_path, taken_port):
    """twistd's parent waits for the daemon to say it started: it must hear the failure and exit 1."""
    config = tmp_path / "freescore.toml"
    config.write_text(f'[[listen]]\nendpoint = "tcp:{taken_port}:interface=127.0.0.1"\n')
    result = subprocess.run(
        [sys.executable, "-c", TWISTD, f"--pidfile={tmp_path}/twistd.pid", f"--logfile={tmp_path}/twistd.log",
         "freescore", "--config", str(config)],
        env=env(), capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot listen on" in result.stderr
    log = (tmp_path / "twistd.log").read_text()
    assert f"freescore: cannot listen on tcp:{taken_port}:interface=127.0.0.1" in log
    assert "freescore: ready" not in log


def listen_backlog(port: int) -> int:
    """The backlog of the socket listening on `port`: `ss -ltn` shows it as Send-Q."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    (line,) = out.splitlines()
    return int(line.split()[2])


@needs_ss
def test_listeners_get_a_large_backlog_unless_the_endpoint_sets_one(freescore, tmp_path):
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    expected = max(somaxconn, 1024)
    fs = freescore(f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[[listen]]
endpoint = "tcp:0:interface=127.0.0.1:backlog=77"

[[listen]]
endpoint = "unix:{tmp_path}/fs.sock"
""")
    assert listen_backlog(fs.port(0)) == min(expected, somaxconn)  # the kernel caps it at somaxconn
    assert listen_backlog(fs.port(1)) == 77
    assert f"listen backlog {expected} on {fs.urls[0]}" in fs.log()
    assert f"listen backlog 77 on {fs.urls[1]}" in fs.log()
    fs.wait_log(rf"listen backlog {expected} on http\+unix://")
