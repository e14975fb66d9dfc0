"""The clicker service in a real `twistd freescore`, driven by `websockets` and a raw device socket.

"No reply" is checked without sleeping: after the frame that must get no
answer, a valid SCORE follows, and its SCORED must be the next message.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from pathlib import Path

import pytest
import requests
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clicker"))
from clicker_raw import BINARY, CONTINUATION, PING, PONG, TEXT, RawDevice  # noqa: E402

from harness import FreescoreProcess, run_twistd  # noqa: E402

pytestmark = pytest.mark.integration

CONFIG = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[clicker]
state = "state"
ping_interval = {ping}
"""
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
UUID4_ANYWHERE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
GUARD = 10.0


@pytest.fixture(scope="module")
def fs(tmp_path_factory):
    """One process for the protocol tests (keepalive long enough not to interfere)."""
    proc = FreescoreProcess(CONFIG.format(ping=30), tmp_path_factory.mktemp("clicker")).start()
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log()
    assert not UUID4_ANYWHERE.search(proc.log()), "a full secret was logged"


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    """A process with a short keepalive (0.4 s) for the keepalive tests."""
    proc = FreescoreProcess(CONFIG.format(ping=0.4), tmp_path_factory.mktemp("clicker-fast")).start()
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def connect(proc, path="/ws", **kw):
    return websockets.connect(proc.url(0, "ws") + path, proxy=None, ping_interval=None, **kw)


async def recv(ws) -> str:
    return await asyncio.wait_for(ws.recv(), GUARD)


async def register(ws, secret: str = "") -> tuple[str, str]:
    await ws.send(f"REGISTER {secret}".rstrip())
    reply = (await recv(ws)).split(" ")
    assert reply[0] == "REGISTERED" and len(reply) == 3
    return reply[1], reply[2]


async def expect_only(ws, sent: list[str], replies: list[str]) -> None:
    """Send frames; the replies must be exactly `replies` (checked with a trailing marker SCORE)."""
    for frame in sent:
        await ws.send(frame)
    await ws.send("SCORE 424242 1 1")
    got = []
    while True:
        line = await recv(ws)
        if line == "SCORED 424242 1":
            break
        got.append(line)
    assert got == replies


# -- transport ------------------------------------------------------------------
def test_handshake_no_subprotocol_no_extensions_query_ignored(fs):
    async def scenario():
        async with connect(fs, "/ws?x=1", subprotocols=["chat"]) as ws:
            assert ws.response.headers.get("sec-websocket-extensions") is None  # deflate was offered
            assert ws.subprotocol is None
            await ws.send("SCORE 1 1000 5")
            assert await recv(ws) == "SCORED 1 1000"

    run(scenario())


def test_plain_http_gets_426_and_other_paths_404(fs):
    r = requests.get(fs.url() + "/ws", timeout=5)
    assert r.status_code == 426
    assert requests.get(fs.url() + "/other", timeout=5).status_code == 404
    device = RawDevice(fs.port(), "/other")
    assert device.status == 404
    device.close()


def test_device_handshake_host_without_port_and_origin_espruino(fs):
    device = RawDevice(fs.port())
    assert device.status == 101
    assert "sec-websocket-extensions" not in device.headers and "sec-websocket-protocol" not in device.headers
    device.send("REGISTER")
    assert re.match(r"^REGISTERED \d{6} ", device.recv())
    device.send_frame(PING, b"ping")
    while True:
        opcode, payload = device.recv_frame()
        if opcode == PONG:
            break
    assert payload == b"ping"
    device.close()


