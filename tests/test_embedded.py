"""The embedded default configuration: what `twistd freescore` runs without --config."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactor

from freescore import embedded, listeners, registry, tap
from freescore.config import ConfigError

REPO = Path(__file__).resolve().parent.parent
# Where the embedded default and the example differ on purpose: data paths (the example's are
# relative to etc/, the default's to the current folder) and the demo tournament.
DIFFERENT = {("clicker", "state"), ("worldclass", "data"), ("worldclass", "demo"), ("freestyle", "data"),
             ("grassroots", "data")}


def test_embedded_default_enables_every_service_on_loopback_8080(tmp_path):
    cfg = embedded.load(cwd=tmp_path)
    assert [lst.endpoint for lst in cfg.listeners] == ["tcp:8080:interface=127.0.0.1"]
    assert cfg.hub.backend == "memory"
    assert sorted(cfg.services) == sorted(registry.SERVICES)
    data = tmp_path / embedded.DATA_DIR
    assert cfg.services["clicker"].state == data / "clicker"  # type: ignore[attr-defined]
    assert cfg.services["worldclass"].data == data / "worldclass"  # type: ignore[attr-defined]
    assert cfg.services["worldclass"].demo is True  # type: ignore[attr-defined]
    assert cfg.services["freestyle"].data == data / "worldclass"  # type: ignore[attr-defined]
    assert cfg.services["grassroots"].data == data / "worldclass"  # type: ignore[attr-defined]


def test_embedded_default_is_the_example_with_its_own_data_paths():
    """etc/freescore.toml documents the same settings the package runs with."""
    default = tomllib.loads(embedded.text())
    example = tomllib.loads((REPO / "etc" / "freescore.toml").read_text())
    assert default.keys() == example.keys()
    for table, values in default.items():
        if isinstance(values, dict):
            strip = {key for t, key in DIFFERENT if t == table}
            assert {k: v for k, v in values.items() if k not in strip} == {
                k: v for k, v in example[table].items() if k not in strip}, table
        else:
            assert values == example[table], table
    assert "demo" not in example["worldclass"]


def test_listen_replaces_the_endpoint_and_keeps_every_check(tmp_path):
    cfg = embedded.load("tcp:0:interface=127.0.0.1", cwd=tmp_path)
    assert [lst.endpoint for lst in cfg.listeners] == ["tcp:0:interface=127.0.0.1"]
    # on every interface the gateway push API and the events legacy sender would be open to
    # anyone: refused as they are from a file
    with pytest.raises(ConfigError, match="loopback"):
        embedded.load("tcp:0", cwd=tmp_path)
    # what needs Twisted to check is checked as for a file, before anything starts
    cfg = embedded.load("tcp:notaport:interface=127.0.0.1", cwd=tmp_path)
    with pytest.raises(ConfigError, match="listen\\[0\\].endpoint: cannot parse"):
        listeners.check(cfg, MemoryReactor())


def test_print_config_prints_the_embedded_text_and_exits_0(capsys):
    with pytest.raises(SystemExit) as done:
        tap.Options().parseOptions(["--print-config"])
    assert done.value.code == 0
    assert capsys.readouterr().out == embedded.text()
