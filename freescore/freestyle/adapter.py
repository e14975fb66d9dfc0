"""Freestyle's adapter: the common FreeScore page protocol (freescore.poomsae.adapter) under its name.

Nothing of freestyle's own happens at this layer: the route, the tournament
check and the client identity are the common layer's; requests go to the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from freescore.poomsae.adapter import FreeScoreProtocol

if TYPE_CHECKING:
    from freescore.freestyle.service import FreestyleService


class FreestyleProtocol(FreeScoreProtocol):
    """One freestyle page (`/freestyle/<db>/<ring>/<role>`)."""

    service: FreestyleService
