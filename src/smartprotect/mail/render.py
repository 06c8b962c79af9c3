"""Rendering mail from templates in the recipient's language."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from smartprotect.i18n import translations

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache
def _environment() -> Environment:
    # Plain-text mail: no HTML escaping, but every variable must be given.
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - plain-text mail, never HTML
    )


def render(name: str, *, language: str, **context: object) -> tuple[str, str]:
    """The subject (first line) and body of a mail template, translated."""
    catalog = translations(language)
    text = (
        _environment()
        .get_template(f"{name}.txt")
        .render(_=catalog.gettext, ngettext=catalog.ngettext, **context)
    )
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n")
