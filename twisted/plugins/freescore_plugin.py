"""Registers `twistd freescore`."""

from __future__ import annotations

import sys
from typing import Any

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    optParameters = [["config", "c", "etc/freescore.toml", "Path to the TOML configuration file."]]


@implementer(IServiceMaker, IPlugin)
class FreescoreServiceMaker:
    tapname = "freescore"
    description = "Real-time WebSocket protocols (worldclass, clicker, events, gateway, fedmsg) in one reactor."
    options = Options

    def makeService(self, options: Any) -> Any:
        from freescore.app import makeService
        from freescore.config import ConfigError

        try:
            return makeService(options)
        except ConfigError as e:
            sys.stderr.write(f"freescore: {e}\n")
            sys.stderr.flush()
            raise SystemExit(2) from None


serviceMaker = FreescoreServiceMaker()
