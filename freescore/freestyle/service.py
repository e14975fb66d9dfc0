"""Freestyle's Twisted service: the common FreeScore machinery with freestyle's names.

Ring groups, the batch with group commit, autopilot timers, the HTTP resource
and the listener rule are `freescore.poomsae.service`'s; freestyle has no
pings and no users, updates without `time`, and annotates requests as upstream
does (`tournament`, and `cookie:{}` on reads).
"""

from __future__ import annotations

from typing import Any

from freescore.freestyle import logic, wire
from freescore.freestyle.adapter import FreestyleProtocol
from freescore.freestyle.autopilot import Delays
from freescore.freestyle.settings import Settings
from freescore.freestyle.store import FreestyleStore
from freescore.poomsae import users
from freescore.poomsae.requests import request_kind
from freescore.poomsae.service import FreeScoreService
from freescore.protocolservice import ServiceContext


class FreestyleService(FreeScoreService):
    """FreeScore freestyle: `/freestyle/<db>/<ring>/<role>`, no pings, no users."""

    settings: Settings
    route_name = wire.SERVICE
    error_prefix = wire.ERROR_PREFIX
    protocol = FreestyleProtocol

    def __init__(self, ctx: ServiceContext) -> None:
        settings = ctx.settings
        assert isinstance(settings, Settings)
        self.store = FreestyleStore(settings.data)
        delays = Delays(settings.leaderboard_delay, settings.next_delay, settings.brief_delay)
        super().__init__(ctx, logic.Freestyle(self.store, delays=delays))

    def annotate(self, client: users.Client, request: dict[str, Any]) -> None:
        wire.annotate(request, client.route.db)

    def is_silent(self, request: dict[str, Any]) -> bool:
        return request_kind(request) in wire.SILENT


def make_service(ctx: ServiceContext) -> FreestyleService:
    """The composition root's one call into this package."""
    return FreestyleService(ctx)
