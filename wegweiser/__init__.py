"""Wegweiser: the command line, settings and the shared messaging platform."""
