#!/usr/bin/env bash
# What the bench smoke test needs beyond the others: valgrind, which bench/clicker_instructions.py
# runs the server under, and strace, for bench/worldclass_calls.py --count syscalls
# (tests/integration/test_bench_smoke.py). Idempotent; run as root by CI.
set -euo pipefail
missing=()
command -v valgrind >/dev/null 2>&1 && command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind)
command -v strace >/dev/null 2>&1 || missing+=(strace)
[ ${#missing[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5 6; do
    if { apt-get update -qq || true; } && apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
        exit 0
    fi
    echo "needs-bench: apt busy or failed (attempt $attempt), retrying" >&2
    sleep 10
done
echo "needs-bench: could not install ${missing[*]}" >&2
exit 1
