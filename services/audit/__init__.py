"""The audit service: a tamper-evident, append-only log of every event's metadata."""
