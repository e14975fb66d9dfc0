"""The clicker's Twisted service: registry, hub and presence, thin over wire, logic and adapter.

Fan-out goes through the hub on one channel, `clicker`, carrying
`["up", id, node]`, `["down", id, node]` and
`["scores", [[id, timestamp, score], ...]]` (the relays of one reactor turn:
the logic's `["score", ...]` publishes, batched here); each node subscribes
once and frames each relay once per dialect.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from freescore.clicker.adapter import ClickerEffects, ClickerProtocol
from freescore.clicker.logic import CHANNEL, Clicker, RegisterBudget
from freescore.clicker.settings import Settings
from freescore.clicker.store import HubRegistry, RegistryStore, load_registry
from freescore.effects import Connections
from freescore.hub import HubMessage
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.settings import ConfigError
from freescore.websocket import WebSocketEndpoint

log = Logger(namespace="freescore.clicker")

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
        solo = ctx.config.hub.backend == "memory"
        self.logic = Clicker(registry, node=self.node, solo=solo, max_devices=settings.max_devices, budget=budget)
        self.store = RegistryStore(settings.state, registry, ctx.reactor)
        use_hub = settings.registry == "hub" or (settings.registry == "auto" and ctx.config.hub.backend == "redis")
        self.hub_registry = HubRegistry(ctx.hub, local=registry) if use_hub else None
        self.factory = self.websocket_factory(ClickerProtocol)
        self.broadcaster = self.make_broadcaster(max_unsent=settings.max_unsent)
        self.conns: Connections[ClickerProtocol] = Connections("c")
        self.effects = ClickerEffects(self.logic, self.conns, self.broadcaster, self.publish)
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
    def publish(self, message: list[Any]) -> None:
        """What logic publishes: the scores of one reactor turn go out as one hub message, in order;
        "up" and "down" join or leave the hub's presence first (a node that saw "up" finds the member)."""
        kind = message[0]
        if kind == "score":
            self._scores.append(message[1:])
            if self._flush_call is None:
                self._flush_call = self.ctx.reactor.callLater(0, self._flush_scores)
            return
        self._flush_scores()  # keep relays and presence in the order they happened
        member = f"{message[1]}@{self.node}"
        if kind == "up":
            self.hub.join(PRESENCE, member, {"id": message[1], "node": self.node}).addErrback(self._hub_failed)
        elif kind == "down":
            self.hub.leave(PRESENCE, member).addErrback(self._hub_failed)
        self._publish(message)

    def _publish(self, payload: list[Any]) -> None:
        self.hub.publish(CHANNEL, payload).addErrback(self._hub_failed)

    def _flush_scores(self) -> None:
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self._scores:
            batch, self._scores = self._scores, []
            self._publish(["scores", batch])

    @staticmethod
    def _holdings(members: dict[str, Any]) -> set[tuple[str, str]]:
        held = set()
        for info in members.values():
            if isinstance(info, dict) and isinstance(info.get("id"), str) and isinstance(info.get("node"), str):
                held.add((info["id"], info["node"]))
        return held

    def _seed_presence(self, members: dict[str, Any]) -> None:
        self.effects.apply(self.logic.seed(self._holdings(members)))

    def _check_presence(self) -> None:
        """Catch devices of a node that died without saying "down" (its presence expired in the hub)."""
        believed = self.logic.remote_holdings()
        if not believed:
            return

        def listed(members: dict[str, Any]) -> None:
            self.effects.apply(self.logic.reconcile(believed, self._holdings(members)))

        self.hub.members(PRESENCE).addCallbacks(listed, self._hub_failed)

    def _hub_failed(self, failure: Failure) -> None:
        log.failure("clicker: hub operation failed", failure)

    def _on_hub(self, message: HubMessage) -> None:
        """Every node's messages; a batch of relays reaches each receiver in one write."""
        self.effects.apply(self.logic.on_hub(message.payload))
        self.broadcaster.flush()


def make_service(ctx: ServiceContext) -> ClickerService:
    """The composition root's one call into this package."""
    return ClickerService(ctx)
