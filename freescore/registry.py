"""The one list of protocol services: each is a package of settings, wire, logic, adapter and service.

`config` reads each table through the package's `settings.Settings` (pure
Python, so parsing imports no Twisted); `app` builds each enabled one with
`freescore.<name>.service.make_service(ctx) -> ProtocolService`.
"""

from __future__ import annotations

from freescore.clicker.settings import Settings as ClickerSettings
from freescore.events.settings import Settings as EventsSettings
from freescore.fedmsg.settings import Settings as FedmsgSettings
from freescore.freestyle.settings import Settings as FreestyleSettings
from freescore.gateway.settings import Settings as GatewaySettings
from freescore.grassroots.settings import Settings as GrassrootsSettings
from freescore.settings import ServiceSettings
from freescore.worldclass.settings import Settings as WorldclassSettings

SERVICES: dict[str, type[ServiceSettings]] = {
    "clicker": ClickerSettings,
    "fedmsg": FedmsgSettings,
    "gateway": GatewaySettings,
    "events": EventsSettings,
    "worldclass": WorldclassSettings,
    "grassroots": GrassrootsSettings,
    "freestyle": FreestyleSettings,
}
