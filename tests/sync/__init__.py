"""The sync engine: pulls, deliveries, the outbox, the lock."""
