"""The table base every FreeScore service extends: data root rules, delays, the single-node check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from freescore.poomsae.settings import FreeScoreSettings
from freescore.settings import Config, HubSettings, SettingError


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
