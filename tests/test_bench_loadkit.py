"""The pieces the load generators share: frames against the websockets library's own, the kernel's listen drops."""

import socket
import sys
import time
from pathlib import Path

import pytest
from websockets.frames import Frame, Opcode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from loadkit import client_frame, listen_drops, server_frames  # noqa: E402

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def test_server_frames_of_every_length_encoding_and_a_cut_tail() -> None:
    sent = [(Opcode.TEXT, b"a" * n) for n in SIZES] + [(Opcode.PING, b"p"), (Opcode.BINARY, b"\x00\xff")]
    wire = b"".join(Frame(op, data).serialize(mask=False) for op, data in sent)
    for cut in (len(wire), len(wire) - 1):
        frames, used = server_frames(wire[:cut])
        complete = sent if cut == len(wire) else sent[:-1]
        assert [(op, wire[s:e]) for op, s, e in frames] == [(op.value, data) for op, data in complete]
        assert used == (cut if cut == len(wire) else len(wire) - 4)


@pytest.mark.parametrize("n", SIZES)
def test_client_frame_is_what_a_server_parses(n: int) -> None:
    data = client_frame(0x1, b"b" * n)
    parser = Frame.parse(iter_reader(data), mask=True)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == b"b" * n


def iter_reader(data: bytes):
    pos = 0

    def read_exact(k: int):
        nonlocal pos
        chunk = data[pos:pos + k]
        pos += k
        return chunk
        yield  # a generator, as Frame.parse expects

    return read_exact


def test_listen_drops_counts_syns_a_full_listen_queue_dropped() -> None:
    before = listen_drops()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)  # never accepted: the queue is full after the first connection
        clients = []
        for _ in range(8):
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(server.getsockname())
            clients.append(client)
        deadline = time.monotonic() + 10
        while listen_drops()["ListenOverflows"] == before["ListenOverflows"] and time.monotonic() < deadline:
            time.sleep(0.05)
        for client in clients:
            client.close()
    after = listen_drops()
    assert after["ListenOverflows"] > before["ListenOverflows"]
    assert after["ListenDrops"] >= after["ListenOverflows"] - before["ListenOverflows"] + before["ListenDrops"]
