"""The directory: which agencies can help with a need, and why."""
