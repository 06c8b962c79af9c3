"""English and Russian: the catalog is complete and no template hard-codes visible text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import smartprotect
from smartprotect.i18n import LOCALE_DIR, negotiate, translations

PACKAGE = Path(smartprotect.__file__).parent
METHODS = [
    ("**/web/templates/**.html", "jinja2"),
    ("**/mail/templates/**.txt", "jinja2"),
    ("**.py", "python"),
]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
# Names and technical labels that read the same in every language.
UNTRANSLATED = {"Smart Protect", "SHA-256:", "·"}


def _extracted() -> set[str]:
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        PACKAGE, METHODS, keywords=KEYWORDS
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_every_message_has_a_russian_translation():
    with (LOCALE_DIR / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(_extracted() - translated)
    assert not missing, f"untranslated (run `make messages` and translate): {missing}"
    assert not [m for m in catalog.check() if m[1]], "placeholders differ between msgid and msgstr"


def _visible_text(html: str) -> list[str]:
    html = re.sub(r"\{#.*?#\}", " ", html, flags=re.S)
    html = re.sub(r"\{\{.*?\}\}", " ", html, flags=re.S)
    html = re.sub(r"\{%.*?%\}", " ", html, flags=re.S)
    attributes = re.findall(r'(?:aria-label|placeholder|title|alt)="([^"]*)"', html)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", html)
    text = re.sub(r"&\w+;", " ", text)
    for allowed in UNTRANSLATED:
        text = text.replace(allowed, " ")
    words = [w for w in text.split() if re.search(r"[^\W\d_]", w)]
    return words + [a for a in attributes if re.search(r"[^\W\d_]", a)]


@pytest.mark.parametrize(
    "template",
    sorted((PACKAGE / "web" / "templates").rglob("*.html")),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_templates_hard_code_no_user_facing_text(template):
    assert _visible_text(template.read_text()) == []


def test_the_check_itself_catches_hard_coded_text():
    assert _visible_text("<p>{{ _('Fine') }}</p><p>Not fine</p>") == ["Not", "fine"]
    assert _visible_text('<a aria-label="Oops">{{ _("x") }}</a>') == ["Oops"]


def test_russian_pages_really_are_translated():
    _ = translations("ru").gettext
    assert _("Sign in") != "Sign in"
    assert (
        _("Too many failed sign-in attempts. Try again in %(minutes)s minutes.") % {"minutes": 15}
        != "Too many failed sign-in attempts. Try again in 15 minutes."
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        ("en-GB,en;q=0.9", "en"),
        ("de-DE, ru;q=0.3", "ru"),
        ("fr;q=1.0, en;q=0", None),
        ("kk, ru;q=0.8, en;q=0.9", "en"),
        ("", None),
        (None, None),
        ("ru;q=bogus, en", "en"),
    ],
)
def test_accept_language_negotiation(header, expected):
    assert negotiate(header) == expected
