"""The one list of protocol services; `app.py` and `config.py` ask it.

Each entry names a package that exposes:

- `Settings`: a frozen dataclass subclassing `freescore.config.ServiceSettings`;
- `make_service(ctx: freescore.service.ServiceContext) -> freescore.service.ProtocolService`;
- optionally `check_config(config: freescore.config.Config) -> None`, raising
  `ConfigError` for rules that span tables (e.g. a service that cannot run on Redis).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from freescore.config import Config, ServiceSettings

SERVICES: dict[str, str] = {
    "clicker": "freescore.clicker",
    "fedmsg": "freescore.fedmsg",
    "gateway": "freescore.gateway",
    "events": "freescore.events",
    "worldclass": "freescore.worldclass",
}


def module(name: str) -> ModuleType:
    return importlib.import_module(SERVICES[name])


def settings_classes() -> dict[str, type[ServiceSettings]]:
    return {name: module(name).Settings for name in SERVICES}


def check_config(name: str, config: Config) -> None:
    check = getattr(module(name), "check_config", None)
    if check is not None:
        check(config)
