#!/usr/bin/env bash
# systemd-analyze (Debian package systemd) for tests/test_etc.py, which verifies etc/freescore.service
# with it (without it the unit is checked by text only). Idempotent; run as root by CI. Nothing is started.
set -euo pipefail
command -v systemd-analyze >/dev/null 2>&1 && exit 0
# Optional: a machine where systemd will not install still runs every other test (this one by text).
if ! bash "$(dirname "$0")/apt-install.sh" needs-etc systemd || ! command -v systemd-analyze >/dev/null; then
    echo "needs-etc: no systemd-analyze; tests/test_etc.py checks etc/freescore.service by text only" >&2
fi
