"""LQDOJ/DMOJ event daemon: Socket.IO v5 over Engine.IO v4, the legacy DMOJ protocol, AMQP."""
