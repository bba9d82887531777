"""The partner gateway: referrals for agencies without a NATS client, by webhook or e-mail.

It reads such an agency's referral events from the agency's own durable consumer, exactly as
a NATS agency would, and hands them on by its adapter; answers come back through signed
callbacks or the e-mail portal and leave as the agency's own `ww.answer.<agency>.*` events,
so the office and the ombudsperson see no difference between adapters.
"""
