#!/usr/bin/env bash
# haproxy for tests/integration/test_scale_haproxy.py (the etc/two-nodes example end to end;
# skipped without it). redis-server comes from needs-redis.sh. Idempotent; run as root by CI.
# The test starts its own haproxy on a free loopback port: the system service is not needed.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6; do
    if { apt-get update -qq || true; } && apt-get install -y -qq --no-install-recommends haproxy; then
        break
    fi
    echo "needs-scale: apt busy or failed (attempt $attempt), retrying" >&2
    sleep 10
done
command -v haproxy >/dev/null
if command -v systemctl >/dev/null 2>&1; then systemctl stop haproxy 2>/dev/null || true; fi
service haproxy stop 2>/dev/null || true
