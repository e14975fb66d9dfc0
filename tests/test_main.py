"""`freescore ARGS` / `python -m freescore ARGS`: one command line split into twistd's and freescore's options."""

from __future__ import annotations

import pytest
from twisted.scripts.twistd import ServerOptions

from freescore import tap
from freescore.__main__ import split_args


@pytest.mark.parametrize(
    ("argv", "to_twistd", "to_own"),
    [
        (["-n", "--pidfile="], ["-n", "--pidfile="], []),
        (["-n", "--config", "x.toml"], ["-n"], ["--config", "x.toml"]),
        (["--config=x.toml", "--pidfile", "p", "-n"], ["--pidfile", "p", "-n"], ["--config=x.toml"]),
        (["-c", "x", "-l", "log", "-nl", "log2"], ["-l", "log", "-nl", "log2"], ["-c", "x"]),
        (["--listen", "tcp:0", "--logfile=-", "--print-config"], ["--logfile=-"],
         ["--listen", "tcp:0", "--print-config"]),
        (["-u", "1000", "-g", "1000", "--syslog", "-cfile"], ["-u", "1000", "-g", "1000", "--syslog"], ["-cfile"]),
    ],
)
def test_freescore_command_line_splits_into_twistd_and_freescore_options(argv, to_twistd, to_own):
    assert split_args(argv, tap.Options(), ServerOptions()) == (to_twistd, to_own)
