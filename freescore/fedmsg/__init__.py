"""fedmsg topic hub: browsers subscribe to topic patterns over WebSocket.

Messages come from ZeroMQ SUB sockets (fedmsg's `[topic, json]` frames) and
from an authenticated HTTP publish endpoint; both go through the hub. See
docs/fedmsg.md and ../shared/specs/fedmsg.md.
"""
