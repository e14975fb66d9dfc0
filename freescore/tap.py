"""The `freescore` subcommand of twistd: its options and the service they make.

Kept in the package rather than in the plugin file, so the `freescore` console
script and `python -m freescore` can run it where twistd's plugin discovery
cannot see `twisted/plugins/` (editable installs).
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application.service import IService, ServiceMaker
from twisted.python import usage

DESCRIPTION = "Real-time WebSocket protocols (worldclass, clicker, events, gateway, fedmsg) in one reactor."


class Options(usage.Options):
    synopsis = "[--config FILE | --listen ENDPOINT | --print-config]"
    longdesc = (
        "Without --config, freescore runs its embedded default: every service on "
        "http://127.0.0.1:8080/, the memory hub, data in ./freescore-data."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file (default: the embedded default, see --print-config)."],
        ["listen", None, None, "Endpoint for the embedded default instead of tcp:8080:interface=127.0.0.1, "
         "e.g. tcp:8081:interface=127.0.0.1."],
    ]
    optFlags = [["print-config", None, "Print the embedded default configuration and exit."]]

    def postOptions(self) -> None:
        if self["print-config"]:
            from freescore import embedded

            sys.stdout.write(embedded.text())
            sys.stdout.flush()
            raise SystemExit(0)
        if self["config"] is not None and self["listen"] is not None:
            raise usage.UsageError("--listen replaces the embedded default's endpoint; with --config, "
                                   "give the [[listen]] tables in the file")


def makeService(options: Any) -> IService:
    """The whole of freescore; a configuration error stops here with one line and status 2."""
    from freescore.app import makeService as make
    from freescore.config import ConfigError

    try:
        return make(options)
    except ConfigError as e:
        sys.stderr.write(f"freescore: {e}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None


serviceMaker = ServiceMaker("freescore", "freescore.tap", DESCRIPTION, "freescore")
