"""Wegweiser's services: intake, directory, referral and the agency adapter."""
