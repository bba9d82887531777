"""The intake service: the counselling office's requests, consents and referral commands."""

SOURCE = "/wegweiser/intake"
"""The CloudEvents source of every event intake publishes."""
