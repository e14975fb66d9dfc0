"""The clicker's Twisted service: registry, relays and presence, thin over wire and logic.

Fan-out goes through the hub on one channel, `clicker`, carrying
`["up", id, node]`, `["down", id, node]` and
`["scores", [[id, timestamp, score], ...]]` (the relays of one reactor turn);
each node subscribes once and frames each relay once per dialect.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from freescore.broadcast import text_frame
from freescore.clicker import wire
from freescore.clicker.adapter import ClickerProtocol
from freescore.clicker.logic import Clicker, RegisterBudget
from freescore.clicker.settings import Settings
from freescore.clicker.store import HubRegistry, RegistryStore, load_registry
from freescore.config import ConfigError
from freescore.hub import HubMessage
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.websocket import WebSocketEndpoint

log = Logger(namespace="freescore.clicker")

CHANNEL = "clicker"
PRESENCE = "clicker"


class ClickerService(ProtocolService[Settings]):
    """The device registry, the relay of scores and presence through the hub, and the timers."""

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        settings = self.settings
        self.node = ctx.hub.node
        try:
            registry = load_registry(settings.state)
        except (OSError, ValueError) as e:
            raise ConfigError(ctx.config.file, f"{ctx.name}.state", f"cannot read the registry: {e}") from None
        budget = None
        if settings.register_rate > 0:
            budget = RegisterBudget(settings.register_rate, settings.register_burst, settings.register_exempt)
        self.logic = Clicker(registry, node=self.node, max_devices=settings.max_devices, budget=budget)
        self.store = RegistryStore(settings.state, registry, ctx.reactor)
        use_hub = settings.registry == "hub" or (settings.registry == "auto" and ctx.config.hub.backend == "redis")
        self.hub_registry = HubRegistry(ctx.hub, local=registry) if use_hub else None
        self.factory = self.websocket_factory(ClickerProtocol)
        self.broadcaster = self.make_broadcaster()
        self.resources = {settings.path: WebSocketEndpoint(self.factory)}
        self._subscription: Any = None
        self._scores: list[list[str]] = []
        self._flush_call: Any = None
        self._presence_loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._subscription = self.hub.subscribe(CHANNEL, self._on_hub)
        ready = getattr(self._subscription, "ready", None)
        if ready is not None:
            ready.addCallback(lambda _: log.info("clicker: subscribed to hub channel {channel}", channel=CHANNEL))
        self.hub.members(PRESENCE).addCallbacks(self._seed_presence, self._hub_failed)
        if self.settings.presence_check > 0:
            self._presence_loop = LoopingCall(self._check_presence)
            self._presence_loop.clock = self.ctx.reactor
            self._presence_loop.start(self.settings.presence_check, now=False).addErrback(self._hub_failed)
        if self.hub_registry is not None:
            log.info("clicker: device registry in the hub's shared store")
        else:
            log.info(
                "clicker: {count} registered device(s) in {path}", count=len(self.logic.registry),
                path=str(self.store.path),
            )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._flush_scores()
        if self._presence_loop is not None and self._presence_loop.running:
            self._presence_loop.stop()
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        return self.store.idle()

    # -- hub ------------------------------------------------------------------
    def publish(self, payload: list[Any]) -> None:
        self.hub.publish(CHANNEL, payload).addErrback(self._hub_failed)

    def publish_score(self, device_id: str, timestamp: str, score: str) -> None:
        """Queue a relay; the scores of one reactor turn go out as one hub message, in order."""
        self._scores.append([device_id, timestamp, score])
        if self._flush_call is None:
            self._flush_call = self.ctx.reactor.callLater(0, self._flush_scores)

    def _flush_scores(self) -> None:
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self._scores:
            batch, self._scores = self._scores, []
            self.publish(["scores", batch])

    def device_up(self, device_id: str) -> None:
        self._flush_scores()  # keep relays and presence in the order they happened
        # Join before publishing: a node that saw "up" then finds the member listed.
        self.hub.join(PRESENCE, f"{device_id}@{self.node}", {"id": device_id, "node": self.node}).addErrback(
            self._hub_failed
        )
        # Record this node's holding now, not when the hub echoes it: with Redis the
        # echo of our own publish and other nodes' messages come by different
        # connections, and another node's "down" must not be applied before our "up".
        if self.logic.device_up(device_id, self.node):
            self._to_watchers(device_id, wire.format_connect(device_id))
        self.publish(["up", device_id, self.node])

    def device_down(self, device_id: str) -> None:
        self._flush_scores()
        self.hub.leave(PRESENCE, f"{device_id}@{self.node}").addErrback(self._hub_failed)
        self.publish(["down", device_id, self.node])

    @staticmethod
    def _holdings(members: dict[str, Any]) -> set[tuple[str, str]]:
        held = set()
        for info in members.values():
            if isinstance(info, dict) and isinstance(info.get("id"), str) and isinstance(info.get("node"), str):
                held.add((info["id"], info["node"]))
        return held

    def _seed_presence(self, members: dict[str, Any]) -> None:
        for device_id, node in self._holdings(members):
            if node != self.node and self.logic.device_up(device_id, node):
                self._to_watchers(device_id, wire.format_connect(device_id))

    def _check_presence(self) -> None:
        """Catch devices of a node that died without saying "down" (its presence expired in the hub)."""
        believed = self.logic.remote_holdings()
        if not believed:
            return

        def listed(members: dict[str, Any]) -> None:
            for device_id in self.logic.reconcile(believed, self._holdings(members)):
                self._to_watchers(device_id, wire.format_disconnect(device_id))

        self.hub.members(PRESENCE).addCallbacks(listed, self._hub_failed)

    def _hub_failed(self, failure: Failure) -> None:
        log.failure("clicker: hub operation failed", failure)

    def _on_hub(self, message: HubMessage) -> None:
        payload = message.payload
        kind = payload[0]
        if kind == "scores":
            self._relay(payload[1])
        elif kind == "up":
            if payload[2] == self.node:
                return  # applied in device_up
            if self.logic.device_up(payload[1], payload[2]):
                self._to_watchers(payload[1], wire.format_connect(payload[1]))
        elif kind == "down":
            if self.logic.device_down(payload[1], payload[2]):
                self._to_watchers(payload[1], wire.format_disconnect(payload[1]))

    def _relay(self, scores: list[list[str]]) -> None:
        """Relay a batch of scores now; each receiver gets its lines in order, in one write."""
        queue = self.broadcaster.queue
        for device_id, timestamp, score in scores:
            draft1, draft2 = self.logic.receivers(device_id)
            if draft2:
                queue(draft2, text_frame(wire.format_relay(wire.DRAFT_2, device_id, timestamp, score)))
            if draft1:
                queue(draft1, text_frame(wire.format_relay(wire.DRAFT_1, device_id, timestamp, score)))
        self.broadcaster.flush()

    def _to_watchers(self, device_id: str, line: str) -> None:
        draft1, draft2 = self.logic.receivers(device_id)
        if draft1 or draft2:
            frame = text_frame(line)
            self.broadcaster.broadcast(draft2, frame)
            self.broadcaster.broadcast(draft1, frame)


def make_service(ctx: ServiceContext) -> ClickerService:
    """The composition root's one call into this package."""
    return ClickerService(ctx)
