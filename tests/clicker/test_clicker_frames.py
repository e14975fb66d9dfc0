"""The hand-built text frames match RFC 6455 server framing for every length class."""

import pytest

from freescore.clicker.service import text_frame


@pytest.mark.parametrize("n,header", [(0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"),
                                      (65535, b"\x81\x7e\xff\xff"), (65536, b"\x81\x7f" + (65536).to_bytes(8, "big"))])
def test_text_frame_lengths(n, header):
    frame = text_frame("x" * n)
    assert frame == header + b"x" * n


def test_text_frame_is_utf8():
    assert text_frame("é") == b"\x81\x02\xc3\xa9"
