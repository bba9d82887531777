"""What every service shares: storage, outbox and inbox, the consumer edge, NATS topology."""
