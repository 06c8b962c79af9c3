"""Platinum Protection: Smart Protect's anti-theft service."""

__version__ = "0.1.0"
