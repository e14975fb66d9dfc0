"""The open-files limit is raised once, for the process, whatever services run, and the result is logged."""

from __future__ import annotations

import re
import resource

import pytest

LISTEN = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n'


def open_files(pid: int) -> tuple[str, str]:
    """(soft, hard) from /proc/PID/limits, as the kernel reports them."""
    with open(f"/proc/{pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return soft, hard


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_NOFILE"), reason="no RLIMIT_NOFILE here")
def test_default_raises_the_soft_limit_to_the_hard_one_with_a_log_line(freescore):
    fs = freescore(LISTEN + "[fedmsg]\nnofile = 100\n")
    soft, hard = open_files(fs.proc.pid)
    assert soft == hard
    assert re.search(r"freescore: open-files limit (raised from \d+ to \d+|\d+ \(hard \d+\))", fs.log())
    assert "fedmsg: `nofile` is deprecated and ignored" in fs.log()


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_NOFILE"), reason="no RLIMIT_NOFILE here")
def test_runtime_nofile_never_lowers_the_limit(freescore):
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)  # what twistd inherits
    fs = freescore(LISTEN + f"[runtime]\nnofile = {soft - 1}\n")
    assert open_files(fs.proc.pid)[0] == str(soft)


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_NOFILE"), reason="no RLIMIT_NOFILE here")
def test_runtime_nofile_raises_the_soft_limit_to_it(freescore):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # what twistd inherits: well below the hard limit
    try:
        fs = freescore(LISTEN + "[runtime]\nnofile = 1500\n")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert open_files(fs.proc.pid)[0] == "1500"
    assert "freescore: open-files limit raised from 1024 to 1500" in fs.log()
