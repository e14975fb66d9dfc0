"""Pieces every load generator in bench/ needs: server WebSocket frames, pongs, process CPU and memory."""

from __future__ import annotations

import os
from pathlib import Path


def server_frames(buf: bytes | bytearray) -> tuple[list[tuple[int, int, int]], int]:
    """The complete (unmasked) frames at the front of `buf`: (opcode, payload start, payload end) each,
    and how many bytes they take. Positions, not slices, so a generator reads only what it needs."""
    frames = []
    pos, n = 0, len(buf)
    while n - pos >= 2:
        length = buf[pos + 1] & 0x7F
        start = pos + 2
        if length == 126:
            if n - start < 2:
                break
            length = int.from_bytes(buf[start:start + 2], "big")
            start += 2
        elif length == 127:
            if n - start < 8:
                break
            length = int.from_bytes(buf[start:start + 8], "big")
            start += 8
        end = start + length
        if end > n:
            break
        frames.append((buf[pos] & 0x0F, start, end))
        pos = end
    return frames, pos


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame with the all-zero mask: legal, and the server still does the unmasking work."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


def pong(payload: bytes) -> bytes:
    """The answer to a server ping: a pong carrying the same payload."""
    return client_frame(0xA, payload)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far (/proc/PID/stat): Python's share and the kernel's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def listen_drops() -> dict[str, int]:
    """The kernel's ListenOverflows and ListenDrops so far (/proc/net/netstat, TcpExt; all sockets of the host).

    A SYN that finds a listen queue full is dropped and counted; its client retries after 1 s, then 3 s...
    """
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], (int(v) for v in values.split()[1:]), strict=True))
            return {key: table.get(key, 0) for key in ("ListenOverflows", "ListenDrops")}
    return {"ListenOverflows": 0, "ListenDrops": 0}


def rss_kib(pid: int) -> int:
    """Resident memory of a process now (/proc/PID/status), in KiB; 0 if the kernel does not say."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def add_batch_pause_option(ap) -> None:
    """`--batch-pause`, `--batch-ready`: the server's poll pacing (`[runtime]`, docs/runtime.md), to compare with 0."""
    ap.add_argument("--batch-pause", type=float, default=None,
                    help="the server's [runtime] batch_pause in seconds (poll pacing; 0: off); default: freescore's")
    ap.add_argument("--batch-ready", type=int, default=None,
                    help="the server's [runtime] batch_ready; default: freescore's")


def runtime_table(args) -> str:
    """The `[runtime]` table `--batch-pause`/`--batch-ready` ask for, or "" (freescore's defaults)."""
    keys = runtime_keys(args)
    return f"\n[runtime]\n{keys}" if keys else ""


def runtime_keys(args) -> str:
    """The `[runtime]` lines of `--batch-pause`/`--batch-ready`, for a generator that writes the table itself."""
    lines = ""
    if args.batch_pause is not None:
        lines += f"batch_pause = {args.batch_pause}\n"
    if args.batch_ready is not None:
        lines += f"batch_ready = {args.batch_ready}\n"
    return lines
