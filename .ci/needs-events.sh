#!/usr/bin/env bash
# What the events tests need beyond setup.py: Node socket.io-client (tests/js) and,
# for the AMQP test, a RabbitMQ server the test starts itself. Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm
fi
(cd tests/js && npm ci --no-audit --no-fund)
if ! command -v rabbitmq-server >/dev/null && [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    for i in 1 2 3 4 5; do
        if apt-get update -qq && apt-get install -y -qq rabbitmq-server; then break; fi
        sleep 10  # another job may hold the apt lock
    done
fi