# -- senders ------------------------------------------------------------------
def test_register_reply_forms(fs):
    async def scenario():
        async with connect(fs) as a:
            device_id, secret = await register(a)
            assert re.match(r"^\d{6}$", device_id) and UUID4.match(secret)
            await expect_only(a, ["REGISTER", f"REGISTER {secret}", "SUBSCRIBE 1"], [])  # role is fixed
        async with connect(fs) as b:
            assert await register(b, secret) == (device_id, secret)
        async with connect(fs) as c:
            other_id, other_secret = await register(c, "not-a-known-secret")
            assert other_id != device_id and other_secret not in (secret, "not-a-known-secret")
            assert UUID4.match(other_secret)
        async with connect(fs) as d:
            await d.send("REGISTER\r\n")
            assert (await recv(d)).startswith("REGISTERED ")

    run(scenario())


def test_an_empty_secret_counts_as_none(fs):
    """`REGISTER ` and `REGISTER  x` present an empty secret (spec 4.1, as upstream): a fresh id and secret."""
    seen = set()
    for frame in ("REGISTER ", "REGISTER  x", "REGISTER  "):
        device = RawDevice(fs.port())
        device.send(frame)
        verb, device_id, secret = device.recv().split(" ")
        device.close()
        assert verb == "REGISTERED" and re.match(r"^\d{6}$", device_id) and UUID4.match(secret)
        assert device_id not in seen
        seen.add(device_id)


def test_score_replies_per_spec(fs):
    async def scenario():
        async with connect(fs) as ws:
            await register(ws)
            await expect_only(ws, ["SCORE 1 1000 5"], ["SCORED 1 1000"])
            await expect_only(ws, ["score 2 -5 6"], ["SCORED 2 -5"])
            await expect_only(ws, ["SCORE 3 12abc 7x", "SCORE +4 1.9 1"], ["SCORED 3 12", "SCORED 4 1"])
            await expect_only(ws, ["SCORE a 1 2", "SCORE 1 2 x", "SCORE  1 2 3", "SCORE 1 2 3 4 5"], ["SCORED 1 2"])
            await expect_only(ws, ["SCORE 1000 5"], ["SCORED 1000"])
            await expect_only(ws, ["SCORE -0 +5 1"], ["SCORED 0 5"])
            big = "9" * 5000
            await expect_only(ws, [f"SCORE {big} -{big} 1"], [f"SCORED {big} -{big}"])
            await expect_only(ws, ["", "HELLO", "SCORED 1 2", "\r\n"], [])
            await ws.send(b"\x00\x01binary")
            await expect_only(ws, ["x" * 65000, "SCORE " + "1" * 65530], [])

    run(scenario())


def rss_mb(proc) -> float:
    for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_floods_on_one_connection_change_nothing_and_memory_stays_bounded(fs):
    state = fs.workdir / "state" / "registry.json"

    async def scenario():
        async with connect(fs) as ws:
            await register(ws)
            before = state.read_bytes()
            rss_before = rss_mb(fs)
            for i in range(0, 10000, 500):
                await asyncio.gather(*(ws.send("REGISTER" if j % 2 else f"REGISTER s{j}") for j in range(i, i + 500)))
            await expect_only(ws, [], [])
            assert state.read_bytes() == before
            junk = "GARBAGE " + "x" * (65536 - 8)
            for _ in range(300):  # ~20 MB of 64 KiB lines, then garbage verbs and binary frames
                await ws.send(junk)
            for i in range(5000):
                await ws.send(f"VERB{i} 1 2 3")
                await ws.send(b"\x00" * 64)
            await expect_only(ws, [""] * 1000, [])
            assert rss_mb(fs) - rss_before < 40, "memory grew with ignored input"
            assert state.read_bytes() == before
            assert fs.log().count("role already set") <= 3, "a REGISTER flood floods the log"

    run(scenario())


def test_oversize_message_closes_with_1009_and_close_is_not_awaited(fs):
    device = RawDevice(fs.port())
    device.send("x" * 65536)  # exactly 64 KiB: parsed and ignored
    device.send("SCORE 7 7 7")
    assert device.recv() == "SCORED 7 7"
    device.send("y" * 65537)
    assert device.wait_closed() == 1009
    # The firmware never echoes the close frame: the server must end TCP itself (close_timeout 1 s).
    device.sock.settimeout(5)
    try:
        assert device.sock.recv(100) == b""
    except ConnectionResetError:
        pass
    device.close()


