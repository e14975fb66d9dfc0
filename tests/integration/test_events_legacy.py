"""The legacy DMOJ protocol: raw-WebSocket receiver and sender, and /channels/ long-poll."""

from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager

import pytest
import requests
import socketio
from websockets.sync.client import connect as ws_connect

from harness import FreescoreProcess, browser_parse

TOKEN = "legacy-key"
CONFIG = f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[events]
sender_token = "{TOKEN}"
channels_timeout = 400
"""


@pytest.fixture(scope="module")
def fs(tmp_path_factory):
    proc = FreescoreProcess(CONFIG, tmp_path_factory.mktemp("events-legacy")).start()
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log()


@contextmanager
def legacy_sender(fs, key: str | None = TOKEN):
    """The old Django poster: connect, `auth` when EVENT_DAEMON_KEY is set."""
    with ws_connect(fs.url(0, "ws") + "/event-sender/") as ws:
        if key is not None:
            ws.send(json.dumps({"command": "auth", "key": key}))
            assert json.loads(ws.recv(5)) == {"status": "success"}
        yield ws


def legacy_post(ws, channel, message) -> int:
    ws.send(json.dumps({"command": "post", "channel": channel, "message": message}))
    reply = json.loads(ws.recv(5))
    assert reply["status"] == "success", reply
    return reply["id"]


def test_sender_requires_auth_when_a_key_is_set(fs):
    with ws_connect(fs.url(0, "ws") + "/event-sender/") as ws:
        ws.send('{"command":"post","channel":"X","message":1}')
        assert json.loads(ws.recv(5)) == {"status": "error", "code": "unauthorized"}
        ws.send('{"command":"last-msg"}')
        assert json.loads(ws.recv(5)) == {"status": "error", "code": "unauthorized"}
        ws.send('{"command":"auth","key":"wrong"}')
        assert json.loads(ws.recv(5)) == {"status": "error", "code": "auth-failed"}
        ws.send(json.dumps({"command": "auth", "key": TOKEN}))
        assert json.loads(ws.recv(5)) == {"status": "success"}
        msg_id = legacy_post(ws, "X", 1)
        ws.send('{"command":"last_msg"}')
        assert json.loads(ws.recv(5)) == {"status": "success", "id": msg_id}
        ws.send('{"command":"post","channel":null}')
        assert json.loads(ws.recv(5))["code"] == "invalid-channel"
        ws.send('{"command":"nope"}')
        assert json.loads(ws.recv(5)) == {"status": "error", "code": "bad-command", "message": "bad command: nope"}


def test_receiver_catch_up_and_live_from_both_senders(fs):
    with legacy_sender(fs) as snd:
        first = legacy_post(snd, "L1", "a")
        legacy_post(snd, "L2", "other")
        third = legacy_post(snd, "L1", "c")
        with ws_connect(fs.url(0, "ws") + "/event/") as rcv:
            rcv.send('{"command":"start_msg","start":0}')
            rcv.send('{"command":"set-filter","filter":["L1"]}')
            assert [json.loads(rcv.recv(5))["id"] for _ in range(2)] == [first, third]
            live = legacy_post(snd, "L1", {"k": 1})
            assert json.loads(rcv.recv(5)) == {"id": live, "channel": "L1", "message": {"k": 1}}
            client = socketio.Client(reconnection=False, request_timeout=0.5)
            client.connect(fs.url(), auth={"role": "sender", "token": TOKEN}, namespaces=["/"], wait_timeout=0.5)
            try:
                sio_id = client.call("post", {"channel": "L1", "message": "from sio"}, timeout=5)["id"]
            finally:
                client.disconnect()
            assert json.loads(rcv.recv(5)) == {"id": sio_id, "channel": "L1", "message": "from sio"}


def test_legacy_post_reaches_socketio_clients(fs):
    received = []
    got = threading.Event()
    client = socketio.Client(reconnection=False)
    client.on("message", lambda data: (received.append(data), got.set()))
    statuses = []
    filtered = threading.Event()
    client.on("status", lambda data: (statuses.append(data), filtered.set() if len(statuses) == 2 else None))
    client.connect(fs.url(), auth={"role": "client"}, namespaces=["/"], wait_timeout=5)
    try:
        with legacy_sender(fs) as snd:
            start = json.loads((snd.send('{"command":"last-msg"}'), snd.recv(5))[1])["id"]
            client.emit("start-msg", {"start": start})
            client.emit("set-filter", {"filter": ["both"]})
            assert filtered.wait(5)
            msg_id = legacy_post(snd, "both", "hi")
        assert got.wait(5)
        assert received == [{"id": msg_id, "channel": "both", "message": "hi"}]
    finally:
        client.disconnect()


@pytest.mark.parametrize(
    "frame,expected",
    [
        ("{}", {"status": "error", "code": "syntax-error", "message": "no command specified"}),
        ('{"command":5}', {"status": "error", "code": "syntax-error", "message": "no command specified"}),
        ("[1,2]", {"status": "error", "code": "syntax-error", "message": "no command specified"}),
        ('{"command":"post"}', {"status": "error", "code": "bad-command", "message": "bad command: post"}),
        ('{"command":"set-filter","filter":[]}', {"status": "error", "code": "invalid-filter",
                                                  "message": "invalid filter: "}),
    ],
)
def test_receiver_errors(fs, frame, expected):
    with ws_connect(fs.url(0, "ws") + "/event/") as rcv:
        rcv.send(frame)
        assert json.loads(rcv.recv(5)) == expected
        rcv.send("{not json")
        assert json.loads(rcv.recv(5))["code"] == "syntax-error"
        rcv.send(json.dumps({"command": "set-filter", "filter": [str(i) for i in range(11)]}))
        assert json.loads(rcv.recv(5))["code"] == "too-many-subscriptions"
        rcv.send('{"command":"set-filter","filter":[""]}')
        assert json.loads(rcv.recv(5))["code"] == "invalid-channel"


def test_a_post_told_success_reaches_subscribers_live_and_on_catch_up(fs):
    """Any JSON a sender posts (lone surrogate escapes, NaN, 1e999, deep nesting) is refused with
    `syntax-error` or delivered as strict JSON. Such posts were told `success`, then lost to every
    subscriber (the fan-out's re-encoding raised), closed the sessions catching up, or reached
    browsers as NaN or Infinity."""
    deep = ['{"command":"post","channel":"odd","message":' + "[" * d + "]" * d + "}" for d in range(1, 1000)]
    odd = ['{"command":"post","channel":"odd","message":NaN}', '{"command":"post","channel":"odd","message":[1e999]}',
           '{"command":"post","channel":"\\udfff","message":{"k\\udbff":"\u00e9"}}',
           '{"command":"post","channel":"odd","message":"lone \\ud800"}']
    with legacy_sender(fs) as snd, ws_connect(fs.url(0, "ws") + "/event/") as rcv:
        rcv.send('{"command":"set-filter","filter":["odd","\\udfff"]}')
        marker = legacy_post(snd, "odd", "marker")  # live, or caught up from the queue: filtering from here
        assert browser_parse(rcv.recv(5))["id"] == marker
        posted = []
        for frame in deep + odd:
            snd.send(frame)
            reply = browser_parse(snd.recv(5))
            if reply["status"] == "success":
                posted.append(reply["id"])
            else:
                assert reply["code"] == "syntax-error", reply
        frames = [rcv.recv(5) for _ in posted]
    assert [int(re.match(r'\{"id":(\d+),', f)[1]) for f in frames] == posted  # deep ones: not parsed here
    live = [browser_parse(f) for f in frames[-3:]]
    assert live[-2:] == [{"id": posted[-2], "channel": "\udfff", "message": {"k\udbff": "\u00e9"}},
                         {"id": posted[-1], "channel": "odd", "message": "lone \ud800"}]
    caught_up: list[dict] = []
    done = threading.Event()
    queued = posted[-50:]  # the default max_queue: catch-up hands out the whole queue
    client = socketio.Client(reconnection=False)  # its handlers run in threads of their own: any order
    client.on("message", lambda m: (caught_up.append(m), done.set() if len(caught_up) == len(queued) else None))
    client.connect(fs.url(), auth={"role": "client"}, namespaces=["/"], wait_timeout=5)
    try:
        client.emit("start-msg", {"start": marker})
        client.emit("set-filter", {"filter": ["odd", "\udfff"]})
        assert done.wait(10)
    finally:
        client.disconnect()
    caught_up.sort(key=lambda m: m["id"])
    assert [m["id"] for m in caught_up] == queued and caught_up[-2:] == live[-2:]
    r = requests.get(fs.url() + f"/channels/odd?last={posted[-2]}", timeout=5)
    assert r.status_code == 200 and browser_parse(r.text)["message"] == "lone \ud800"


def test_channels_immediate_held_and_timeout(fs):
    with legacy_sender(fs) as snd:
        a = legacy_post(snd, "P", "a")
        legacy_post(snd, "P", "b")
        r = requests.get(fs.url() + f"/channels/P|Q?last={a - 1}", timeout=5)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == {"id": a, "channel": "P", "message": "a"}
        assert "access-control-allow-origin" not in r.headers
        r = requests.get(fs.url() + f"/channels/Q%7CP?last={a}", timeout=5)
        assert r.json()["message"] == "b"
        # Nothing newer: held, then 504 after channels_timeout (400 ms here).
        r = requests.post(fs.url() + "/channels/P?last=99999999999999", timeout=10)
        assert r.status_code == 504 and r.json() == {"error": "timeout"}
        # Held, then answered by the next matching post.
        held: list[requests.Response] = []
        last = json.loads((snd.send('{"command":"last-msg"}'), snd.recv(5))[1])["id"]
        t = threading.Thread(target=lambda: held.append(
            requests.get(fs.url() + f"/channels/R?last={last}", timeout=10)))
        t.start()
        # Post until the held request is answered: only a post after it was held can answer it.
        posted = []
        while t.is_alive():
            posted.append(legacy_post(snd, "R", "r"))
            t.join(0.1)
        assert held[0].status_code == 200
        assert held[0].json()["id"] in posted


def test_channels_bad_requests(fs):
    r = requests.get(fs.url() + "/channels/", timeout=5)
    assert (r.status_code, r.text, r.headers["content-type"]) == (400, "400 Bad Request", "text/plain")
    r = requests.get(fs.url() + "/channels/P?last=garbage", timeout=5)
    assert r.status_code in (200, 504)


def test_plain_http_on_receiver_is_426(fs):
    r = requests.get(fs.url() + "/event/", timeout=5)
    assert r.status_code == 426


def test_channels_validated_like_set_filter(fs):
    r = requests.get(fs.url() + "/channels/" + "|".join(str(i) for i in range(11)), timeout=5)
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "too-many-subscriptions"
    r = requests.get(fs.url() + "/channels/ok|" + "x" * 101, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "invalid-channel"


def test_channels_waiters_capped_at_max_clients(tmp_path):
    import socket

    config = f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[events]
sender_token = "{TOKEN}"
max_clients = 1
channels_timeout = 60000
"""
    proc = FreescoreProcess(config, tmp_path).start()
    huge = "99999999999999"

    def barrier():
        """One answered request: the server has read what was sent before it (one reactor reads in order)."""
        assert requests.get(proc.url() + "/status", timeout=5).status_code == 200

    try:
        held = socket.create_connection(("127.0.0.1", proc.port(0)), timeout=10)
        held.sendall(f"GET /channels/A?last={huge} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        barrier()
        r = requests.get(proc.url() + f"/channels/B?last={huge}", timeout=5)
        assert r.status_code == 503 and r.headers["content-type"] == "application/json"
        assert r.json()["code"] == "server-capacity"
        with legacy_sender(proc) as snd:
            q = legacy_post(snd, "Q", "q")
            # A queued answer needs no held slot.
            assert requests.get(proc.url() + f"/channels/Q?last={q - 1}", timeout=5).json()["id"] == q
            held.close()
            barrier()
            # The slot is free again once the held client went away.
            got: list[requests.Response] = []

            def wait_b() -> None:
                while True:
                    resp = requests.get(proc.url() + f"/channels/B?last={q}", timeout=10)
                    if resp.status_code != 503:
                        got.append(resp)
                        return

            t = threading.Thread(target=wait_b, daemon=True)
            t.start()
            posted = []
            while t.is_alive() and len(posted) < 200:
                posted.append(legacy_post(snd, "B", "b"))
                t.join(0.1)
            assert got and got[0].status_code == 200 and got[0].json()["id"] in posted
    finally:
        proc.stop()
    assert "Traceback" not in proc.log()
