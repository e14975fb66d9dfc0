"""worldclass stays single-node: the two-node example config with a [worldclass] table is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import REPO, run_twistd

pytestmark = pytest.mark.integration


def test_worldclass_with_the_redis_hub_is_refused_at_start(tmp_path: Path):
    config = tmp_path / "node-a.toml"
    config.write_text((REPO / "etc" / "two-nodes" / "node-a.toml").read_text() + "\n[worldclass]\n[clicker]\n")
    result = run_twistd(config)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"freescore: {config}: hub.backend: worldclass is single-node (its data directory is local); "
        'use backend = "memory" or disable [worldclass]'
    ]
    assert "listening on" not in result.stdout  # refused before any listener opened


def test_worldclass_disabled_is_fine_with_the_redis_hub(tmp_path: Path):
    from freescore.config import load

    config = tmp_path / "node-a.toml"
    config.write_text((REPO / "etc" / "two-nodes" / "node-a.toml").read_text() + "\n[worldclass]\nenabled = false\n")
    assert "worldclass" not in load(config).services