def test_frames_out_are_short_unfragmented_text(fs):
    device = RawDevice(fs.port())
    device.send("REGISTER")
    device.recv()
    device.send("SCORE 2147483647 -2147483648 2147483647")
    assert device.recv() == "SCORED 2147483647 -2147483648"
    assert all(op == TEXT and fin and len(p) < 125 for op, fin, p in device.frames)
    device.close()


# -- receivers ------------------------------------------------------------------
def test_listeners_get_connect_score_disconnect_in_both_orders(fs):
    async def scenario():
        async with connect(fs) as first:
            device_id, secret = await register(first)
            async with connect(fs) as sub, connect(fs) as lis, connect(fs) as other:
                await sub.send(f"SUBSCRIBE 123456 {device_id}")
                assert await recv(sub) == f"CONNECT {device_id}"
                await lis.send(f"listen {device_id},{device_id}")
                assert await recv(lis) == f"CONNECT {device_id}"
                await other.send("SUBSCRIBE 123456")
                assert await recv(other) == "CONNECT"
                async with connect(fs) as second:
                    assert await register(second, secret) == (device_id, secret)  # same id, no extra CONNECT
                    await first.close()  # one of two connections: no DISCONNECT
                    await second.send("SCORE 1 -1283741 1")
                    assert await recv(second) == "SCORED 1 -1283741"
                    assert await recv(sub) == f"SCORE -1283741 1 {device_id}"
                    assert await recv(lis) == f"SCORE -1283741 {device_id} 1"
                assert await recv(sub) == f"DISCONNECT {device_id}"
                assert await recv(lis) == f"DISCONNECT {device_id}"
                async with connect(fs) as again:
                    await register(again, secret)
                    assert await recv(sub) == f"CONNECT {device_id}"
                    assert await recv(lis) == f"CONNECT {device_id}"
                    await expect_only(other, [], [])  # not subscribed: nothing at all
                    await expect_only(sub, ["REGISTER", "hello"], [])  # receivers ignore other input

    run(scenario())


def messages_out(proc) -> float:
    text = requests.get(proc.url() + "/metrics", timeout=5).text
    m = re.search(r'^freescore_messages_out_total\{service="clicker"\} (\S+)$', text, re.M)
    assert m, text
    return float(m.group(1))


def test_score_before_register_is_answered_not_relayed_and_order_is_kept(fs):
    before = messages_out(fs)

    async def scenario():
        async with connect(fs) as dev:
            await dev.send("SCORE 1 5 5")
            assert await recv(dev) == "SCORED 1 5"
            device_id, _ = await register(dev)
            async with connect(fs) as sub:
                await sub.send(f"SUBSCRIBE {device_id}")
                assert await recv(sub) == f"CONNECT {device_id}"
                for i in range(10):
                    await dev.send(f"SCORE {i + 2} {1000 + i} {i}")
                for i in range(10):
                    assert await recv(dev) == f"SCORED {i + 2} {1000 + i}"
                assert [await recv(sub) for _ in range(10)] == [f"SCORE {1000 + i} {i} {device_id}" for i in range(10)]
                # a receiver's own SCORE is acknowledged and relayed nowhere
                await expect_only(sub, ["SCORE 9 9 9"], ["SCORED 9 9"])

    run(scenario())
    assert messages_out(fs) - before >= 25  # SCORED x12, REGISTERED, CONNECT, 10 relays, the marker


