"""The examples in etc/ say what the code does: the TLS example loads, the systemd unit runs the venv's twistd,
and the settings the configurations only mention in comments are real ones."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
from test_docs_settings import CONFIG_TABLES, assert_real_setting

from freescore.config import parse
from freescore.settings import WebSocketSettings
from harness import REPO
from tlsutil import write_server_files

ETC = REPO / "etc"
LETSENCRYPT = "/etc/letsencrypt/live/scores.example.org/"


def test_tls_example_loads_with_real_certificates_and_matches_its_comments(tmp_path):
    files = write_server_files(tmp_path / "tls", cn="scores.example.org")
    text = (ETC / "freescore-tls.toml").read_text()
    assert text.count(LETSENCRYPT) == 2
    text = text.replace(LETSENCRYPT + "fullchain.pem", str(files.certificate))
    text = text.replace(LETSENCRYPT + "privkey.pem", str(files.private_key))
    cfg = parse(text, tmp_path / "freescore-tls.toml")
    public, plain, local = cfg.listeners
    assert (public.name, public.tls, public.serves_metrics) == ("public", True, False)  # "no /metrics here"
    assert (plain.name, plain.tls, plain.endpoint) == ("plain", False, "tcp:80")  # clickers default to port 80
    assert (local.name, local.serves_metrics) == ("local", True)  # "/metrics for Prometheus"
    assert sorted(cfg.services) == ["clicker", "worldclass"]
    assert [cfg.listeners[i].name for i in cfg.listeners_for("worldclass")] == ["public"]
    assert [cfg.listeners[i].name for i in cfg.listeners_for("clicker")] == ["public", "plain"]


def test_tls_example_ipv6_endpoint_in_its_comment_parses(tmp_path):
    """The comment's dual-stack endpoint, as written in TOML, is a valid Twisted endpoint."""
    m = re.search(r'IPv6 too: ("tcp6:[^"]*")', (ETC / "freescore-tls.toml").read_text())
    assert m is not None
    cfg = parse(f"[[listen]]\nendpoint = {m.group(1)}\n", tmp_path / "c.toml")
    assert cfg.listeners[0].endpoint == "tcp6:443:interface=\\:\\:"


def test_systemd_unit_runs_the_twistd_of_the_venv_named_by_one_variable(tmp_path):
    unit = (ETC / "freescore.service").read_text()
    assert "/usr/local/bin" not in unit
    assert re.search(r"^Environment=FREESCORE_VENV=/\S+$", unit, re.MULTILINE)
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    assert exec_start is not None
    program, venv_twistd, *args = exec_start.group(1).split()
    assert (program, venv_twistd) == ("/usr/bin/env", "${FREESCORE_VENV}/bin/twistd")
    assert args[:3] == ["--nodaemon", "--pidfile=", "freescore"]  # foreground: systemd supervises, journald logs
    assert "FREESCORE_VENV" in (REPO / "docs" / "operations.md").read_text()
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (bash .ci/needs-etc.sh); the unit was checked by text only")
    copy = tmp_path / "freescore.service"
    copy.write_text(unit)
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "freescore.service" not in result.stderr, result.stderr


COMMENTED = re.compile(r"^#(?P<indent> +)(?P<setting>\w+ = .*)$")
SECTION = re.compile(r"^\[\[?(?P<name>\w+)\]\]?")
CONFIGS = [ETC / "freescore.toml", ETC / "freescore-tls.toml", REPO / "freescore" / "default.toml"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_settings_in_comments_are_real_settings_of_their_table(config):
    """`# key = value` under a table (uncomment to use) names a key of that table, with a value of its type;
    an indented one (`#   max_connections = 10000`) shows a limit every service table takes."""
    table, checked = None, 0
    for number, line in enumerate(config.read_text().splitlines(), 1):
        section = SECTION.match(line)
        if section:
            table = section.group("name")
        m = COMMENTED.match(line)
        if m is None or table is None:
            continue
        try:
            ((key, value),) = tomllib.loads(m.group("setting")).items()
        except tomllib.TOMLDecodeError:
            continue  # prose that happens to hold " = "
        cls = WebSocketSettings if len(m.group("indent")) > 1 else CONFIG_TABLES[table]
        assert_real_setting(cls, key, value, f"{config.relative_to(REPO)}:{number}")
        checked += 1
    assert checked, f"{config.name}: no setting in a comment found; is COMMENTED out of date?"
