#!/usr/bin/env bash
# What the listener and TLS tests need: ss (iproute2) reads a listening socket's backlog
# (tests/integration/test_listen.py), openssl s_client offers single TLS 1.2 suites
# (tests/integration/test_tls_ciphers.py). Idempotent; run as root by CI.
set -euo pipefail
missing=()
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0
bash "$(dirname "$0")/apt-install.sh" needs-http "${missing[@]}"
command -v ss >/dev/null && command -v openssl >/dev/null