def test_retries_are_acknowledged_every_time_and_relayed_once(fs):
    async def scenario():
        async with connect(fs) as dev, connect(fs) as sub:
            device_id, _ = await register(dev)
            await sub.send(f"SUBSCRIBE {device_id}")
            assert await recv(sub) == f"CONNECT {device_id}"
            sent = ["SCORE 5 2000 9", "SCORE 5 2000 9", "SCORE 6 2001 10", "SCORE 5 2000 9",
                    "SCORE 1 10 1", "SCORE 1 10 1", "SCORE 3000 4", "SCORE 3000 4", "SCORE 3001 5"]
            for line in sent:
                await dev.send(line)
            replies = [await recv(dev) for _ in sent]
            assert replies == ["SCORED 5 2000", "SCORED 5 2000", "SCORED 6 2001", "SCORED 5 2000",
                               "SCORED 1 10", "SCORED 1 10", "SCORED 3000", "SCORED 3000", "SCORED 3001"]
            relays = [await recv(sub) for _ in range(5)]
            assert relays == [f"SCORE 2000 9 {device_id}", f"SCORE 2001 10 {device_id}", f"SCORE 10 1 {device_id}",
                              f"SCORE 3000 4 {device_id}", f"SCORE 3001 5 {device_id}"]
            await expect_only(sub, [], [])

    run(scenario())


def test_resubscribe_replaces_ids_and_dialect(fs):
    async def scenario():
        async with connect(fs) as a, connect(fs) as b, connect(fs) as sub:
            ida, _ = await register(a)
            idb, _ = await register(b)
            await sub.send(f"SUBSCRIBE {ida},{idb}")
            assert await recv(sub) == f"CONNECT {ida} {idb}"
            await sub.send(f"LISTEN {idb}")
            assert await recv(sub) == f"CONNECT {idb}"
            await a.send("SCORE 1 1 1")
            await b.send("SCORE 1 2 2")
            assert await recv(a) == "SCORED 1 1"
            assert await recv(b) == "SCORED 1 2"
            assert await recv(sub) == f"SCORE 2 {idb} 2"  # nothing for a any more, draft-1 order
            await sub.send("SUBSCRIBE")
            assert await recv(sub) == "CONNECT"

    run(scenario())


def test_connect_reply_for_many_ids_stays_in_short_lines(fs):
    async def scenario():
        devices = [await websockets.connect(fs.url(0, "ws") + "/ws", proxy=None) for _ in range(20)]
        try:
            ids = [(await register(d))[0] for d in devices]
            async with connect(fs) as sub:
                await sub.send("SUBSCRIBE " + " ".join(ids))
                lines = [await recv(sub), await recv(sub)]
                assert [x for line in lines for x in line.split(" ")[1:]] == ids
                assert all(line.startswith("CONNECT ") and len(line) < 125 for line in lines)
        finally:
            for d in devices:
                await d.close()

    run(scenario())


# -- keepalive and device quirks ------------------------------------------------
def test_device_answering_pong_stays_connected_across_intervals(fast):
    device = RawDevice(fast.port())
    device.send("REGISTER")
    assert device.recv().startswith("REGISTERED ")
    device.sock.settimeout(GUARD)
    while device.pings < 6:  # each answered with payload "pong"; about 2.4 s at 0.4 s
        opcode, payload = device.recv_frame()
        assert opcode != 0x8, "server closed the connection"
        if opcode == PING:
            assert payload == b""
            device.pings += 1
            device.send_frame(PONG, b"pong")
    device.send("SCORE 1 2 3")
    assert device.recv() == "SCORED 1 2"
    device.close()


def test_silent_peer_is_dropped_and_listeners_get_disconnect(fast):
    async def scenario():
        device = RawDevice(fast.port(), answer_pings=False)
        device.send("REGISTER")
        device_id = device.recv().split(" ")[1]
        async with connect(fast) as sub:
            await sub.send(f"SUBSCRIBE {device_id}")
            assert await recv(sub) == f"CONNECT {device_id}"
            code = await asyncio.to_thread(device.wait_closed)
            assert code is None  # dropped without a close handshake
            assert 1 <= device.pings <= 2
            assert await recv(sub) == f"DISCONNECT {device_id}"
        device.close()

    run(scenario())


