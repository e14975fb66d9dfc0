"""The table base every FreeScore service extends: data root rules, delays, the single-node check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from freescore import embedded, registry
from freescore.config import ConfigError, parse
from freescore.poomsae.settings import FreeScoreSettings
from freescore.settings import Config, HubSettings, SettingError
from harness import REPO

FREESCORE = sorted(name for name, cls in registry.SERVICES.items() if issubclass(cls, FreeScoreSettings))


@dataclass(frozen=True)
class Table(FreeScoreSettings):
    delay: float = 1.0

    def validate(self, base: Path) -> "Table":
        self.non_negative("delay")
        return super().validate(base)


def test_relative_data_root_resolves_against_the_config_folder(tmp_path: Path) -> None:
    assert Table(data=Path("d")).validate(tmp_path).data == (tmp_path / "d").resolve()


def test_bad_values_name_their_key(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cases = [
        (Table(delay=-1), "delay"),
        (Table(inactivity_timeout=0), "inactivity_timeout"),
        (Table(max_message=100), "max_message"),
        (Table(data=Path("file")), "data"),
        (Table(data=Path("missing"), create_data=False), "data"),
    ]
    for table, key in cases:
        with pytest.raises(SettingError) as e:
            table.validate(tmp_path)
        assert e.value.key == key


def test_a_freescore_service_refuses_the_redis_hub(tmp_path: Path) -> None:
    config = Config(file=tmp_path / "x.toml", listeners=(), hub=HubSettings(backend="redis"))
    with pytest.raises(SettingError) as e:
        Table().check(config, "freestyle")
    assert e.value.key == "hub.backend" and "freestyle is single-node" in e.value.message
    Table().check(Config(file=tmp_path / "x.toml", listeners=()), "freestyle")


@pytest.mark.parametrize("name", FREESCORE)
def test_each_freescore_table_is_refused_with_the_redis_hub_naming_itself(name: str, tmp_path: Path) -> None:
    """docs/redis.md names the line each service stops with."""
    text = f'[[listen]]\nendpoint = "tcp:0"\n[hub]\nbackend = "redis"\n[{name}]\n'
    with pytest.raises(ConfigError, match=f"hub.backend: {name} is single-node"):
        parse(text, tmp_path / "freescore.toml")


def test_every_freescore_service_defaults_to_one_data_root(tmp_path: Path) -> None:
    """A table without `data` shares the root of the others (each keeps its own forms-<service> folder)."""
    assert {"worldclass", "freestyle", "grassroots"} <= set(FREESCORE)
    text = '[[listen]]\nendpoint = "tcp:0"\n' + "".join(f"[{name}]\n" for name in FREESCORE)
    config = parse(text, tmp_path / "freescore.toml")
    assert {name: config.services[name].data for name in FREESCORE} == dict.fromkeys(
        FREESCORE, (tmp_path / "var" / "freescore").resolve())


@pytest.mark.parametrize("source", ["etc/freescore.toml", "embedded default"])
def test_the_shipped_configurations_give_every_freescore_service_one_data_root(source: str, tmp_path: Path) -> None:
    if source == "embedded default":
        config = embedded.load(cwd=tmp_path)
    else:
        config = parse((REPO / source).read_text(encoding="utf-8"), REPO / source)
    roots = {config.services[name].data for name in FREESCORE if name in config.services}
    assert len(roots) == 1, roots
