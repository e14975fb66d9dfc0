#!/usr/bin/env bash
# `bash .ci/apt-install.sh NAME PACKAGE...`: install Debian packages, retrying while another job holds
# the apt lock; NAME starts its messages. The needs-*.sh scripts call it (it is not one of them).
set -euo pipefail
name=$1
shift
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6; do
    if { apt-get update -qq || true; } && apt-get install -y -qq --no-install-recommends "$@"; then
        exit 0
    fi
    echo "$name: apt busy or failed (attempt $attempt), retrying" >&2
    sleep 10
done
echo "$name: could not install $*" >&2
exit 1