def test_abrupt_tcp_close_gives_disconnect(fs):
    async def scenario():
        device = RawDevice(fs.port())
        device.send("REGISTER")
        device_id = device.recv().split(" ")[1]
        async with connect(fs) as sub, connect(fs) as lis:
            await sub.send(f"SUBSCRIBE {device_id}")
            await lis.send(f"LISTEN {device_id}")
            assert await recv(sub) == f"CONNECT {device_id}"
            assert await recv(lis) == f"CONNECT {device_id}"
            device.send("SCORE 1 100 3")
            assert await recv(sub) == f"SCORE 100 3 {device_id}"
            assert await recv(lis) == f"SCORE 100 {device_id} 3"
            device.abort()
            assert await recv(sub) == f"DISCONNECT {device_id}"
            assert await recv(lis) == f"DISCONNECT {device_id}"
            # A last SCORE then TCP FIN (no close frame): relayed before the DISCONNECT.
            again = RawDevice(fs.port())
            again.send("REGISTER")
            other = again.recv().split(" ")[1]
            await sub.send(f"SUBSCRIBE {other}")
            assert await recv(sub) == f"CONNECT {other}"
            again.send("SCORE 9 900 9")
            again.close()
            assert await recv(sub) == f"SCORE 900 9 {other}"
            assert await recv(sub) == f"DISCONNECT {other}"

    run(scenario())


