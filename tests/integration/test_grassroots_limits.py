"""grassroots's bad input and limits on all three transports, against a real `twistd freescore`.

REST answers upstream's error form (HTTP 200 `{"error"}` with CORS) or the
site's own refusal (413, 414), the WebSocket its error frame or a clean close,
SSE a JSON refusal; nothing crashes, hangs, logs a traceback or leaves a file
half written. SSE streams and WebSockets share `max_connections`, a display that
stops reading is dropped once `sse_max_unsent` bytes wait for it, and stopping
the server ends every stream with HTTP's last chunk.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "grassroots"))
from gr_client import CORS, Peer, Rest, SseClient, assert_refused, config, make_rings, wait_until  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import raw_request  # noqa: E402

pytestmark = pytest.mark.integration
SSE = "/cgi-bin/freescore/forms/grassroots/update"
UNKNOWN = {"error": "FreeScore Grassroots: Unknown command"}


def start(freescore, tmp_path, **extra):
    forms = make_rings(tmp_path / "data")
    fs = freescore(config(data=str(tmp_path / "data"), **extra))
    rest = Rest(fs.url(1))
    rest.post("/test/1/p01", {"name": "p01", "header": {"judges": 3}, "athletes": ["Ana LIME", "Ben COVE"]})
    return fs, forms, rest


def files(forms: Path) -> dict[str, str]:
    """Every file under the tournament's forms folder (temporary files included), by relative path."""
    return {str(p.relative_to(forms)): p.read_text() for p in sorted(forms.rglob("*")) if p.is_file()}


def no_traceback(fs) -> None:
    assert "Traceback" not in fs.log() and "Unhandled" not in fs.log(), fs.log()


