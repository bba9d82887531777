"""Consent rules shared by intake and referral (defence in depth: both check)."""
