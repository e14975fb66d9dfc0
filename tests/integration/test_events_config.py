"""Start-up refusal of an unauthenticated legacy sender on a public listener, with the real twistd."""

from __future__ import annotations

import requests

from harness import FreescoreProcess, run_twistd


def test_open_legacy_sender_on_public_listener_refuses_in_one_line(tmp_path):
    config = tmp_path / "open.toml"
    config.write_text('[[listen]]\nendpoint = "tcp:0"\n\n[events]\n')
    result = run_twistd(config)
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        f"freescore: {config}: events.sender_token: the legacy sender would be open on a non-loopback "
        "listener: set sender_token, or mount [events] only on loopback listeners, or legacy = false"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_loopback_only_open_sender_still_starts(tmp_path):
    fs = FreescoreProcess(
        '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n\n[events]\n', tmp_path
    ).start()
    try:
        r = requests.get(fs.url(0) + "/channels/", timeout=5)
        assert r.status_code == 400
    finally:
        fs.stop()
    assert "Traceback" not in fs.log()
