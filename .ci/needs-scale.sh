#!/usr/bin/env bash
# haproxy for tests/integration/test_scale_haproxy.py (the etc/two-nodes example end to end;
# skipped without it). redis-server comes from needs-redis.sh. Idempotent; run as root by CI.
# The test starts its own haproxy on a free loopback port: the system service is not needed.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1; then
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" needs-scale haproxy
command -v haproxy >/dev/null
if command -v systemctl >/dev/null 2>&1; then systemctl stop haproxy 2>/dev/null || true; fi
service haproxy stop 2>/dev/null || true
