#!/usr/bin/env bash
# Debian's redis-server for the Redis hub tests (tests/hub, tests/integration/test_redis_hub*.py).
# Idempotent; run as root by CI. The tests start their own server on a free loopback port,
# so the Debian service is neither needed nor started.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6; do
    if { apt-get update -qq || true; } && apt-get install -y -qq --no-install-recommends redis-server; then
        break
    fi
    echo "needs-redis: apt busy or failed (attempt $attempt), retrying" >&2
    sleep 10
done
command -v redis-server >/dev/null
# Do not leave a system Redis running on 6379 in CI.
if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server 2>/dev/null || true; fi
service redis-server stop 2>/dev/null || true
