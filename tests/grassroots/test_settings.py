"""The `[grassroots]` table's own rules."""

from __future__ import annotations

import pytest

from freescore.grassroots.settings import Settings
from freescore.settings import SettingError, WebSocketSettings


def test_defaults_resolve_the_data_root(tmp_path):
    s = Settings().validate(tmp_path)
    assert isinstance(s, WebSocketSettings)
    assert s.data == (tmp_path / "var/freescore").resolve()
    assert s.autopilot == (0.0, 9.0, 14.0, 18.0)
    assert (s.rest_path, s.sse_path) == ("/grassroots/webservice", "/cgi-bin/freescore/forms/grassroots/update")


@pytest.mark.parametrize(("changes", "key"), [
    ({"autopilot": (0.0, 9.0, 5.0, 18.0)}, "autopilot"),
    ({"autopilot": (0.0, 9.0)}, "autopilot"),
    ({"rest_path": "grassroots"}, "rest_path"),
    ({"sse_path": "/x/"}, "sse_path"),
    ({"sse_replay": 0}, "sse_replay"),
    ({"sse_max_unsent": 10}, "sse_max_unsent"),
    ({"sse_heartbeat": -1.0}, "sse_heartbeat"),
    ({"sse_heartbeat": 0.0}, "sse_heartbeat"),  # no beat: a vanished display would keep its slot forever
    ({"max_unsent": -1}, "max_unsent"),
    ({"inactivity_timeout": 0.0}, "inactivity_timeout"),
])
def test_bad_values_name_their_key(tmp_path, changes, key):
    with pytest.raises(SettingError) as e:
        Settings(**changes).validate(tmp_path)
    assert e.value.key == key


def test_data_must_be_a_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SettingError, match="not a folder"):
        Settings(data=tmp_path / "f").validate(tmp_path)
    with pytest.raises(SettingError, match="no such folder"):
        Settings(data=tmp_path / "nope", create_data=False).validate(tmp_path)
