"""Worldclass's adapter: the common FreeScore page protocol (freescore.poomsae.adapter) under its name.

Nothing of worldclass's own happens at this layer: the route, the tournament
check and the client identity are the common layer's; requests go to the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from freescore.poomsae.adapter import FreeScoreProtocol

if TYPE_CHECKING:
    from freescore.worldclass.service import WorldclassService


class WorldclassProtocol(FreeScoreProtocol):
    """One worldclass page (`/worldclass/<db>/<ring>/<role>`)."""

    service: WorldclassService

