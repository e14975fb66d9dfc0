"""Worldclass's Twisted service: the common FreeScore machinery with worldclass's names, pings and frames.

Ring groups, the batch with group commit, autopilot timers, pings and users,
the HTTP resource and the listener rule are `freescore.poomsae.service`'s;
this names the service, annotates requests as upstream does, frames updates
with `time` and the ring's `users`, and writes the demo tournament at start.
"""

from __future__ import annotations

from typing import Any

from freescore.poomsae import users
from freescore.poomsae.adapter import FreeScoreProtocol
from freescore.poomsae.service import FreeScoreService
from freescore.protocolservice import ServiceContext
from freescore.worldclass import demo, logic, wire
from freescore.worldclass.adapter import WorldclassProtocol
from freescore.worldclass.settings import Settings
from freescore.worldclass.store import WorldclassStore


class WorldclassService(FreeScoreService):
    """FreeScore worldclass: `/worldclass/<db>/<ring>/<role>`, with pings and users."""

    settings: Settings
    route_name = wire.SERVICE
    error_prefix = "FreeScore Worldclass Service Error"
    pings = True
    protocol = WorldclassProtocol

    def __init__(self, ctx: ServiceContext) -> None:
        settings = ctx.settings
        assert isinstance(settings, Settings)
        self.store = WorldclassStore(settings.data)
        super().__init__(ctx, logic.Worldclass(self.store, scoreboard_delay=settings.scoreboard_delay,
                                               leaderboard_delay=settings.leaderboard_delay,
                                               bracket_pace=settings.bracket_pace))

    def startService(self) -> None:
        super().startService()
        if self.settings.demo:
            path = str(self.settings.data / demo.DB)
            try:
                created = demo.ensure(self.settings.data)
            except OSError as e:  # a read-only data root: its tournaments are still served, and the other services
                self.log.error("worldclass: demo tournament {path} cannot be written: {why}", path=path, why=e)
                return
            self.log.info("worldclass: demo tournament {path} ({what})", path=path,
                          what="created" if created else "kept as it is")

    def annotate(self, client: users.Client, request: dict[str, Any]) -> None:
        request["tournament"] = client.route.db
        request["ring"] = client.route.ring_text
        request["from"] = {"cid": client.cid, "role": client.role}

    def is_silent(self, request: dict[str, Any]) -> bool:
        return wire.is_silent(request)

    def frame_update(self, update: wire.Update, members: list[FreeScoreProtocol]) -> bytes:
        return wire.update_frame(update.type, update.key, update.payload, update.request, self.users(members),
                                 wire.utc_time(self.reactor.seconds()))


def make_service(ctx: ServiceContext) -> WorldclassService:
    """The composition root's one call into this package."""
    return WorldclassService(ctx)
