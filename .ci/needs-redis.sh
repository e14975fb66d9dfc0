#!/usr/bin/env bash
# Debian's redis-server for the Redis hub tests (tests/hub, tests/integration/test_redis_hub*.py).
# Idempotent; run as root by CI. The tests start their own server on a free loopback port,
# so the Debian service is neither needed nor started.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" needs-redis redis-server
command -v redis-server >/dev/null
# Do not leave a system Redis running on 6379 in CI.
if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server 2>/dev/null || true; fi
service redis-server stop 2>/dev/null || true
