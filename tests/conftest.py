import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import FreescoreProcess  # noqa: E402


@pytest.fixture
def freescore(tmp_path):
    """Factory: `freescore(config_text)` starts a real process, stopped after the test."""
    procs: list[FreescoreProcess] = []

    def start(config_text: str, name: str = "freescore.toml") -> FreescoreProcess:
        proc = FreescoreProcess(config_text, tmp_path, name).start()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
