"""Configuration parsing: typed settings, listener selection, paths relative to the file."""

from pathlib import Path

import pytest

from freescore.config import ConfigError, parse


def test_example_config_parses():
    repo = Path(__file__).resolve().parent.parent
    cfg = parse((repo / "etc" / "freescore.toml").read_text(), repo / "etc" / "freescore.toml")
    assert cfg.listeners[0].endpoint.startswith("tcp:8080")
    assert cfg.hub.backend == "memory"


def test_defaults_and_listener_names(tmp_path):
    cfg = parse(
        '[[listen]]\nendpoint = "tcp:0"\nname = "public"\n[[listen]]\nendpoint = "unix:/tmp/fs.sock"\n',
        tmp_path / "c.toml",
    )
    assert [lst.name for lst in cfg.listeners] == ["public", ""]
    assert cfg.http.cors_origin == "*"
    assert cfg.services == {}


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "tls").mkdir()
    with pytest.raises(ConfigError) as e:
        parse('[[listen]]\nendpoint = "tcp:0"\ncertificate = "tls/a.pem"\nprivate_key = "tls/a.key"\n',
              tmp_path / "c.toml")
    assert str(tmp_path / "tls" / "a.pem") in str(e.value)


def test_int_is_accepted_where_a_number_is_expected(tmp_path):
    cfg = parse('[[listen]]\nendpoint = "tcp:0"\n[http]\nshutdown_timeout = 2\n', tmp_path / "c.toml")
    assert cfg.http.shutdown_timeout == 2.0


def test_bool_is_not_an_integer(tmp_path):
    with pytest.raises(ConfigError, match="http.shutdown_timeout: must be a number"):
        parse('[[listen]]\nendpoint = "tcp:0"\n[http]\nshutdown_timeout = true\n', tmp_path / "c.toml")


def test_duplicate_listener_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="listener names must be unique"):
        parse('[[listen]]\nendpoint = "tcp:0"\nname = "a"\n[[listen]]\nendpoint = "tcp:0"\nname = "a"\n',
              tmp_path / "c.toml")
