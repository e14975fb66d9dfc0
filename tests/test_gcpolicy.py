"""The full-pass rule of the collector policy, and its settings."""

import pytest

from freescore import config
from freescore.gcpolicy import full_pass_due, next_backoff

LISTEN = '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\n'


@pytest.mark.parametrize(
    ("closed", "still_open", "after", "due"),
    [
        (999, 10, 1000, False),  # not enough closes yet
        (1000, 10, 1000, True),
        (1500, 2000, 1000, False),  # fewer closes than the live set a pass must walk
        (2000, 2000, 1000, True),
        (10**6, 0, 0, False),  # 0 turns the rule off
    ],
)
def test_full_pass_due(closed: int, still_open: int, after: int, due: bool) -> None:
    assert full_pass_due(closed, still_open, after) is due


def test_runtime_defaults() -> None:
    rt = config.parse(LISTEN).runtime
    assert rt.gc_freeze is True
    assert rt.gc_thresholds == (20000, 50, 100)
    assert rt.gc_full_after_closes == 1000
    assert rt.gc_full_interval == 600.0


def test_runtime_empty_thresholds_keep_the_interpreter_defaults() -> None:
    assert config.parse(LISTEN + "[runtime]\ngc_thresholds = []\n").runtime.gc_thresholds == ()


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("gc_thresholds = [700, 10]", "runtime.gc_thresholds", "three integers"),
        ("gc_thresholds = [10, 10, 10]", "runtime.gc_thresholds", "at least 100"),
        ("gc_thresholds = [700, 0, 10]", "runtime.gc_thresholds", "at least 1"),
        ('gc_thresholds = ["a", 1, 1]', "runtime.gc_thresholds[0]", "integer"),
        ("gc_freeze = 1", "runtime.gc_freeze", "boolean"),
        ("gc_full_after_closes = -1", "runtime.gc_full_after_closes", "0 (off) or positive"),
        ("gc_full_interval = -5", "runtime.gc_full_interval", "0 (off) or positive"),
        ("gc_pause = 3", "runtime.gc_pause", "unknown key"),
    ],
)
def test_runtime_errors_name_the_key(text: str, key: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        config.parse(LISTEN + "[runtime]\n" + text + "\n")
    assert e.value.key == key
    assert message in e.value.message


def test_backoff_scales_the_close_count() -> None:
    assert not full_pass_due(1999, 10, 1000, backoff=2)
    assert full_pass_due(2000, 10, 1000, backoff=2)


def test_next_backoff_doubles_while_passes_find_nothing_and_resets_on_garbage() -> None:
    b = 1
    for expected in (2, 4, 8, 16, 32, 64, 64):
        b = next_backoff(b, closed=1000, found=10)
        assert b == expected
    assert next_backoff(b, closed=1000, found=26_000) == 1  # a protocol left cycles again
