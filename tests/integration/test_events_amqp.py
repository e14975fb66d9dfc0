"""The AMQP source against a real RabbitMQ that this test starts, published to as Django does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pika
import pytest
import requests
import socketio

RABBIT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A private RabbitMQ node (own epmd, ports and data dir), started and stopped by the test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.epmd_port = free_port()
        (workdir / "plugins").write_text("[].\n")
        self.env = dict(
            os.environ, HOME=str(workdir), ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_NODENAME=f"fstest{self.port}@localhost", RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(free_port()), RABBITMQ_MNESIA_BASE=str(workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(workdir / "log"), RABBITMQ_ENABLED_PLUGINS_FILE=str(workdir / "plugins"),
            RABBITMQ_PID_FILE=str(workdir / "pid"), RABBITMQ_CONFIG_FILE=str(workdir / "rabbitmq"),
        )
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.server: subprocess.Popen | None = None
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def start(self, timeout: float = 60) -> None:
        self.server = subprocess.Popen([str(RABBIT)], env=self.env, cwd=self.workdir, start_new_session=True,
                                       stdout=open(self.workdir / "server.log", "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                break
            try:
                pika.BlockingConnection(pika.URLParameters(self.url + "?connection_attempts=1")).close()
                return
            except pika.exceptions.AMQPError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("rabbitmq-server did not start: " + (self.workdir / "server.log").read_text()[-1500:])

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()
        self.server = None

    def close(self) -> None:
        self.stop()
        self.epmd.terminate()
        self.epmd.wait(10)

    def publish(self, exchange: str, routing_key: str, body: bytes) -> None:
        """What judge/event_poster_amqp.py does: basic_publish, no properties."""
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            conn.channel().basic_publish(exchange=exchange, routing_key=routing_key, body=body)
        finally:
            conn.close()

    def declare(self, exchange: str, kind: str) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            conn.channel().exchange_declare(exchange, kind, durable=True)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if not RABBIT.exists() or shutil.which("epmd") is None:
        pytest.skip("no rabbitmq-server installed (Debian package rabbitmq-server; .ci/needs-events.sh installs it)")
    b = Broker(tmp_path_factory.mktemp("rabbit"))
    try:
        b.start()
    except RuntimeError as e:
        b.close()
        pytest.skip(f"rabbitmq-server could not be started here: {e}")
    b.declare("ws", "topic")
    b.declare("dmoj-direct", "direct")
    yield b
    b.close()


def config(broker: Broker, exchange: str) -> str:
    return f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[events]
amqp_url = "{broker.url}"
amqp_exchange = "{exchange}"
"""


def django_body(channel: str, message) -> tuple[int, bytes]:
    msg_id = int(time.time() * 1e6)
    return msg_id, json.dumps({"id": msg_id, "channel": channel, "message": message}).encode()


class Browser:
    def __init__(self, url: str, channel: str) -> None:
        self.got: list = []
        self.event = threading.Event()
        ready = threading.Event()
        self.client = socketio.Client(reconnection=False)
        self.client.on("message", lambda data: (self.got.append(data), self.event.set()))
        self.client.on("status", lambda data: ready.set())
        self.client.connect(url, auth={"role": "client"}, namespaces=["/"], wait_timeout=5)
        self.client.emit("set-filter", {"filter": [channel]})
        assert ready.wait(5)

    def wait(self, n: int = 1) -> list:
        deadline = time.monotonic() + 10
        while len(self.got) < n and time.monotonic() < deadline:
            self.event.wait(0.2)
            self.event.clear()
        return self.got


def test_topic_exchange_hash_key_keeps_django_ids(freescore, broker):
    fs = freescore(config(broker, "ws"))
    fs.wait_log(r"AMQP consuming exchange ws")
    browser = Browser(fs.url(), "sub")
    try:
        broker.publish("ws", "#", b"not json")
        msg_id, body = django_body("sub", {"type": "update-submission", "id": 7})
        broker.publish("ws", "#", body)
        assert browser.wait() == [{"id": msg_id, "channel": "sub", "message": {"type": "update-submission", "id": 7}}]
        r = requests.get(fs.url() + f"/channels/sub?last={msg_id - 1}", timeout=5)
        assert r.json()["id"] == msg_id
    finally:
        browser.client.disconnect()
    fs.wait_log(r"dropping a malformed AMQP body")


def test_direct_exchange_empty_key_and_reconnect(freescore, broker):
    fs = freescore(config(broker, "dmoj-direct"))
    fs.wait_log(r"AMQP consuming exchange dmoj-direct")
    browser = Browser(fs.url(), "ranking")
    try:
        first, body = django_body("ranking", 1)
        broker.publish("dmoj-direct", "", body)
        assert [m["id"] for m in browser.wait(1)] == [first]
        broker.stop()
        fs.wait_log(r"AMQP (connection lost|consumer ended|unavailable)")
        assert requests.get(fs.url() + "/status", timeout=5).status_code == 503
        broker.start()
        fs.wait_for(lambda: fs.log().count("AMQP consuming exchange dmoj-direct") >= 2, 60, "AMQP reconnect")
        second, body = django_body("ranking", 2)
        broker.publish("dmoj-direct", "", body)
        assert [m["id"] for m in browser.wait(2)] == [first, second]
        assert requests.get(fs.url() + "/status", timeout=5).text == "OK"
    finally:
        browser.client.disconnect()
