"""Every close each service can send, byte for byte, through the real sites, Autobahn and adapters.

The sockets and the clock are Twisted's test doubles (tests/memnode.py); the
frames are what a client would read. A close frame is opcode 8, the code in two
bytes, then the reason in UTF-8 (RFC 6455 section 5.5.1).
"""

from __future__ import annotations

import pytest
from memnode import Backend, Node, Peer, close_frame

from freescore.broadcast import text_frame

TOO_BIG = "received WebSocket message size {n} exceeds payload limit of {limit} octets"
BAD_UTF8 = "encountered invalid UTF-8 while processing text message at payload octet index 0"
SHUTDOWN = close_frame(1001, "Server shutting down")


def shutdown(node: Node) -> None:
    node.freescore.connections.close_all(node.clock, 3.0)


def only_close(peer: Peer) -> bytes:
    """The close frame the peer got, after whatever else came before it."""
    data = peer.written()
    at = data.rfind(b"\x88")
    return data[at:]


# -- every service: what the base and Autobahn send ---------------------------------
SERVICES = {
    "clicker": ('[clicker]\nstate = "c"\n', "/ws", 65536),
    "fedmsg": ("[fedmsg]\n", "/fedmsg", 65536),
    "events legacy": ('[events]\nsender_token = "t"\n', "/event/", 10000),
    "events sender": ('[events]\nsender_token = "t"\n', "/event-sender/", 1048576),
    "events Engine.IO": ('[events]\nsender_token = "t"\n', "/socket.io/?EIO=4&transport=websocket", 1048576),
    "worldclass": ('[worldclass]\ndata = "wc"\ncreate_tournaments = true\n', "/worldclass/t1/1/judge1", 1048576),
    "grassroots": ('[grassroots]\ndata = "gr"\ncreate_tournaments = true\n', "/grassroots/t1/1", 1048576),
    "freestyle": ('[freestyle]\ndata = "fs"\ncreate_tournaments = true\n', "/freestyle/t1/1/observer", 1048576),
    "gateway": ('[gateway]\napi_uri = "http://127.0.0.1:9"\n', "/gateway", 131072),
}


def started(node_of, name: str) -> Node:
    """The node of one of SERVICES, its service started (the gateway's backend admitting everyone)."""
    tables, _, _ = SERVICES[name]
    node = node_of(tables, name.split()[0])
    if name == "gateway":
        node.service("gateway").backend = Backend()
    return node


@pytest.mark.parametrize("name", SERVICES)
def test_shutdown_closes_1001(node_of, name):
    node = started(node_of, name)
    peer = node.websocket(SERVICES[name][1])
    peer.written()
    shutdown(node)
    assert only_close(peer) == SHUTDOWN


@pytest.mark.parametrize("name", SERVICES)
def test_a_message_over_max_message_closes_1009(node_of, name):
    _, path, limit = SERVICES[name]
    peer = started(node_of, name).websocket(path)
    peer.written()
    peer.send("x" * (limit + 1))
    assert only_close(peer) == close_frame(1009, TOO_BIG.format(n=limit + 1, limit=limit))


@pytest.mark.parametrize("name", SERVICES)
def test_invalid_utf8_closes_1007(node_of, name):
    peer = started(node_of, name).websocket(SERVICES[name][1])
    peer.written()
    peer.send(b"\xff\xfe")
    assert only_close(peer) == close_frame(1007, BAD_UTF8)


@pytest.mark.parametrize("name", SERVICES)
def test_a_protocol_violation_closes_1002(node_of, name):
    peer = started(node_of, name).websocket(SERVICES[name][1])
    peer.written()
    peer.send_raw(bytes((0x81, 2)) + b"hi")  # a client frame must be masked
    assert only_close(peer) == close_frame(1002, "unmasked client-to-server frame")


def test_a_peer_silent_after_a_ping_is_dropped_without_a_close_frame(node_of):
    node = node_of('[clicker]\nstate = "c"\nping_interval = 5\n', "clicker")
    peer = node.websocket("/ws")
    node.clock.advance(5)
    assert peer.frames() == [(9, b"")]  # the ping
    node.clock.advance(5)
    assert peer.written() == b"" and peer.transport.disconnecting


def test_the_close_reason_is_cut_to_123_bytes_on_a_character_boundary(node_of):
    node = node_of('[clicker]\nstate = "c"\n', "clicker")
    peer = node.websocket("/ws")
    peer.proto.close_with(1008, "é" * 100)
    assert peer.written() == close_frame(1008, "é" * 61)


# -- events ------------------------------------------------------------------------------
EVENTS = '[events]\nsender_token = "t"\nrate_limit = 1\nsender_rate_limit = 1\n'


def engineio(node: Node) -> Peer:
    peer = node.websocket("/socket.io/?EIO=4&transport=websocket")
    assert peer.texts()[0].startswith('0{"sid":')
    return peer


def test_engineio_binary_closes_1003(node_of):
    peer = engineio(node_of(EVENTS, "events"))
    peer.send(b"\x01", binary=True)
    assert peer.written() == close_frame(1003, "binary frames are not supported")


def test_engineio_packet_over_max_packet_closes_1009(node_of):
    peer = engineio(node_of(EVENTS + "max_packet = 100\n", "events"))
    peer.send("4" + "x" * 100)
    assert peer.written() == close_frame(1009, "message too big")


def test_engineio_session_end_closes_1000(node_of):
    peer = engineio(node_of(EVENTS, "events"))
    peer.send("1")  # the client's close packet
    assert peer.written() == close_frame(1000)


