"""A broadcast frame prepared once and shared by every recipient's outbox."""

from __future__ import annotations

from typing import Any

from freescore.websocket import FreescoreServerFactory


class BroadcastFrame(str):
    """A text packet shared by many sessions' outboxes: framed once, on its first WebSocket send.

    Recipients that cannot take a broadcast straight away (an Engine.IO session
    with packets still queued, or mid-upgrade) get this same object queued, so
    their later flush reuses the one prepared frame instead of re-encoding and
    re-framing the message per connection.
    """

    def prepared(self, factory: FreescoreServerFactory) -> Any:
        prep = self.__dict__.get("_prepared")
        if prep is None:
            prep = self._prepared = factory.prepareMessage(self.encode("utf-8"), isBinary=False)
        return prep
