"""A Twisted Application that embeds freescore and mounts a test-only echo endpoint.

Shows the embedding API (`freescore.app.makeService`, `service.roots`) and gives
the foundation tests a WebSocket built on `freescore/websocket.py`.
Run: FREESCORE_CONFIG=path twistd -n -y echo_app.tac
"""

import os

from twisted.application.service import Application
from twisted.internet.task import deferLater

from freescore.app import makeService
from freescore.settings import WebSocketSettings
from freescore.websocket import FreescoreServerFactory, FreescoreServerProtocol, WebSocketEndpoint


class Echo(FreescoreServerProtocol):
    def handshake(self, request):
        delay = float(os.environ.get("ECHO_HANDSHAKE_DELAY", "0"))
        if delay:  # a handshake that waits, like the gateway's on its connect hook
            return deferLater(self.factory.reactor, delay, lambda: None)
        return None

    def received(self, payload, is_binary):
        self.sendMessage(payload, is_binary)


application = Application("freescore-echo")
freescore = makeService({"config": os.environ["FREESCORE_CONFIG"]})
freescore.setServiceParent(application)
limits = WebSocketSettings(
    max_frame=int(os.environ.get("ECHO_MAX_FRAME", "65536")),
    max_message=int(os.environ.get("ECHO_MAX_MESSAGE", "65536")),
    keepalive=float(os.environ.get("ECHO_KEEPALIVE", "30")),
    max_connections=int(os.environ.get("ECHO_MAX_CONNECTIONS", "100")),
    open_timeout=float(os.environ.get("ECHO_OPEN_TIMEOUT", "10")),
)
factory = FreescoreServerFactory(
    Echo, None, name="echo", limits=limits, metrics=freescore.metrics.for_service("echo"),
    connections=freescore.connections, reactor=freescore.reactor,
)
for root in freescore.roots:
    root.mount("/echo", WebSocketEndpoint(factory))
