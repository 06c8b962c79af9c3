"""Links to the site in mail."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Links:
    """Where links in mail point: the site's base URL and the reader's language."""

    base_url: str

    def to(self, path: str, language: str) -> str:
        # Always prefixed: the reader's browser settings must not change a mail's language.
        return f"{self.base_url.rstrip('/')}/{language}{path}"
