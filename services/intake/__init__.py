"""The intake service: the counselling office's requests, consents and referral commands."""
