"""Bad configurations stop `twistd freescore` with one line naming file and key."""

import pytest

from harness import run_twistd

GOOD_LISTEN = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n'

CASES = {
    "unknown top-level table": ("[nonsense]\nx = 1\n" + GOOD_LISTEN, "nonsense: unknown table"),
    "unknown key in a table": (GOOD_LISTEN + "[http]\ncors = '*'\n", "http.cors: unknown key"),
    "wrong type": (GOOD_LISTEN + "[http]\nshutdown_timeout = 'soon'\n", "http.shutdown_timeout: must be a number"),
    "string for a number": (GOOD_LISTEN + '[hub]\ntimeout = "ten"\n', "hub.timeout: must be a number"),
    "unparsable endpoint": ('[[listen]]\nendpoint = "tcp:notaport"\n', "listen[0].endpoint: cannot parse endpoint"),
    "unknown endpoint type": ('[[listen]]\nendpoint = "carrierpigeon:80"\n', "listen[0].endpoint: cannot parse"),
    "missing endpoint": ("[[listen]]\nname = 'x'\n", "listen[0].endpoint: is required"),
    "no listener": ("[http]\ncors_origin = '*'\n", "listen: give at least one [[listen]] table"),
    "missing certificate file": (
        '[[listen]]\nendpoint = "tcp:0"\ncertificate = "nope.pem"\nprivate_key = "nope.key"\n',
        "listen[0].certificate: no such file",
    ),
    "certificate without key": (
        '[[listen]]\nendpoint = "tcp:0"\ncertificate = "nope.pem"\n',
        "listen[0].certificate: certificate and private_key go together",
    ),
    "toml syntax": ("[[listen]\nendpoint=1", "(syntax):"),
    "grassroots SSE without a heartbeat": (GOOD_LISTEN + '[grassroots]\nsse_heartbeat = 0\n',
                                           "grassroots.sse_heartbeat: must be positive"),
    "negative max_unsent": (GOOD_LISTEN + '[worldclass]\nmax_unsent = -1\n',
                            "worldclass.max_unsent: must not be negative (0: off)"),
    **{f"negative {table}.max_unsent": (GOOD_LISTEN + f'[{table}]\nmax_unsent = -1\n',
                                        f"{table}.max_unsent: must not be negative (0: off)")
       for table in ("clicker", "events")},
    "negative gateway.max_backlog": (GOOD_LISTEN + '[gateway]\napi_uri = "http://127.0.0.1:9/websocket"\n'
                                     'max_backlog = -1\n', "gateway.max_backlog: "),
    "bad hub backend": (GOOD_LISTEN + '[hub]\nbackend = "etcd"\n', "hub.backend: must be 'memory' or 'redis'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_gives_one_line_and_non_zero_exit(tmp_path, case):
    text, expected = CASES[case]
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = run_twistd(config)
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"freescore: {config}: "), lines[0]
    assert expected in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_config_file(tmp_path):
    missing = tmp_path / "absent.toml"
    result = run_twistd_path(missing, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip() == f"freescore: {missing}: (file): no such file"


def run_twistd_path(path, cwd):
    import subprocess
    import sys

    from harness import TWISTD, env

    return subprocess.run(
        [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "freescore", "--config", str(path)],
        env=env(), capture_output=True, text=True, timeout=30, cwd=cwd,
    )


def test_bad_pem_at_start_is_one_line(tmp_path):
    (tmp_path / "c.pem").write_text("garbage")
    (tmp_path / "k.pem").write_text("garbage")
    config = tmp_path / "tls.toml"
    config.write_text('[[listen]]\nendpoint = "tcp:0"\ncertificate = "c.pem"\nprivate_key = "k.pem"\n')
    result = run_twistd(config)
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "listen[0].certificate" in lines[0], result.stderr
