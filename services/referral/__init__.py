"""The referral service: owns each referral's lifecycle."""
