"""Fixtures for the pages (the signed-in user, `signed_in`, is in the root conftest)."""

from __future__ import annotations

EMAIL = "aigerim@example.kz"
