"""`ruff check` is part of the test suite, so CI refuses unlinted code."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    ruff = shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    try:
        result = subprocess.run([*cmd, "check", "freescore", "tests", "bench", "twisted"], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        pytest.skip("ruff is not installed (pip install '.[test]' installs it)")
    assert result.returncode == 0, result.stdout + result.stderr