def test_fragments_and_bad_frames_do_not_crash(fs):
    device = RawDevice(fs.port())
    device.send_frame(TEXT, b"SCO", fin=False)
    device.send_frame(CONTINUATION, b"RE 1 2 3")
    assert device.recv() == "SCORED 1 2"
    device.send_frame(BINARY, b"\xff" * 100)
    device.send_frame(TEXT, b"")
    device.send("SCORE 2 2 2")
    assert device.recv() == "SCORED 2 2"
    device.send_frame(TEXT, b"\xff\xfe")  # invalid UTF-8: Autobahn closes with 1007
    assert device.wait_closed() == 1007
    device.close()
    with socket.create_connection(("127.0.0.1", fs.port()), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 4")
    assert requests.get(fs.url() + "/status", timeout=5).text == "OK"


# -- persistence ------------------------------------------------------------------
def test_secrets_survive_a_restart(freescore, tmp_path):
    config = CONFIG.format(ping=30)

    async def first_run(proc):
        issued = []
        for _ in range(5):
            async with connect(proc) as ws:
                issued.append(await register(ws))
        return issued

    async def second_run(proc, issued):
        for device_id, secret in issued:
            async with connect(proc) as ws:
                assert await register(ws, secret) == (device_id, secret)
        async with connect(proc) as ws:
            new_id, _ = await register(ws)
            assert new_id not in {i for i, _ in issued}

    one = freescore(config)
    issued = run(first_run(one))
    one.stop()
    saved = json.loads((tmp_path / "state" / "registry.json").read_text())
    assert saved["secrets"] == {s: i for i, s in issued}
    two = freescore(config)
    run(second_run(two, issued))
    two.stop()
    for proc in (one, two):
        for _, secret in issued:
            assert secret not in proc.log()


def test_corrupt_registry_stops_start_up_naming_the_key(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "registry.json").write_text("{not json")
    config = tmp_path / "freescore.toml"
    config.write_text(CONFIG.format(ping=30))
    result = run_twistd(config)
    assert result.returncode != 0
    assert "clicker.state" in result.stderr and "cannot read the registry" in result.stderr


@pytest.mark.parametrize("key,value", [("ping_interval", "-1"), ("path", '"ws"'), ("max_ids", "0"),
                                       ("max_devices", "0"), ("register_rate", "-1"),
                                       ("register_exempt", '["nope"]')])
def test_bad_settings_are_refused(tmp_path, key, value):
    config = tmp_path / "freescore.toml"
    config.write_text(CONFIG.replace("ping_interval = {ping}\n", "") + f"{key} = {value}\n")
    result = run_twistd(config)
    assert result.returncode != 0
    assert f"clicker.{key}" in result.stderr


def test_concurrent_registrations_get_distinct_ids_all_saved(freescore, tmp_path):
    proc = freescore(CONFIG.format(ping=30))

    async def scenario():
        sockets = []
        for _ in range(10):
            sockets += await asyncio.gather(*(connect(proc).__aenter__() for _ in range(50)))
        try:
            issued = await asyncio.gather(*(register(ws) for ws in sockets))
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
        return issued

    issued = run(scenario())
    ids = [i for i, _ in issued]
    assert len(set(ids)) == 500
    saved = json.loads((tmp_path / "state" / "registry.json").read_text())["secrets"]
    assert saved == {s: i for i, s in issued}  # every issued secret is on disk


def test_failed_registry_write_sends_no_registered_and_recovers(freescore, tmp_path):
    proc = freescore(CONFIG.format(ping=30))
    blocker = tmp_path / "state" / "registry.json"
    blocker.mkdir()  # rename onto a directory fails: the write cannot complete

    async def scenario():
        async with connect(proc) as ws:
            await ws.send("REGISTER")
            with pytest.raises(websockets.ConnectionClosed):
                await recv(ws)  # dropped without a REGISTERED it could not back with the file
        blocker.rmdir()
        async with connect(proc) as ws:
            await register(ws)

    run(scenario())
    proc.wait_log(r"could not save the registry")
    saved = json.loads(blocker.read_text())["secrets"]
    assert len(saved) == 2  # the first id stays allocated, never handed out again


def test_frames_behind_a_pending_register_keep_their_order(fs):
    async def scenario():
        async with connect(fs) as ws:
            await asyncio.gather(ws.send("REGISTER"), ws.send("SCORE 1 10 1"), ws.send("REGISTER"),
                                 ws.send("SCORE 2 20 2"))
            assert (await recv(ws)).startswith("REGISTERED ")
            await expect_only(ws, [], ["SCORED 1 10", "SCORED 2 20"])

    run(scenario())


def test_full_registry_ignores_new_registrations_but_not_known_secrets(freescore, tmp_path):
    proc = freescore(CONFIG.format(ping=30) + "max_devices = 3\n")
    state = tmp_path / "state" / "registry.json"

    async def scenario():
        issued = []
        for _ in range(3):
            async with connect(proc) as ws:
                issued.append(await register(ws))
        before = state.read_bytes()
        async with connect(proc) as ws:  # a client looping REGISTER on one connection
            await expect_only(ws, ["REGISTER", "REGISTER not-a-known-secret"] * 50, [])
            await register(ws, issued[0][1])  # still role-less: a known secret is answered
        for _ in range(3):
            async with connect(proc) as ws:
                await expect_only(ws, ["REGISTER"], [])
        async with connect(proc) as ws:
            assert await register(ws, issued[2][1]) == issued[2]
        assert state.read_bytes() == before
        return issued

    issued = run(scenario())
    assert len(json.loads(state.read_text())["secrets"]) == 3
    proc.wait_log(r"REGISTER for a new id from .* ignored: the registry holds max_devices ids")
    assert proc.log().count("ignored: the registry holds max_devices") == 4, "logged once per connection"
    for _, secret in issued:
        assert secret not in proc.log()


def test_new_ids_over_the_address_budget_get_no_reply(freescore, tmp_path):
    proc = freescore(CONFIG.format(ping=30) + "register_rate = 0.01\nregister_burst = 2\nregister_exempt = []\n")

    async def scenario():
        async with connect(proc) as a, connect(proc) as b:
            issued = [await register(a), await register(b)]
        async with connect(proc) as ws:
            await expect_only(ws, ["REGISTER", "REGISTER x"] * 20, [])
            assert await register(ws, issued[0][1]) == issued[0]  # known secrets are not budgeted
        async with connect(proc) as ws:
            await expect_only(ws, ["REGISTER"], [])
        return issued

    run(scenario())
    assert len(json.loads((tmp_path / "state" / "registry.json").read_text())["secrets"]) == 2
    proc.wait_log(r"REGISTER for a new id from .* ignored: over its budget of new ids")
    assert proc.log().count("over its budget of new ids") == 2, "logged once per connection"


def test_scores_of_one_read_and_single_ones_are_relayed_in_order(fs):
    """A device's frames in one TCP segment (a busy server reads them at once and batches their
    relays to the turn's end) and frames one by one (relayed at once) reach listeners in order."""
    device = RawDevice(fs.port())
    sub = RawDevice(fs.port())
    try:
        device.send("REGISTER")
        device_id = device.recv().split(" ")[1]
        sub.send(f"SUBSCRIBE {device_id}")
        assert sub.recv() == f"CONNECT {device_id}"
        burst = [f"SCORE {m} {100 + m} {m}" for m in range(1, 9)]
        frames = b""
        for line in burst:  # eight masked frames, one sendall: one segment on loopback
            payload = line.encode()
            mask = bytes([m % 256 + 1 for m in range(4)])
            frames += bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        device.sock.sendall(frames)
        device.send("SCORE 9 109 9")
        device.send("SCORE 2 102 2")  # a retry from the burst: acknowledged, not relayed
        device.send("SCORE 10 110 10")
        assert [device.recv() for _ in range(11)] == [f"SCORED {m} {100 + m}" for m in [*range(1, 10), 2, 10]]
        assert [sub.recv() for _ in range(10)] == [f"SCORE {100 + m} {m} {device_id}" for m in range(1, 11)]
    finally:
        device.close()
        sub.close()


def test_a_listener_that_stops_reading_is_closed_1013_and_the_others_get_every_relay(freescore):
    """`max_unsent`: relays waiting for a listener that does not read are bounded; the ring goes on."""
    fs = freescore(CONFIG.format(ping=0) + "max_unsent = 65536\n")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    stalled.settimeout(GUARD)
    stalled.connect(("127.0.0.1", fs.port()))
    device, reader = RawDevice(fs.port()), RawDevice(fs.port())
    try:
        device.send("REGISTER")
        device_id = device.recv().split(" ")[1]
        reader.send(f"SUBSCRIBE {device_id}")
        assert reader.recv() == f"CONNECT {device_id}"
        key = b"AAAAAAAAAAAAAAAAAAAAAA=="
        stalled.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += stalled.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
        line = f"SUBSCRIBE {device_id}".encode()
        stalled.sendall(bytes([0x81, 0x80 | len(line)]) + b"\0\0\0\0" + line)  # a zero mask: the text as is
        stamp = "1" * 20000  # a 20 kB timestamp: each relay is that big, the stalled one fills fast
        sent = 0
        while "closing (1013)" not in fs.log():
            assert sent < 2000, "the stalled listener was never closed"
            sent += 1
            device.send(f"SCORE {sent} {stamp} {sent}")
            assert device.recv() == f"SCORED {sent} {stamp}"
            assert reader.recv() == f"SCORE {stamp} {sent} {device_id}"
        port = stalled.getsockname()[1]
        fs.wait_log(rf":{port} has \d+ bytes unsent \(over max_unsent 65536\), closing \(1013\)")
        sent += 1
        device.send(f"SCORE {sent} 5 {sent}")  # the device and the other listener go on
        assert device.recv() == f"SCORED {sent} 5"
        assert reader.recv() == f"SCORE 5 {sent} {device_id}"
    finally:
        stalled.close()
        device.close()
        reader.close()
    assert "Traceback" not in fs.log()
