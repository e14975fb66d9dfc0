"""A RedisHub node in its own process, for the crash test: joins, says so, then runs until killed.

Usage: python crash_node.py URL SPACE MEMBER PRESENCE_TTL
"""

import sys

from twisted.internet import reactor

from freescore.hub.redis import RedisHub


def main() -> None:
    url, space, member, ttl = sys.argv[1:5]
    hub = RedisHub(url, int(reactor.seconds() * 1000), reactor, node="doomed", presence_ttl=float(ttl),
                   retry_min=0.05, retry_max=0.2)

    def join_when_up() -> None:
        if not hub.is_up():
            reactor.callLater(0.01, join_when_up)
            return
        hub.join(space, member, {"on": "doomed"}).addCallback(lambda _: print("joined", flush=True))

    hub.startService()
    reactor.callWhenRunning(join_when_up)
    reactor.run()


if __name__ == "__main__":
    main()