def test_rest_bad_input_answers_the_error_form_and_changes_no_file(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    before = files(forms)
    for path in ("/", "/test", "/test/1", "/test/1/0/83/x",
                 "/test/1/0/vote/green/x", "/test/1/0/8.3",
                 "/..%2F..%2Fetc/1/judges", "/test/..%2F2/judges", "/test/1%2F..%2F2/judges", "/%2e%2e/1/judges",
                 "/test/%2e%2e/judges", "/test/1/%2e%2e/83", "/test/1/0%2F1/83"):
        assert rest.get(path) == UNKNOWN, path
    for path, error in [
        ("/te$t/1/judges", "Invalid db 'te$t'"), ("/test/0/judges", "Invalid ring '0'"),
        ("/test/1000/judges", "Invalid ring '1000'"), ("/test/ring/judges", "Invalid ring 'ring'"),
        ("/test/1/athlete/sideways", "Invalid judge 'athlete'"), ("/test/1/division/nope", "Invalid judge 'division'"),
        ("/test/1/-1/83", "Invalid judge '-1'"), ("/test/1/3/83", "Invalid judge '3'"),
        ("/test/1/999/83", "Invalid judge '999'"), ("/test/1/0/vote", "Invalid score 'vote'"),
        ("/test/1/0/tb", "Invalid score 'tb'"), ("/test/1/0/1e2", "Invalid score '1e2'"),
        ("/test/1/0/nan", "Invalid score 'nan'"), ("/test/1/0/99999", "Invalid score '99999'"),
        ("/test/1/0/vote/green", "Invalid vote 'green'"), ("/test/1/0/tb/x", "Invalid tiebreaker 'x'"),
        ("/nosuch/1/judges", "No tournament 'nosuch'"),
    ]:
        got = rest.get(path)
        assert set(got) == {"error"} and got["error"].startswith(error), (path, got)
    for method in ("PUT", "DELETE", "PATCH"):
        r = requests.request(method, fs.url(1) + "/test/1/judges", timeout=5)
        assert (r.status_code, r.json(), r.headers["access-control-allow-origin"]) == (200, UNKNOWN, CORS)
    bodies = [b"", b"null", b"[]", b'"p02"', b"5", b"{oops", b"\xff\xfe", b"[" * 5000 + b"]" * 5000,
              json.dumps({"athletes": 5}).encode(), json.dumps({"athletes": [1, 2]}).encode(),
              json.dumps({"athletes": [None]}).encode(), json.dumps({"header": "x", "athletes": []}).encode(),
              json.dumps({"header": {"judges": "three"}, "athletes": []}).encode(),
              json.dumps({"header": {"judges": 0}, "athletes": []}).encode(),
              json.dumps({"header": {"judges": 10 ** 9}, "athletes": []}).encode(),
              json.dumps({"header": {"judges": 3.5}, "athletes": []}).encode(),
              json.dumps({"athletes": ["tab\tin name"]}).encode(), json.dumps({"athletes": ["new\nline"]}).encode(),
              json.dumps({"header": {"description": "new\nline"}, "athletes": []}).encode()]
    for body in bodies:
        r = requests.post(fs.url(1) + "/test/1/p02", data=body, timeout=5)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == CORS, body[:40]
        got = r.json()
        assert set(got) == {"error"}, (body[:60], got)
    for divid in ("..", "..%2Fx", "%2e%2e%2Fx", "p%2F02", "a" * 65, "p 02"):
        got = rest.post(f"/test/1/{divid}", {"athletes": []})
        assert set(got) == {"error"}, (divid, got)
    r = requests.post(fs.url(1) + "/test/1/p02", data=b"x" * (5 << 20), timeout=10)  # over [http] max_body
    assert r.status_code == 413
    head = raw_request(fs.port(1), b"GET /test/1/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head == b""  # an over-long request line: Twisted closes the connection, nothing is routed
    assert files(forms) == before
    assert rest.get("/test/1/judges") == {"division": "p01", "judges": 3}  # the service still runs
    no_traceback(fs)


def test_ws_bad_types_deep_nesting_and_unknown_commands_get_the_error_frame_or_silence(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path, max_message=65536)
    before = files(forms)

    async def scenario():
        peer = await Peer.connect(fs.url(1, "ws"), "/grassroots/test/1")
        for bad in [
            '{"type":"division","action":"score","judge":0,"score":NaN}',
            '{"type":"division","action":"score","judge":0,"score":Infinity}',
            '{"type":"division","action":"score","judge":0,"score":1e400}',
            {"type": "division", "action": "score", "judge": 0, "score": 11},
            {"type": "division", "action": "score", "judge": 0, "score": None},
            {"type": "division", "action": "score", "judge": 0, "score": [8]},
            {"type": "division", "action": "score", "judge": 0.5, "score": 8},
            {"type": "division", "action": "score", "judge": -1, "score": 8},
            {"type": "division", "action": "score", "judge": 0, "vote": "green"},
            {"type": "division", "action": "award penalty", "penalty": 5},
            {"type": "division", "action": "award penalty", "penalty": {"bounds": "x"}},
            {"type": "division", "action": "navigate", "target": "p01"},
            {"type": "division", "action": "navigate", "target": {"destination": "nowhere", "id": "1"}},
            {"type": "division", "action": "navigate", "target": {"destination": "athlete", "id": "99"}},
            {"type": "division", "action": "read", "divid": 5},
            {"type": "division", "action": "read", "divid": "../../x"},
            {"type": 5, "action": "read"},
            {"type": "schedule", "action": "write", "schedule": {"not": "a string"}},
            {"type": "schedule", "action": "write", "schedule": "{oops"},
            "[" * 3000 + "]" * 3000,
            '{"type":"division","action":"read","x":"\\ud800"}',
        ]:
            await peer.send(bad if isinstance(bad, (dict, list)) else bad)
            f = await peer.next()
            assert set(f) == {"error"} and isinstance(f["error"], str), (bad, f)
        for unknown in ({"type": "division", "action": "explode"}, {"type": "pool", "action": "resolve"},
                        {"type": "registration", "action": "import"}, {"type": "schedule", "action": "call"}):
            await peer.send(unknown)
        # unknown requests get silence: the read's answer is the very next frame (the sentinel)
        f = await peer.sentinel({"type": "division", "action": "read"}, lambda f: f.get("action") == "update")
        assert f["division"]["athletes"][0]["scores"] == ["-", "-", "-"]
        await peer.close()

    asyncio.run(scenario())
    assert files(forms) == before
    no_traceback(fs)


def test_sse_bad_last_event_id_gets_the_current_state(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    first = SseClient(fs.port(1), SSE + "?tournament=test&ring=1")
    first.wait(lambda c: len(c.events) == 1, what="the state on connect")
    for bad in ("abc", "-5", "1e9", "9" * 200, "\t", "0x10"):
        c = SseClient(fs.port(1), SSE + "?tournament=test&ring=1", last_event_id=bad)
        c.wait(lambda c: len(c.events) == 1, what=f"the current state for Last-Event-ID {bad!r}")
        assert c.status == 200 and c.events[0] == first.events[0]
        c.close()
    first.close()
    for query in ("?tournament=test&ring=1%2F..", "?tournament=..%2F..&ring=1", "?tournament=test&ring=" + "9" * 5000,
                  "?tournament=%ff&ring=1"):
        r = requests.get(fs.url(1) + SSE + query, timeout=5)
        assert r.status_code in (400, 404) and set(r.json()) == {"error"}, (query, r.text)
        assert r.headers["access-control-allow-origin"] == CORS
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        r = requests.request(method, fs.url(1) + SSE + "?tournament=test&ring=1", timeout=5)
        assert (r.status_code, r.headers["access-control-allow-origin"]) == (405, CORS)
        assert r.json() == {"error": "Method not allowed: the update stream is read with GET"}
    r = requests.head(fs.url(1) + SSE + "?tournament=test&ring=1", timeout=5)  # the head, no stream held open
    assert (r.status_code, r.headers["content-type"]) == (200, "text/event-stream")
    no_traceback(fs)


def test_sse_streams_count_against_max_connections(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path, max_connections=3)
    streams = [SseClient(fs.port(1), SSE + f"?tournament=test&ring={n}") for n in (1, 1, 2)]
    for s in streams:
        s.wait(lambda c: len(c.events) == 1, what="the state on connect")
    r = requests.get(fs.url(1) + SSE + "?tournament=test&ring=1", timeout=5)
    assert (r.status_code, r.json(), r.headers["access-control-allow-origin"]) == (
        503, {"error": "too many connections"}, CORS)
    streams.pop().close()

    def admitted() -> bool:
        c = SseClient(fs.port(1), SSE + "?tournament=test&ring=1")
        c.wait(lambda c: c.status != 0, what="an answer")
        if c.status == 200:
            streams.append(c)
            return True
        c.close()
        return False

    wait_until(admitted, what="a freed slot")  # the server sees the close a moment later
    rest.get("/test/1/0/83")
    for s in streams:
        s.wait(lambda c: len(c.events) == 2, what="the change")
        s.close()


def test_websockets_and_sse_streams_share_one_max_connections(freescore, tmp_path):
    """A tablet's WebSocket and a display's stream are both connections: over the limit, either
    kind is refused with 503, and a slot either kind frees is open to the other."""
    fs, forms, rest = start(freescore, tmp_path, max_connections=2)
    stream = SseClient(fs.port(1), SSE + "?tournament=test&ring=1")
    stream.wait(lambda c: len(c.events) == 1, what="the state on connect")

    async def scenario():
        tablet = await Peer.connect(fs.url(1, "ws"), "/grassroots/test/1")
        r = requests.get(fs.url(1) + SSE + "?tournament=test&ring=1", timeout=5)
        assert (r.status_code, r.json()) == (503, {"error": "too many connections"})
        await assert_refused(fs.url(1, "ws"), ["/grassroots/test/2"], status=503)
        await tablet.close()

    asyncio.run(scenario())

    def admitted() -> bool:
        c = SseClient(fs.port(1), SSE + "?tournament=test&ring=2")
        c.wait(lambda c: c.status != 0, what="an answer")
        if c.status == 200:
            c.close()
            return True
        c.close()
        return False

    wait_until(admitted, what="the tablet's slot for a display")  # the server sees the close a moment later
    stream.close()
    no_traceback(fs)


def test_an_sse_client_that_stops_reading_is_dropped_not_buffered(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path, times=(3600.0, 3601.0, 3602.0, 3603.0),  # one event a score
                            sse_max_unsent=65536, sse_heartbeat=3600.0)
    names = [f"Athlete {i} " + "x" * 200 for i in range(200)]
    rest.post("/test/1/p01", {"name": "p01", "header": {"judges": 3}, "athletes": names, "overwrite": True})
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", fs.port(1)))
    stalled.sendall(f"GET {SSE}?tournament=test&ring=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    reader = SseClient(fs.port(1), SSE + "?tournament=test&ring=1")
    reader.wait(lambda c: len(c.events) == 1, what="the state on connect")
    sent = 0
    while "too slow" not in fs.log():  # each change is one large event; the stalled stream never reads
        assert sent < 3000, "the stalled stream was never dropped"
        rest.get(f"/test/1/{sent % 3}/{50 + sent % 50}")
        sent += 1
    fs.wait_log(r"grassroots: SSE .* too slow")
    reader.wait(lambda c: len(c.events) == 1 + sent, what="every change on the stream that reads")
    stalled.settimeout(30)
    try:
        while stalled.recv(1 << 20):  # what was buffered, then the end: the server let it go
            pass
    except ConnectionResetError:
        pass
    stalled.close()
    rest.get("/test/1/athlete/next")
    reader.wait(lambda c: len(c.events) == 2 + sent, what="the stream that reads still served")
    reader.close()
    no_traceback(fs)


def test_stopping_the_server_ends_every_sse_stream_cleanly(freescore, tmp_path):
    fs, forms, rest = start(freescore, tmp_path)
    streams = [SseClient(fs.port(i), SSE + f"?tournament=test&ring={n}") for i, n in ((1, 1), (0, 1), (1, 2))]
    for s in streams:
        s.wait(lambda c: len(c.events) == 1, what="the state on connect")
    assert fs.stop() == -signal.SIGTERM  # twistd ends its clean shutdown by the signal it got
    assert "Main loop terminated" in fs.log()
    for s in streams:
        s.wait(lambda c: c.closed, what="the end of the stream")
        assert s.ended, "the stream was cut, not ended with the last chunk"
        s.close()
    no_traceback(fs)
