"""Every HTTP error status each service can answer, with its body, through the real sites and resources.

Bodies are `{"error": ...}` (web.json_error) unless the protocol's own
specification gives another shape: Engine.IO's `{"code", "message"}`, the
event daemon's error objects, the gateway push API's AWS-style errors.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from memnode import Backend, Node
from twisted.internet.defer import fail, succeed


class Answer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        self.reason = lines[0].split(" ", 2)[2]
        self.headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
        if self.headers.get("transfer-encoding") == "chunked":
            self.body = dechunk(self.body)

    def json(self) -> object:
        return json.loads(self.body)


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        n = int(size, 16)
        out, data = out + data[:n], data[n + 2:]
        if n == 0:
            break
    return out


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: node", f"Content-Length: {len(body)}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def ask(node: Node, method: str, path: str, body: bytes = b"", **headers: str) -> Answer:
    return Answer(node.http(request(method, path, body, **headers)))


# -- every listener ---------------------------------------------------------------------
def test_an_unmounted_path_is_a_json_404(node_of):
    a = ask(node_of(""), "GET", "/nope")
    assert (a.status, a.headers["content-type"], a.json()) == (404, "application/json", {"error": "not found"})


def test_a_body_over_max_body_is_413_before_it_is_read(node_of):
    a = ask(node_of("[http]\nmax_body = 1024\n"), "POST", "/nope", b"x" * 2000)
    assert (a.status, a.json()) == (413, {"error": "request body larger than 1024 bytes"})


# -- every WebSocket endpoint -----------------------------------------------------------
ENDPOINTS = {
    "clicker": ('[clicker]\nstate = "c"\n', "/ws"),
    "fedmsg": ("[fedmsg]\n", "/fedmsg"),
    "events legacy": ('[events]\nsender_token = "t"\n', "/event/"),
    "events sender": ('[events]\nsender_token = "t"\n', "/event-sender/"),
    "gateway": ('[gateway]\napi_uri = "http://127.0.0.1:9"\n[clicker]\nstate = "c"\n', "/gateway"),
}


@pytest.mark.parametrize("name", ENDPOINTS)
def test_plain_http_on_a_websocket_path_is_426(node_of, name):
    tables, path = ENDPOINTS[name]
    a = ask(node_of(tables), "GET", path)
    assert (a.status, a.reason, a.headers["upgrade"]) == (426, "Upgrade Required", "websocket")
    assert a.json() == {"error": "this path takes WebSocket connections only"}


@pytest.mark.parametrize("name", ENDPOINTS)
def test_a_path_below_a_websocket_path_is_404(node_of, name):
    tables, path = ENDPOINTS[name]
    a = ask(node_of(tables), "GET", path.rstrip("/") + "/xyz", Upgrade="websocket")
    assert (a.status, a.json()) == (404, {"error": "not found"})


@pytest.mark.parametrize("name", ENDPOINTS)
def test_an_origin_not_allowed_is_403_and_one_connection_too_many_503(node_of, name):
    tables, path = ENDPOINTS[name]
    table = tables.split("\n")[0]
    tables = tables.replace(table, table + '\nallowed_origins = ["https://ok.example"]\nmax_connections = 1', 1)
    node = node_of(tables, *{name.split()[0]})
    if name == "gateway":
        node.service("gateway").backend = Backend()
    assert node.websocket(path, {"Origin": "https://evil.example"}).head.startswith(b"HTTP/1.1 403 ")
    assert node.websocket(path, {"Origin": "https://ok.example"}).status == 101
    assert node.websocket(path).head.startswith(b"HTTP/1.1 503 ")


# -- events -------------------------------------------------------------------------------
EVENTS = '[events]\nsender_token = "t"\nmax_packet = 100\nmax_clients = 1\nmax_connections = 1\n'


def eio(node: Node, method: str = "GET", body: bytes = b"", **query: str) -> Answer:
    return ask(node, method, "/socket.io/?" + urlencode({"EIO": "4", "transport": "polling", **query}), body)


def test_engineio_refusals_are_400_with_engineios_codes(node_of):
    node = node_of(EVENTS, "events")
    assert eio(node, transport="carrier-pigeon").json() == {"code": 0, "message": "Transport unknown"}
    assert eio(node, sid="nope").json() == {"code": 1, "message": "Session ID unknown"}
    assert eio(node, "POST").json() == {"code": 2, "message": "Bad handshake method"}
    assert eio(node, EIO="3").json() == {"code": 5, "message": "Unsupported protocol version"}
    sid = json.loads(eio(node).body[1:])["sid"]
    held = node.connect()
    held.protocol.dataReceived(request("GET", "/socket.io/?" + urlencode(
        {"EIO": "4", "transport": "polling", "sid": sid})))
    second = eio(node, sid=sid)
    assert (second.status, second.json()) == (400, {"code": 3, "message": "Bad request"})


def test_engineio_handshake_over_max_connections_is_503(node_of):
    node = node_of(EVENTS, "events")
    assert eio(node).status == 200
    a = eio(node)
    assert (a.status, a.json()) == (503, {"code": 3, "message": "Bad request"})


def test_engineio_post_over_max_packet_is_413_in_plain_text(node_of):
    node = node_of(EVENTS, "events")
    sid = json.loads(eio(node).body[1:])["sid"]
    a = eio(node, "POST", b"4" + b"x" * 100, sid=sid)
    assert (a.status, a.headers["content-type"], a.body) == (413, "text/plain; charset=UTF-8", b"payload too large")


def test_engineio_post_with_a_bad_packet_is_400_and_ends_the_session(node_of):
    node = node_of(EVENTS, "events")
    sid = json.loads(eio(node).body[1:])["sid"]
    a = eio(node, "POST", b"9", sid=sid)
    assert (a.status, a.json()) == (400, {"code": 3, "message": "Bad request"})
    assert eio(node, sid=sid).body == b"1"  # the close packet, then the session is gone
    assert eio(node, sid=sid).json() == {"code": 1, "message": "Session ID unknown"}


def test_engineio_websocket_handshake_refused_with_400(node_of):
    node = node_of(EVENTS, "events")
    assert node.websocket("/socket.io/?EIO=4&transport=polling").head.startswith(b"HTTP/1.1 400 ")


def test_channels_errors(node_of):
    node = node_of(EVENTS + "channels_timeout = 1000\nmax_subscriptions = 1\n", "events")
    empty = ask(node, "GET", "/channels/")
    assert (empty.status, empty.headers["content-type"], empty.body) == (400, "text/plain", b"400 Bad Request")
    many = ask(node, "GET", "/channels/a|b")
    assert (many.status, many.json()["code"]) == (400, "too-many-subscriptions")
    held = node.connect()
    held.protocol.dataReceived(request("GET", "/channels/a?last=99999999999999"))
    full = ask(node, "GET", "/channels/b?last=99999999999999")
    assert (full.status, full.json()) == (503, {"status": "error", "code": "server-capacity",
                                                 "message": "Server at capacity"})
    node.clock.advance(1)
    late = Answer(bytes(held.value()))
    assert (late.status, late.json()) == (504, {"error": "timeout"})


# -- fedmsg -------------------------------------------------------------------------------
FEDMSG = '[fedmsg]\npublish_token = "p"\nmax_publish_body = 64\n'
GOOD = {"Authorization": "Bearer p"}


def publish(node: Node, body: bytes, method: str = "POST", **headers: str) -> Answer:
    return ask(node, method, "/fedmsg/publish", body, **headers)


def test_fedmsg_publish_errors(node_of):
    node = node_of(FEDMSG, "fedmsg")
    get = publish(node, b"", "GET")
    assert (get.status, get.headers["allow"], get.json()) == (405, "POST", {"error": "use POST"})
    wrong = publish(node, b"{}", Authorization="Bearer q")
    assert (wrong.status, wrong.headers["www-authenticate"]) == (401, 'Bearer realm="fedmsg"')
    assert wrong.json() == {"error": "missing or wrong bearer token"}
    big = publish(node, b"x" * 65, **GOOD)
    assert (big.status, big.json()) == (413, {"error": "body larger than 64 bytes"})
    bad = publish(node, b'{"topic": ""}', **GOOD)
    assert (bad.status, bad.json()) == (400, {"error": "'topic' must be a non-empty string"})
    node.service("fedmsg").ctx.hub.publish = lambda *a, **k: fail(RuntimeError("hub down"))
    down = publish(node, b'{"topic": "t", "body": 1}', **GOOD)
    assert (down.status, down.json()) == (503, {"error": "hub unavailable"})


def test_fedmsg_publishing_off_is_404_saying_so(node_of):
    a = publish(node_of("[fedmsg]\n"), b"{}")
    assert (a.status, a.json()) == (404, {"error": "publishing is off: no publish_token is configured"})


# -- gateway ------------------------------------------------------------------------------
GATEWAY = ('[[listen]]\nname = "push"\nendpoint = "tcp:0:interface=127.0.0.1"\n'
           '[gateway]\napi_uri = "http://127.0.0.1:9"\npush_token = "s"\npush_listen = ["push"]\n'
           'push_allow = ["192.0.2.0/24"]\nmax_message = 8\nmax_outbound_buffer = 10\n')


def push(node: Node, method: str, conn_id: str, body: bytes = b"", listener: int = 1, **headers: str) -> Answer:
    raw = request(method, f"/@connections/{conn_id}", body, **({"Authorization": "Bearer s"} | headers))
    return Answer(node.http(raw, listener))


def aws(a: Answer) -> tuple[int, str, object]:
    return a.status, a.headers.get("x-amzn-errortype", ""), a.json()


def test_gateway_push_api_errors(node_of):
    node = node_of(GATEWAY, "gateway")
    node.service("gateway").backend = Backend()
    peer = node.websocket("/gateway")
    conn_id = next(iter(node.service("gateway").local))
    assert push(node, "GET", conn_id, listener=0).status == 404  # not a push listener
    assert aws(push(node, "GET", conn_id, Authorization="Bearer x")) == (
        401, "UnauthorizedException", {"code": "UNAUTHORIZED", "message": "Missing or invalid credentials"})
    assert aws(push(node, "POST", conn_id, b"123456789")) == (
        413, "PayloadTooLargeException", {"code": "MESSAGE_TOO_LONG", "message": "Message is over 8 bytes"})
    assert aws(push(node, "PUT", conn_id, b"\xff")) == (400, "", {
        "code": "BAD_REQUEST",
        "message": "A text push must be UTF-8; send binary data as application/octet-stream"})
    assert aws(push(node, "PATCH", conn_id))[:2] == (405, "")
    assert aws(push(node, "GET", "not-there")) == (
        410, "GoneException", {"code": "NOT_FOUND", "message": "The connection with the provided id no longer exists"})
    peer.transport.dataBuffer, peer.transport.offset, peer.transport._tempDataLen = b"\0" * 20, 0, 0
    full = push(node, "POST", conn_id, b"hi")
    assert aws(full) == (
        429, "LimitExceededException", {"code": "LIMIT_EXCEEDED", "message": "The client's outbound buffer is full"})
    assert full.reason == "Too Many Requests"  # Twisted knows no phrase for 429


def test_gateway_push_over_max_body_is_413_in_the_push_apis_shape(node_of):
    node = node_of(GATEWAY + "[http]\nmax_body = 1024\n", "gateway")
    assert aws(push(node, "POST", "x", b"y" * 2000)) == (
        413, "PayloadTooLargeException", {"code": "MESSAGE_TOO_LONG", "message": "Message is over 8 bytes"})


def test_gateway_push_routing_errors(node_of):
    """503 while the hub is down, 504 when the node holding the id does not answer, 503 when this one stops."""
    from freescore.gateway.routing import NODE_CALL_TIMEOUT, SPACE

    node = node_of(GATEWAY, "gateway")
    hub = node.service("gateway").hub
    hub.is_up = lambda: False
    assert aws(push(node, "GET", "nobody")) == (
        503, "", {"code": "HUB_DOWN", "message": "the hub is unreachable, so the node holding it is unknown"})
    hub.is_up = lambda: True
    hub.join(SPACE, "elsewhere", {"node": "other"})  # that node crashed; its presence has not expired
    held = node.connect(1)
    held.protocol.dataReceived(request("GET", "/@connections/elsewhere", Authorization="Bearer s"))
    node.clock.advance(NODE_CALL_TIMEOUT)
    timed_out = Answer(bytes(held.value()))
    assert aws(timed_out) == (504, "", {"code": "NODE_TIMEOUT", "message": "node other did not answer"})
    held = node.connect(1)
    held.protocol.dataReceived(request("GET", "/@connections/elsewhere", Authorization="Bearer s"))
    node.service("gateway").router.stop()
    assert aws(Answer(bytes(held.value()))) == (503, "", {"code": "SHUTTING_DOWN", "message": "the node is stopping"})


def test_gateway_push_that_fails_inside_is_500(node_of):
    node = node_of(GATEWAY, "gateway")
    node.service("gateway").hub.member = lambda *a: fail(RuntimeError("presence unreadable"))
    assert aws(push(node, "GET", "x")) == (500, "", {"code": "INTERNAL_ERROR", "message": "push failed"})


def test_gateway_push_from_a_network_not_allowed_is_403(node_of):
    node = node_of(GATEWAY.replace("192.0.2.0/24", "10.0.0.0/8"), "gateway")
    assert aws(push(node, "GET", "x")) == (403, "ForbiddenException", {"code": "FORBIDDEN", "message": "Forbidden"})


@pytest.mark.parametrize("decision,status", [("DENY_UNAUTHORIZED", 401), ("DENY_FORBIDDEN", 403),
                                             ("DENY_BACKEND_ERROR", 502), ("DENY_BACKEND_TIMEOUT", 504)])
def test_gateway_handshake_refusals_carry_the_backends_answer(node_of, decision, status):
    from freescore.gateway import wire

    node = node_of(GATEWAY, "gateway")
    backend = node.service("gateway").backend = Backend()
    backend.connect = lambda *a: succeed(getattr(wire, decision))  # type: ignore[method-assign]
    peer = node.websocket("/gateway")
    assert peer.status == status
    assert json.loads(peer._early) == json.loads(wire.deny_body(status))


# -- worldclass ---------------------------------------------------------------------------
def test_worldclass_refuses_unknown_routes_and_tournaments_with_404(node_of, tmp_path):
    node = node_of('[worldclass]\ndata = "wc"\n', "worldclass")
    assert node.websocket("/worldclass/t1").head.startswith(b"HTTP/1.1 404 ")
    assert node.websocket("/worldclass/nope/1/judge1").head.startswith(b"HTTP/1.1 404 ")


def test_worldclass_plain_requests_get_upstreams_json_error_with_200(node_of):
    a = ask(node_of('[worldclass]\ndata = "wc"\ncors_origin = "http://fs"\n'), "GET", "/worldclass/nope")
    assert (a.status, a.headers["access-control-allow-origin"]) == (200, "http://fs")
    assert a.json() == {"error": "FreeScore Worldclass Service Error: Unknown command: worldclass/nope"}


# -- grassroots ---------------------------------------------------------------------------
def test_grassroots_refuses_routes_with_a_role_and_unknown_tournaments_with_404(node_of):
    node = node_of('[grassroots]\ndata = "gr"\n', "grassroots")
    assert node.websocket("/grassroots/t1/1/observer").head.startswith(b"HTTP/1.1 404 ")
    assert node.websocket("/grassroots/nope/1").head.startswith(b"HTTP/1.1 404 ")


def test_grassroots_http_errors_are_upstreams_json_with_200_and_the_sse_refusals_400_404(node_of):
    node = node_of('[grassroots]\ndata = "gr"\ncors_origin = "http://fs"\n', "grassroots")
    for path in ("/grassroots/nope", "/grassroots/webservice/nope/x", "/grassroots/webservice/test/1/8.3"):
        a = ask(node, "GET", path)
        assert (a.status, a.headers["access-control-allow-origin"]) == (200, "http://fs")
        assert a.json() == {"error": "FreeScore Grassroots: Unknown command"}
    a = ask(node, "GET", "/grassroots/webservice/test/1/judges")
    assert (a.status, a.json()) == (200, {"error": "No tournament 'test'"})
    a = ask(node, "GET", "/cgi-bin/freescore/forms/grassroots/update?tournament=test&ring=x")
    assert (a.status, a.json()) == (400, {"error": "Invalid ring 'x'"})
    a = ask(node, "GET", "/cgi-bin/freescore/forms/grassroots/update?tournament=test&ring=1")
    assert (a.status, a.json()) == (404, {"error": "No tournament 'test'"})
