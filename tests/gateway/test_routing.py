"""Push commands forwarded between nodes survive the hub's JSON round trip."""

import json

from hypothesis import given
from hypothesis import strategies as st

from freescore.gateway import wire
from freescore.gateway.service import decode_command, encode_command


@given(st.one_of(
    st.builds(wire.PushSend, st.binary(max_size=64), st.just(True)),
    st.builds(wire.PushSend, st.text(max_size=64).map(lambda t: t.encode("utf-8")), st.just(False)),
    st.just(wire.PushInfo()),
    st.just(wire.PushClose()),
))
def test_commands_round_trip_through_json(command):
    payload = json.loads(json.dumps(encode_command(command)))
    assert decode_command(payload) == command
