#!/usr/bin/env bash
# What the bench smoke test needs beyond the others: valgrind, which bench/clicker_instructions.py
# runs the server under, and strace, for bench/worldclass_calls.py --count syscalls
# (tests/integration/test_bench_smoke.py). Idempotent; run as root by CI.
set -euo pipefail
missing=()
command -v valgrind >/dev/null 2>&1 && command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind)
command -v strace >/dev/null 2>&1 || missing+=(strace)
[ ${#missing[@]} -eq 0 ] && exit 0
bash "$(dirname "$0")/apt-install.sh" needs-bench "${missing[@]}"
