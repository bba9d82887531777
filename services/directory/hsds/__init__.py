"""Open Referral HSDS 3.0: the tables, how they nest, and validation against the official schemas.

Nothing here knows about Wegweiser: this package reads, validates, flattens and assembles HSDS
data. What Wegweiser adds (needs, referral channel, capacity, confidential locations) lives one
level up, in `services.directory.profile`.
"""
