#!/usr/bin/env bash
# systemd-analyze (Debian package systemd) for tests/test_etc.py, which verifies etc/freescore.service
# with it (without it the unit is checked by text only). Idempotent; run as root by CI. Nothing is started.
set -euo pipefail
if command -v systemd-analyze >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6; do
    if { apt-get update -qq || true; } && apt-get install -y -qq --no-install-recommends systemd; then
        break
    fi
    echo "needs-etc: apt busy or failed (attempt $attempt), retrying" >&2
    sleep 10
done
command -v systemd-analyze >/dev/null