def test_engineio_missed_pong_closes_1000_after_the_close_packet(node_of):
    node = node_of(EVENTS + "ping_interval = 1000\nping_timeout = 1000\n", "events")
    peer = engineio(node)
    node.clock.advance(1)
    assert peer.texts() == ["2"]
    node.clock.advance(1)
    assert peer.written() == b"\x81\x011" + close_frame(1000)


def test_engineio_bad_packet_ends_the_session_then_closes_1000(node_of):
    peer = engineio(node_of(EVENTS, "events"))
    peer.send("9")  # no such Engine.IO packet type
    assert peer.written() == text_frame("1") + close_frame(1000)


def test_socketio_flood_is_told_once_then_the_session_ends_1000(node_of):
    peer = engineio(node_of(EVENTS, "events"))
    peer.send("40")
    peer.written()
    for _ in range(12):  # burst 5, then strikes beyond the burst
        peer.send('42["last-msg"]')
    data = peer.written()
    assert data.count(b'"code":"rate-limited"') == 1
    assert data.endswith(text_frame("1") + close_frame(1000))


def test_socketio_client_over_max_clients_is_told_then_closed_1000(node_of):
    node = node_of(EVENTS + "max_clients = 1\n", "events")
    first = engineio(node)
    first.send("40")
    assert first.texts()[0].startswith('40{"sid":')
    second = engineio(node)
    second.send("40")
    frames = second.frames()
    texts = [p.decode() for op, p in frames if op == 1]
    assert texts[0].startswith('40{"sid":') and texts[1:] == [
        '42["error",{"status":"error","code":"server-capacity","message":"Server at capacity"}]', "41", "1"]
    assert frames[-1] == (8, close_frame(1000)[2:]) and first.frames() == []  # the first client stays


@pytest.mark.parametrize("path", ["/event/", "/event-sender/"])
def test_legacy_flood_closes_1008(node_of, path):
    node = node_of(EVENTS, "events")
    peer = node.websocket(path)
    for _ in range(12):  # burst 5, then strikes beyond the burst
        peer.send('{"command":"start-msg","start":0}')
    data = peer.written()
    assert data.endswith(close_frame(1008, "rate limit exceeded"))
    assert b'"code":"rate-limited"' in data  # told once before the close


# -- fedmsg ------------------------------------------------------------------------------
def test_fedmsg_slow_consumer_closes_1013(node_of):
    node = node_of("[fedmsg]\nmax_outbound_buffer = 100\n", "fedmsg")
    peer = node.websocket("/fedmsg")
    peer.send('{"topic":"__topic_subscribe__","body":"org"}')
    # Twisted's TCP transport holding what the kernel did not take: more than max_outbound_buffer.
    peer.transport.dataBuffer, peer.transport.offset, peer.transport._tempDataLen = b"\0" * 200, 0, 0
    node.service("fedmsg").publish("org.x", '"hello"')
    node.clock.advance(0)
    assert peer.written() == text_frame('{"topic":"org.x","body":"hello"}') + close_frame(1013, "slow consumer")


# -- worldclass --------------------------------------------------------------------------
def test_worldclass_inactivity_closes_1000(node_of):
    node = node_of('[worldclass]\ndata = "wc"\ncreate_tournaments = true\ninactivity_timeout = 60\nkeepalive = 0\n'
                   "ping_interval = 1000\n", "worldclass")
    peer = node.websocket("/worldclass/t1/1/judge1")
    node.clock.advance(60)
    assert peer.written() == close_frame(1000, "inactive")


# -- freestyle ---------------------------------------------------------------------------
def test_freestyle_sends_nothing_unasked_then_closes_an_idle_page(node_of):
    """Checklist 3: no frame on connect and no JSON ping (upstream freestyle has none), here over
    40 s of the clock; the page is closed after `inactivity_timeout` of silence."""
    node = node_of('[freestyle]\ndata = "fs"\ncreate_tournaments = true\nkeepalive = 0\n', "freestyle")
    peer = node.websocket("/freestyle/t1/1/observer")
    peer.written()
    node.clock.advance(40)
    assert peer.written() == b""
    node.clock.advance(3600)
    assert peer.written() == close_frame(1000, "inactive")


# -- gateway -----------------------------------------------------------------------------
GATEWAY = '[gateway]\napi_uri = "http://127.0.0.1:9"\n'


def gateway(node_of, extra: str = "") -> tuple[Node, Backend]:
    node = node_of(GATEWAY + extra, "gateway")
    backend = node.service("gateway").backend = Backend()
    return node, backend


def test_gateway_push_delete_closes_1000(node_of):
    node, _ = gateway(node_of)
    peer = node.websocket("/gateway")
    conn_id = next(iter(node.service("gateway").local))
    answer = node.http(f"DELETE /@connections/{conn_id} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 204 ")
    assert peer.written() == close_frame(1000)


@pytest.mark.parametrize("extra,after,reason", [
    ("idle_timeout = 30\n", 30, "Idle timeout"),
    ("max_duration = 30\nidle_timeout = 0\n", 30, "Max connection duration"),
])
def test_gateway_timers_close_1001(node_of, extra, after, reason):
    node, _ = gateway(node_of, extra + "timeout = 600000\n")
    peer = node.websocket("/gateway")
    node.clock.advance(after)
    assert peer.written() == close_frame(1001, reason)


def test_gateway_backend_too_slow_closes_1013(node_of):
    node, backend = gateway(node_of)
    backend.hold = True
    peer = node.websocket("/gateway")
    for i in range(300):  # one PUT in flight, 256 queued, then no more room
        peer.send(f"m{i}")
    assert peer.written() == close_frame(1013, "Backend too slow")
