"""Helpers shared by several test layers (fixtures stay in each layer's conftest.py)."""
